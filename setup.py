"""The wheel carries the suite's own files (scenarios, images, versions.yaml, the behaviour catalogue) inside the
package, so an installed `sgp-conformance` (pipx, pip) runs from any folder; a checkout reads them in place
(conformance/paths.py). Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("scenarios", "images", "versions.yaml", "docs/behaviours.md")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "conformance" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        for name in DATA:
            source, dest = ROOT / name, target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, dest)
        (target / "pytest.ini").write_text("[pytest]\n")


setup(cmdclass={"build_py": BuildWithData})

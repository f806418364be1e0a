"""Where the suite's own files are: in a checkout, the repository's scenarios/, images/, versions.yaml and
docs/; in an installed wheel (pipx, pip), the copies the build put into the package (conformance/_data)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PROJECT = PACKAGE.parent
CHECKOUT = (PROJECT / "pyproject.toml").is_file() and (PROJECT / "scenarios").is_dir()
DATA = PROJECT if CHECKOUT else PACKAGE / "_data"
SCENARIOS = DATA / "scenarios"
IMAGES = DATA / "images"
VERSIONS = DATA / "versions.yaml"
BEHAVIOURS = DATA / "docs" / "behaviours.md"
# the pytest configuration a run uses: the project's, or an empty one shipped with the wheel
PYTEST_CONFIG = PROJECT / "pyproject.toml" if CHECKOUT else DATA / "pytest.ini"

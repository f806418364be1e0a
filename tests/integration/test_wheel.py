"""Installable as a tool: the wheel built from a copy of the checkout, installed into a fresh virtualenv outside
it, gives an `sgp-conformance` that runs the node target from /tmp with the scenarios and images the wheel
carries, and writes nothing beside the installed package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.support.leftovers import leftovers

pytestmark = pytest.mark.runtime


def _copy_of_checkout(dest: Path) -> Path:
    """The files git tracks or would (the working tree as it is), without .venv, caches or results."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                           capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = PROJECT / name
        if source.is_file() and not source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_wheel_in_a_fresh_venv_runs_from_tmp(real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    source = _copy_of_checkout(tmp_path / "src")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)], check=True,
                   timeout=600)
    wheel = next((tmp_path / "dist").glob("sgp_conformance-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=900)
    shutil.rmtree(source)  # nothing may come from the checkout now
    work = Path("/tmp") / f"sgp-wheel-{os.urandom(3).hex()}"
    work.mkdir()
    try:
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env.update(SGP_STATE_DIR=str(state_root), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
        proc = subprocess.run(["sgp-conformance", "run", "--results-dir", "out", "-k", "blog-example or upstream-e2e"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        doc = json.loads((work / "out" / "results.json").read_text())
        assert {c["scenario"] for c in doc["cases"]} >= {"blog-example", "upstream-e2e"}
        assert {c["verdict"] for c in doc["cases"]} <= {"pass", "unsupported"}  # userns-blog-example: runc 1.1
        assert (work / "out" / "junit.xml").is_file()
        site = next((venv / "lib").glob("python3*/site-packages/conformance"))
        assert (site / "_data" / "scenarios" / "blog-example.yaml").is_file()
        assert not list(site.rglob(".pytest_cache")) and not (work / ".pytest_cache").exists()
        lint = subprocess.run(["sgp-conformance", "lint"], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert leftovers(state_root, 0) == []

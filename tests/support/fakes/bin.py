"""Put a fake `kind` and `docker` (tests/support/fakes/fakecli.py) first on PATH; read back what they recorded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAKECLI = Path(__file__).resolve().parent / "fakecli.py"


def install(tmp: Path, monkeypatch) -> Path:
    """Create tmp/bin/{kind,docker}; return the log file they append to."""
    bindir = tmp / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("kind", "docker"):
        script = bindir / tool
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKECLI}" {tool} "$@"\n')
        script.chmod(0o755)
    log = tmp / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def tool(path: Path, version_line: str) -> Path:
    """A fake binary at `path` that prints `version_line` (a runtime, crun, kubelet, etcd --version)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(0o755)
    return path

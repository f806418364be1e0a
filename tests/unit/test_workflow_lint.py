"""The GitHub workflow passes zizmor (a workflow linter, pinned in the dev dependencies), offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conformance.core.catalogue import PROJECT

WORKFLOWS = PROJECT / ".github" / "workflows"
ZIZMOR = Path(sys.executable).parent / "zizmor"

UNSAFE = """\
on: pull_request
jobs:
  j:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        cell: [a]
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ matrix.cell }}"
"""


def zizmor(target: Path) -> tuple[list[dict], str]:
    """zizmor's findings on `target` (a file or folder) in the pedantic persona, and its plain report."""
    assert ZIZMOR.exists(), f"{ZIZMOR} missing: run `make setup` (zizmor is a dev dependency)"
    argv = [str(ZIZMOR), "--offline", "--strict-collection", "--persona=pedantic", "--no-progress", str(target)]
    found = subprocess.run([*argv, "--format=json"], capture_output=True, text=True, timeout=60, check=False)
    assert found.stdout.strip(), f"zizmor exited {found.returncode}: {found.stderr}"
    findings = json.loads(found.stdout)
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout if findings else ""
    return findings, plain


def test_workflows_have_no_zizmor_findings():
    findings, plain = zizmor(WORKFLOWS)
    assert findings == [], plain


def test_zizmor_catches_what_the_workflow_avoids(tmp_path: Path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(UNSAFE)
    findings, _ = zizmor(bad)
    assert {"template-injection", "unpinned-uses", "artipacked"} <= {f["ident"] for f in findings}

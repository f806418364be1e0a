"""The GitHub workflow parses and takes its matrix from versions.yaml."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from conformance.catalogue import PROJECT
from conformance.targets.kind import cells

WORKFLOW = PROJECT / ".github" / "workflows" / "conformance.yml"


def test_workflow_parses_and_uses_generated_matrix():
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    steps = " ".join(s.get("run", "") for s in jobs["matrix"]["steps"])
    assert "conformance.targets.kind.cells matrix versions.yaml" in steps and "GITHUB_OUTPUT" in steps
    kind = jobs["kind"]
    assert kind["needs"] == "matrix"
    assert kind["strategy"]["fail-fast"] is False
    assert kind["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    uploads = [s for s in kind["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()"
    summary = [s for s in kind["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert summary and "matrix.md" in summary[0]["run"] and summary[0]["if"] == "always()"
    assert jobs["results"]["if"] == "always()"


def test_matrix_job_command_reads_versions_yaml():
    proc = subprocess.run([sys.executable, "-m", "conformance.targets.kind.cells", "matrix", "versions.yaml"],
                          cwd=PROJECT, capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("matrix=")
    matrix = json.loads(proc.stdout.removeprefix("matrix="))
    assert [e["cell"] for e in matrix["include"]] == [c.id for c in cells.load()]
    runtimes = {(e["runtime"], e["version"].rsplit(".", 1)[0]) for e in matrix["include"]}
    assert {("containerd", "1.7"), ("containerd", "2.0"), ("containerd", "2.1"), ("containerd", "2.2"),
            ("crio", "1.31")} <= runtimes

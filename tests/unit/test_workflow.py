"""The GitHub workflow parses, takes its matrix from versions.yaml and runs only the make commands run here."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import yaml

from conformance.core.catalogue import PROJECT
from conformance.targets.kind import cells

WORKFLOW = PROJECT / ".github" / "workflows" / "conformance.yml"
SUMMARY = 'cat results/matrix.md >> "$GITHUB_STEP_SUMMARY"'


def make_commands(job: dict) -> list[list[str]]:
    """The argv of every make command a job's steps run (`sudo [--preserve-env=X]` dropped)."""
    out = []
    for step in job["steps"]:
        if "run" not in step or step["run"] == SUMMARY:
            continue
        argv = shlex.split(step["run"])
        while argv and (argv[0] == "sudo" or argv[0].startswith("--preserve-env=")):
            argv = argv[1:]
        out.append(argv)
    return out


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
    assert set(jobs["results"]["needs"]) == {"test", "matrix", "kind"}


def test_workflow_runs_make_commands_only_with_matrix_values_through_env():
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"template expansion in a run script: {step['run']}"
    makefile = (PROJECT / "Makefile").read_text()
    targets = set(re.search(r"^\.PHONY: (.+)$", makefile, re.M).group(1).split())
    from conformance.core.options import FLAGS

    # the Makefile's own variables, and every run option's (they reach the run through --options-from-env)
    variables = set(re.findall(r"^([A-Z_0-9]+) \?=", makefile, re.M)) | {o.env for o in FLAGS}
    commands = make_commands(jobs["test"]) + make_commands(jobs["kind"])
    for argv in commands:
        assert argv[0] == "make" and argv[1] in targets, argv
        assert {a.split("=", 1)[0] for a in argv[2:]} <= variables, argv
    assert ["make", "test"] in commands
    kind_env = jobs["kind"]["env"]
    matrix_keys = set(cells.github_matrix(cells.load())["include"][0])
    from_matrix = {k: v for k, v in kind_env.items() if not k.endswith("_RELEASE_URL") and k != "DEBIAN_MIRROR"}
    assert kind_env["DEBIAN_MIRROR"] == jobs["test"]["env"]["DEBIAN_MIRROR"] == "${{ vars.DEBIAN_MIRROR }}"
    assert {v.removeprefix("${{ matrix.").removesuffix(" }}") for v in from_matrix.values()} <= matrix_keys
    assert kind_env["CONTAINERD_RELEASE_URL"].startswith("https://")  # built cells: containerd's releases
    runs = [a for a in make_commands(jobs["kind"]) if a[1] == "conformance"]
    expected = ["TARGET=kind", "RUNTIME=$RUNTIME", "VERSION=$VERSION", "K8S=$K8S", "RESULTS_DIR=results/$CELL"]
    assert len(runs) == 2 and all(set(expected) <= set(a) for a in runs)
    assert "DRY_RUN=1" in runs[0] and "DRY_RUN=1" not in runs[1]


def test_matrix_job_command_reads_versions_yaml():
    proc = subprocess.run([sys.executable, "-m", "conformance.targets.kind.cells", "matrix", "versions.yaml"],
                          cwd=PROJECT, capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("matrix=")
    matrix = json.loads(proc.stdout.removeprefix("matrix="))
    assert [e["cell"] for e in matrix["include"]] == [c.id for c in cells.load()]
    runtimes = {(e["runtime"], e["version"].rsplit(".", 1)[0]) for e in matrix["include"]}
    assert {("containerd", "1.7"), ("containerd", "2.0"), ("containerd", "2.1"), ("containerd", "2.2")} <= runtimes

"""TARGET=kind for real (K8S_BIN_DIR; CRIO_BIN_DIR for CRI-O): node images built offline, clusters created by
kind on the suite's private Docker engine. A cluster mid-upgrade (containerd 2.x control plane, containerd
1.7 worker) gives each node's cases that node's verdicts, and the audit, run inside the engine's network
while KEEP=1 holds the cluster, names the node that would reject Strict pods; Ctrl-C then removes the
cluster, the engine and its namespace. The host snapshot (tests/conftest.py) runs around each test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conformance.kube.admission import REJECT_MESSAGE, REJECT_REASON
from conformance.runtimes import ocidefault
from tests.conftest import CLI
from tests.support.leftovers import leftovers
from tests.support.suite import release, run_suite, start_suite
from tests.support.userns import is_userns

pytestmark = pytest.mark.runtime
HELD = re.compile(r"KEEP=1: kind cluster (\S+) kept on the private Docker engine .* network namespace of pid (\d+); "
                  r"kubeconfig (\S+)\)")


def kind_args(k8s_bin_dir: Path, *more: str) -> list[str]:
    etcd = ["--etcd-bin", os.environ["ETCD_BIN"]] if os.environ.get("ETCD_BIN") else []
    return ["--target", "kind", "--k8s-bin-dir", str(k8s_bin_dir), *etcd, *more]


def cases(results: Path) -> tuple[dict, list[dict]]:
    doc = json.loads((results / "results.json").read_text())
    return doc, doc["cases"]


def test_crio_cell(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    if not os.environ.get("CRIO_BIN_DIR"):
        pytest.skip("needs CRIO_BIN_DIR as well")
    code, out, pid = run_suite(tmp_path, state_root, *kind_args(k8s_bin_dir, "--runtime", "crio", "--crio-bin-dir",
                                                                os.environ["CRIO_BIN_DIR"]),
                               "-k", "blog-example or node-features or upstream-e2e", timeout=1800)
    assert code == 0, out[-6000:]
    doc, found = cases(tmp_path)
    assert any(is_userns(c) for c in found)  # the node's default OCI runtime gives its pods user namespaces
    want = {"pass"} if not ocidefault.kernel_problem() else {"pass", "unsupported"}
    assert doc["target"] == "kind" and {c["verdict"] for c in found} <= want, out[-3000:]
    assert doc["runtime"]["oci_runtime"]["chosen"].startswith("default: ")
    node = next(iter(doc["kubernetes"]["nodes"].values()))
    assert node["containerRuntimeVersion"].startswith("cri-o://") and node["features"] == {
        "supplementalGroupsPolicy": True}
    assert doc["kubernetes"]["facts"]["docker"]["private"] is True
    assert leftovers(state_root, pid) == []


def test_mixed_cluster_mid_upgrade_and_the_audit(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    proc = start_suite(tmp_path, state_root, *kind_args(k8s_bin_dir, "--runtime", "containerd", "--version", "2",
                                                        "--worker", "containerd:1.7", "--nodes", "all"),
                       "-k", "(blog-example or node-features) and not userns", "--keep", "1")
    seen: list[str] = []
    held = None
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline and held is None:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        held = HELD.search(line)
    assert held is not None, "".join(seen[-60:])
    cluster, pid, kubeconfig = held.group(1), held.group(2), held.group(3)
    audit = subprocess.run(["nsenter", "-t", pid, "-n", str(CLI), "audit", "--kubeconfig", kubeconfig,
                            "--all-namespaces", "-o", "json"], capture_output=True, text=True, timeout=180)
    out, _ = release(proc, state_root)
    assert proc.returncode == 0, out[-4000:]
    report = json.loads(audit.stdout)
    worker = f"sgp-{cluster.removeprefix('sgp-')}-worker"
    risky = {n["name"]: n for n in report["nodes"] if n["wouldRejectUnderStrict"] or n["alreadyRejected"]}
    assert set(risky) == {worker}, audit.stdout[-3000:]
    doc, found = cases(tmp_path)
    by_node: dict[str, list[dict]] = {}
    for case in found:
        if not case["scenario"].startswith(("node-features@", "api-")):
            by_node.setdefault(case["observed"]["pod"]["node"], []).append(case)
    assert {c["verdict"] for c in found if c["scenario"].startswith("node-features@")} == {"pass"}
    assert set(by_node) >= {f"{cluster}-control-plane", worker}, list(by_node)
    for case in by_node[f"{cluster}-control-plane"]:
        assert case["verdict"] == "pass", case
    for case in by_node[worker]:
        if case["policy"] == "Strict":
            assert case["verdict"] == "rejected", case
            assert (case["observed"]["pod"]["reason"], case["observed"]["pod"]["message"]) == (REJECT_REASON,
                                                                                               REJECT_MESSAGE)
        else:
            assert case["verdict"] == "pass", case
    nodes = doc["kubernetes"]["nodes"]
    assert nodes[worker]["containerRuntimeVersion"].startswith("containerd://1.7.")
    assert nodes[worker]["features"] is None

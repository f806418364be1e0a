"""TARGET=local on a real kubelet and API server (K8S_BIN_DIR): a private single-node cluster on the private
runtime, every Kubernetes-level check, and nothing left behind on the host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.core.catalogue import Catalogue
from conformance.kube.admission import REJECT_MESSAGE, REJECT_REASON
from conformance.kube.checks import API_CHECKS
from conformance.kube.manifests import VARIANTS, kube_cases
from tests.conftest import PROJECT
from tests.support.leftovers import leftovers
from tests.support.suite import interrupt_after, local_args, run_suite
from tests.support.userns import check_userns, is_userns

pytestmark = pytest.mark.runtime
CATALOGUE = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")


def cases_of(results: Path) -> tuple[dict, dict[tuple[str, str], dict]]:
    doc = json.loads((results / "results.json").read_text())
    return doc, {(c["scenario"], c["policy"]): c for c in doc["cases"]}


def check_supported_run(doc: dict, cases: dict[tuple[str, str], dict], variants: tuple[str, ...]) -> None:
    assert doc["target"] == "local"
    node = next(iter(doc["kubernetes"]["nodes"].values()))
    assert node["features"] == {"supplementalGroupsPolicy": True}
    assert doc["kubernetes"]["apiserver"] == node["kubeletVersion"]
    assert len(cases) == len(kube_cases(CATALOGUE, variants)) + len(API_CHECKS) + 1
    for key, case in cases.items():
        if is_userns(case):  # hostUsers: false: pass, or unsupported where the handler lacks user namespaces
            check_userns(case, doc["runtime"])
            continue
        assert case["verdict"] in ("pass", "known-failure"), case
        if case["verdict"] == "known-failure":
            assert case["links"], case
    feature = next(c for k, c in cases.items() if k[0].startswith("node-features@"))
    assert feature["verdict"] == "pass" and feature["observed"]["strict probe pod"]["rejected"] is False
    for (name, _), case in cases.items():
        plain = case["verdict"] == "pass" and not ({"error", "any_of"} & set(case["expected"]))
        if name.startswith(("node-features@", "api-")) or not plain:
            continue
        user = case["observed"]["status_user"]  # the API's status user, the first process and exec agree
        assert user is not None and sorted(user["supplemental_groups"]) == case["expected"]["groups"], case


@pytest.mark.parametrize("runtime", [("--version", "2"), ("crio",)], ids=["containerd-2", "crio"])
def test_whole_catalogue_every_container_kind(runtime: tuple[str, ...], k8s_bin_dir: Path, tmp_path: Path,
                                             state_root: Path) -> None:
    if runtime == ("crio",):
        if not os.environ.get("CRIO_BIN_DIR"):
            pytest.skip("needs CRIO_BIN_DIR as well")
        runtime = ("--runtime", "crio", "--crio-bin-dir", os.environ["CRIO_BIN_DIR"])
    code, out, pid = run_suite(tmp_path, state_root, *local_args(k8s_bin_dir, *runtime), timeout=1800)
    assert code == 0, out[-6000:]
    doc, cases = cases_of(tmp_path)
    check_supported_run(doc, cases, VARIANTS)
    assert doc["runtime"]["oci_runtime"]["chosen"].startswith("default: ")
    assert {p.name for p in (tmp_path / "local-logs").iterdir()} >= {"kubelet.log", "kube-apiserver.log", "etcd.log"}
    assert leftovers(state_root, pid) == []  # and the host snapshot (tests/conftest.py) after it


def test_runtime_without_the_feature_rejects_strict(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    """containerd 1.7: the node has no features field (absent, not false); the kubelet rejects every Strict
    pod with the exact reason, message and one Warning event; Merge and unset pods still run."""
    code, out, pid = run_suite(tmp_path, state_root, *local_args(k8s_bin_dir, "--version", "1.7"), timeout=1800)
    assert code == 0, out[-6000:]
    doc, cases = cases_of(tmp_path)
    node = next(iter(doc["kubernetes"]["nodes"].values()))
    assert node["features"] is None and node["containerRuntimeVersion"].startswith("containerd://1.7.")
    for (name, policy), case in cases.items():
        if name.startswith(("node-features@", "api-")):
            assert case["verdict"] == "pass", case
        elif is_userns(case) and policy != "Strict":  # 1.7 lists no runtime handlers: the kubelet refuses the pod
            assert case["verdict"] == "unsupported" and "no runtime handlers" in case["detail"], case
        elif policy == "Strict":
            assert case["verdict"] == "rejected", case
            pod = case["observed"]["pod"]
            assert pod["reason"] == REJECT_REASON and pod["message"] == REJECT_MESSAGE, case
            warnings = [e for e in case["observed"]["events"] if e["type"] == "Warning"]
            assert [e["reason"] for e in warnings] == [REJECT_REASON], case
        else:
            assert case["verdict"] in ("pass", "known-failure"), case
            if case["verdict"] == "pass" and "error" not in case["expected"] and case["observed"].get("first_process"):
                assert case["observed"]["status_user"] is None, case  # no user without the feature
    assert leftovers(state_root, pid) == []


def test_focus_xdist_and_interrupt(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    """-k selects, and only the selected container kinds share a scenario's pod; -n 2 spreads the cases over
    workers that reach the same cluster (a pod each); and Ctrl-C leaves nothing."""
    code, out, pid = run_suite(tmp_path / "focus", state_root, *local_args(k8s_bin_dir, "--version", "2"),
                               "-k", "blog-example and (init or ephemeral) and not userns")
    assert code == 0, out[-4000:]
    _, cases = cases_of(tmp_path / "focus")
    assert len(cases) == 6 and {c["verdict"] for c in cases.values()} == {"pass"}
    pods = {policy: {c["observed"]["pod"]["name"] for (_, p), c in cases.items() if p == policy}
            for policy in ("unset", "Merge", "Strict")}
    assert all(len(names) == 1 and "-ie-" in next(iter(names)) for names in pods.values()), pods
    assert leftovers(state_root, pid) == []
    code, out, pid = run_suite(tmp_path / "xdist", state_root, *local_args(k8s_bin_dir, "--version", "2"), "-n", "2",
                               "-k", "(blog-example or upstream-e2e) and not userns")
    assert code == 0, out[-4000:]
    _, cases = cases_of(tmp_path / "xdist")
    assert len(cases) == 24 and {c["verdict"] for c in cases.values()} == {"pass"}
    assert leftovers(state_root, pid) == []
    interrupt_after(tmp_path / "int", state_root, tuple(local_args(k8s_bin_dir, "--version", "2")), 10, 20)

"""versions.yaml and the kind config derived from it."""

from __future__ import annotations

import pytest
import yaml

from conformance.core.versions import version_key
from conformance.errors import InputError
from conformance.targets.kind import cells as versions
from conformance.targets.kind import config as kindconfig


@pytest.fixture(scope="module")
def cells():
    return versions.load()


def test_matrix_covers_required_runtimes(cells):
    have = {(c.runtime, ".".join(c.runtime_version.split(".")[:2])) for c in cells}
    for v in ("1.7", "2.0", "2.1", "2.2"):
        assert ("containerd", v) in have
    crio = sorted(version_key(c.runtime_version)[1] for c in cells if c.runtime == "crio")
    assert crio[0] == 31 and crio == list(range(31, crio[-1] + 1))
    assert all(c.base_node_image.startswith("kindest/node:v") and "@sha256:" in c.base_node_image
               for c in cells if c.node_image == "stock")


def test_select(cells):
    assert versions.select(cells, "crio", "1.34").id == "crio-1.34-k8s-1.34"
    assert versions.select(cells, "cri-o", "1.34").runtime == "crio"
    c17 = versions.select(cells, "containerd", "1.7")
    assert c17.id == "containerd-1.7-k8s-1.34" and not c17.supported and c17.node_image == "built"
    assert versions.select(cells, "containerd", "1.7", "1.32").node_image == "stock"
    with pytest.raises(InputError, match="no cell"):
        versions.select(cells, "crio", "1.20")


def _write(tmp_path, **changes):
    cell = {"id": "x", "runtime": "containerd", "runtime_version": "2.1.1", "k8s": "1.33.1", "kind": "v0.29.0",
            "base_node_image": "kindest/node:v1.33.1@sha256:" + "a" * 64, "node_image": "stock",
            "expect": {"supported": True}}
    cell.update(changes)
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump({"cells": [cell]}))
    return path


@pytest.mark.parametrize("changes,match", [
    ({"base_node_image": "kindest/node:v1.33.1"}, "pin it"),
    ({"expect": {"supported": False}}, "supports"),
    ({"runtime": "crio", "runtime_version": "1.33.0"}, "CRI-O cells are built"),
    ({"node_image": "derived"}, "stock or built"),
    ({"k8s": "1.34.0"}, "differs"),
    ({"id": "Bad_Name"}, "kind cluster"),
    ({"surprise": 1}, "unknown keys"),
])
def test_invalid_cells_rejected(tmp_path, changes, match):
    with pytest.raises(InputError, match=match):
        versions.load(_write(tmp_path, **changes))


def test_feature_gates_by_version():
    assert kindconfig.feature_gates("1.31.0") == {"SupplementalGroupsPolicy": True}
    assert kindconfig.feature_gates("1.32.2") == {"SupplementalGroupsPolicy": True}
    for v in ("1.33.1", "1.34.0", "1.35.0", "1.36.1", "1.38.0"):
        assert kindconfig.feature_gates(v) == {}
    assert kindconfig.check_gates("1.35.0", {"SupplementalGroupsPolicy": False})
    assert kindconfig.check_gates("1.38.0", {"SupplementalGroupsPolicy": True})
    assert not kindconfig.check_gates("1.34.0", {"SupplementalGroupsPolicy": True})


def test_crio_config_has_cri_socket_patches_per_node(cells):
    cell = versions.select(cells, "crio", "1.34")
    doc = yaml.safe_load(kindconfig.to_yaml(kindconfig.config(cell, [("img:1", "crio")] * 3, built=True)))
    assert doc["apiVersion"] == "kind.x-k8s.io/v1alpha4" and doc["kind"] == "Cluster"
    assert [n["role"] for n in doc["nodes"]] == ["control-plane", "worker", "worker"]
    patches = [yaml.safe_load(n["kubeadmConfigPatches"][0]) for n in doc["nodes"]]
    assert [p["kind"] for p in patches] == ["InitConfiguration", "JoinConfiguration", "JoinConfiguration"]
    assert all(p["nodeRegistration"]["criSocket"] == "unix:///var/run/crio/crio.sock" for p in patches)
    assert "featureGates" not in doc
    assert doc["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none"}  # built: no kindnetd image
    cluster = [yaml.safe_load(p) for p in doc["kubeadmConfigPatches"]]
    assert cluster[0]["skipPhases"] == ["preflight", "addon/kube-proxy", "addon/coredns"]
    assert cluster[1] == {"kind": "KubeletConfiguration", "failCgroupV1": False}


def test_kubeadm_api_calls_wait_for_a_slow_api_server_on_v1beta4_only(cells):
    """kubeadm's first API call waits for the API server's start (1 m by default, too short on loaded hosts)."""
    doc = kindconfig.config(versions.select(cells, "containerd", "2.1"), [("i", "containerd")], built=True)
    patches = [yaml.safe_load(p) for p in doc["kubeadmConfigPatches"]]
    timed = [p for p in patches if "timeouts" in p]
    assert [(p["apiVersion"], p["kind"]) for p in timed] == [
        ("kubeadm.k8s.io/v1beta4", "InitConfiguration"), ("kubeadm.k8s.io/v1beta4", "JoinConfiguration")]
    assert all(p["timeouts"] == {"kubernetesAPICall": "4m0s"} for p in timed)
    old = versions.built("containerd", "1.7.24", "1.30.0")
    assert "kubeadmConfigPatches" not in kindconfig.config(old, [("i", "containerd")], built=False)


def test_mixed_nodes_patch_only_the_crio_node(cells):
    cell = versions.select(cells, "containerd", "2.1")
    doc = kindconfig.config(cell, [("a:1", "containerd"), ("b:1", "crio")], built=True)
    assert "kubeadmConfigPatches" not in doc["nodes"][0]
    assert "JoinConfiguration" in doc["nodes"][1]["kubeadmConfigPatches"][0]
    assert [n["image"] for n in doc["nodes"]] == ["a:1", "b:1"]


def test_stock_containerd_config_has_no_node_patches_and_gate_on_alpha(cells):
    doc = kindconfig.config(versions.select(cells, "containerd", "2.0"), [("img:1", "containerd")], built=False)
    assert "networking" not in doc and doc["featureGates"] == {"SupplementalGroupsPolicy": True}
    assert doc["kubeadmConfigPatches"][0] == kindconfig.CGROUP_V1  # 1.32 >= 1.31: the field exists
    assert "kubeadmConfigPatches" not in doc["nodes"][0]
    old = versions.built("containerd", "1.7.24", "1.30.0")
    assert "kubeadmConfigPatches" not in kindconfig.config(old, [("i", "containerd")], built=False)
    for cell in cells:
        gates = kindconfig.config(cell, [("i", cell.runtime)], built=False).get("featureGates", {})
        assert gates.get("SupplementalGroupsPolicy", True) is True


def test_github_matrix_json(cells):
    matrix = versions.github_matrix(cells)
    assert len(matrix["include"]) == len(cells) > 0
    built = {(e["runtime"], e["version"].rsplit(".", 1)[0]) for e in matrix["include"] if e["node_image"] == "built"}
    assert {("containerd", "2.1"), ("containerd", "1.7"), ("crio", "1.36")} <= built  # from release downloads
    assert {"cell", "runtime", "version", "k8s", "kind", "supported"} <= set(matrix["include"][0])

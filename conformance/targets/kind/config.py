"""The kind Cluster config (kind.x-k8s.io/v1alpha4) for a cell."""

from __future__ import annotations

import yaml

from conformance.runtimes.versions import version_key
from conformance.targets.kind.cells import Cell

API_VERSION = "kind.x-k8s.io/v1alpha4"
CRIO_SOCKET = "unix:///var/run/crio/crio.sock"
GATE = "SupplementalGroupsPolicy"
GATE_REMOVED_MINOR = 38  # pkg/features: GA in 1.35, "remove in 1.38"; setting a removed gate is an error
NODE_LABEL = "sgp.conformance/node"


def feature_gates(k8s: str) -> dict[str, bool]:
    """True only on 1.31-1.32 (alpha, off by default); nothing from 1.33 (on by default; locked from 1.35)."""
    major, minor = version_key(k8s)[:2]
    return {GATE: True} if major == 1 and 31 <= minor <= 32 else {}


def check_gates(k8s: str, gates: dict[str, bool]) -> list[str]:
    """Problems with a featureGates map for this Kubernetes version (used on user-supplied configs too)."""
    if GATE not in gates:
        return []
    minor = version_key(k8s)[1]
    if minor >= GATE_REMOVED_MINOR:
        return [f"{GATE} is removed in 1.{GATE_REMOVED_MINOR}: do not set it on {k8s}"]
    if minor >= 35 and gates[GATE] is False:
        return [f"{GATE} is GA and locked on in {k8s}: setting it false breaks the control plane"]
    if minor < 31:
        return [f"{GATE} does not exist before 1.31 ({k8s})"]
    return []


def crio_patches() -> list[str]:
    """kubeadm patches pointing kubeadm (and so the kubelet) at CRI-O; the field is the same in
    v1beta3 and v1beta4, so the patches carry no apiVersion."""
    return [
        f"kind: InitConfiguration\nnodeRegistration:\n  criSocket: {CRIO_SOCKET}\n",
        f"kind: JoinConfiguration\nnodeRegistration:\n  criSocket: {CRIO_SOCKET}\n",
    ]


def config(cell: Cell, node_image: str, workers: int = 1) -> dict:
    """The config as a mapping: one control plane + `workers` workers, all on `node_image`."""
    nodes = [{"role": "control-plane", "image": node_image, "labels": {NODE_LABEL: "control-plane"}}]
    nodes += [{"role": "worker", "image": node_image, "labels": {NODE_LABEL: f"worker{i + 1}"}} for i in range(workers)]
    doc: dict = {"kind": "Cluster", "apiVersion": API_VERSION, "name": cell.cluster_name, "nodes": nodes}
    gates = feature_gates(cell.k8s)
    problems = check_gates(cell.k8s, gates)
    assert not problems, problems
    if gates:
        doc["featureGates"] = gates
    if cell.runtime == "crio":
        doc["kubeadmConfigPatches"] = crio_patches()
    return doc


class _Literal(str):
    """A string YAML writes as a `|` block (kubeadm patches read better that way)."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def to_yaml(doc: dict) -> str:
    out = dict(doc)
    if "kubeadmConfigPatches" in out:
        out["kubeadmConfigPatches"] = [_Literal(p) for p in out["kubeadmConfigPatches"]]
    return yaml.dump(out, Dumper=_Dumper, sort_keys=False, default_flow_style=False)

"""The kind Cluster config (kind.x-k8s.io/v1alpha4) for a cell."""

from __future__ import annotations

import yaml

from conformance.core.versions import version_key
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.noderuntime import NODE_RUNTIMES

API_VERSION = "kind.x-k8s.io/v1alpha4"
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


def socket_patch(role: str, socket: str) -> str:
    """The kubeadm patch pointing a node's kubelet at the runtime's socket (the field is the same in v1beta3 and
    v1beta4, so the patch carries no apiVersion)."""
    kind = "InitConfiguration" if role == "control-plane" else "JoinConfiguration"
    return f"kind: {kind}\nnodeRegistration:\n  criSocket: {socket}\n"


# A built node image has no CoreDNS (not in Debian, not buildable offline) and no kube-proxy image: kubeadm
# skips both addons (the suite's pods use neither DNS nor Services). Its kubelet must accept a cgroup v1 host.
SKIP_ADDONS = "kind: InitConfiguration\nskipPhases:\n- preflight\n- addon/kube-proxy\n- addon/coredns\n"
CGROUP_V1 = "kind: KubeletConfiguration\nfailCgroupV1: false\n"
FAIL_CGROUP_V1_MINOR = 31  # the field exists from 1.31; kubeadm refuses unknown fields


CGROUPFS = "kind: KubeletConfiguration\ncgroupDriver: cgroupfs\ncgroupRoot: /kubelet\n"

# kubeadm (v1beta4) makes its first API call (the admin user's ClusterRoleBinding) as soon as the kubelet
# answers, while the API server's static pod may still be starting, and gives it `kubernetesAPICall` (1 m by
# default). On a loaded or emulated host the API server takes longer than that (150 s under QEMU's software
# emulation: kubeadm init failed "could not bootstrap the admin user ... context deadline exceeded"). The wait
# gets the control plane's own health-check time (4 m), within `kind create --wait` and the create's timeout.
# The apiVersion limits the patch to v1beta4 configs (kind writes v1beta3 for older Kubernetes, without the field).
API_CALL_TIMEOUT = "4m0s"
KUBEADM_V1BETA4_MINOR = 31


def timeouts_patch(kind: str) -> str:
    """The kubeadm patch giving an Init/JoinConfiguration's API calls the control plane's start-up time."""
    return (f"apiVersion: kubeadm.k8s.io/v1beta4\nkind: {kind}\ntimeouts:\n"
            f"  kubernetesAPICall: {API_CALL_TIMEOUT}\n")


def config(cell: Cell, nodes: list[tuple[str, str]], built: bool, cgroupfs: bool = False) -> dict:
    """The config as a mapping: the control plane then the workers, each (image, runtime). `cgroupfs`: the
    nodes' OCI runtime has no systemd cgroup driver (the suite's static crun), so the kubelets use cgroupfs
    under /kubelet (the node entrypoint keeps that root in every v1 hierarchy), as the runtimes do."""
    doc: dict = {"kind": "Cluster", "apiVersion": API_VERSION, "name": cell.cluster_name, "nodes": []}
    for i, (image, runtime) in enumerate(nodes):
        role = "control-plane" if i == 0 else "worker"
        node: dict = {"role": role, "image": image, "labels": {NODE_LABEL: role if i == 0 else f"worker{i}"}}
        socket = NODE_RUNTIMES[runtime].kubeadm_socket
        if socket:
            node["kubeadmConfigPatches"] = [socket_patch(role, socket)]
        doc["nodes"].append(node)
    gates = feature_gates(cell.k8s)
    problems = check_gates(cell.k8s, gates)
    assert not problems, problems
    if gates:
        doc["featureGates"] = gates
    patches = []
    if built:
        doc["networking"] = {"disableDefaultCNI": True, "kubeProxyMode": "none"}
        patches.append(SKIP_ADDONS)
    if version_key(cell.k8s)[:2] >= (1, FAIL_CGROUP_V1_MINOR):
        patches.append(CGROUP_V1)
    if cgroupfs:
        patches.append(CGROUPFS)
    if version_key(cell.k8s)[:2] >= (1, KUBEADM_V1BETA4_MINOR):
        patches += [timeouts_patch("InitConfiguration"), timeouts_patch("JoinConfiguration")]
    if patches:
        doc["kubeadmConfigPatches"] = patches
    return doc


class _Literal(str):
    """A string YAML writes as a `|` block (kubeadm patches read better that way)."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _literals(doc: dict) -> dict:
    out = dict(doc)
    if "kubeadmConfigPatches" in out:
        out["kubeadmConfigPatches"] = [_Literal(p) for p in out["kubeadmConfigPatches"]]
    if "nodes" in out:
        out["nodes"] = [_literals(n) for n in out["nodes"]]
    return out


def to_yaml(doc: dict) -> str:
    return yaml.dump(_literals(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False)

"""The audit's findings: per container, the groups it was attached (status user.linux) minus what its pod
asks for (the primary gid, runAsGroup, supplementalGroups, fsGroup) are the implicit groups, those that
came only from the image's /etc/group and that Strict would remove; per node, whether its runtime
supports Strict (node.status.features.supplementalGroupsPolicy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from conformance.audit.owners import Owners, Workload
from conformance.kube.admission import REJECT_FROM_MINOR, is_rejected
from conformance.kube.status import kubelet_minor, node_feature, node_info

# container states, best first; anything but READY means the switch to Strict is not known to be safe
READY = "ready"  # nothing beyond what the pod asks for (or Strict already in force and honoured)
IMPLICIT = "implicit-groups"  # Merge/unset: groups from the image that Strict would remove
STRICT_IGNORED = "strict-not-applied"  # Strict asked, yet groups beyond the request were attached
REJECTED = "rejected"  # the kubelet refused the pod: Strict on a node without support
UNKNOWN = "unknown"  # no user in the status: an old runtime or kubelet, or the container never started
STATES = (READY, IMPLICIT, STRICT_IGNORED, REJECTED, UNKNOWN)
SEVERITY = {READY: 0, UNKNOWN: 1, IMPLICIT: 2, STRICT_IGNORED: 3, REJECTED: 4}

# node support for Strict
SUPPORTED = "supported"
WOULD_REJECT = "would-reject"  # kubelet >= 1.33 rejects Strict pods on this node
IGNORES_STRICT = "ignores-strict"  # an older kubelet runs Strict pods as Merge

KIND_KEYS = (("initContainers", "initContainerStatuses"), ("containers", "containerStatuses"),
             ("ephemeralContainers", "ephemeralContainerStatuses"))


@dataclass
class ContainerFinding:
    workload: Workload
    pod: str
    node: str
    phase: str
    container: str
    kind: str  # container | init | sidecar | ephemeral
    image: str
    policy: str  # Merge | Strict | unset (= Merge)
    state: str
    requested: list[int]
    attached: dict | None  # status user.linux: uid, gid, supplementalGroups
    implicit: list[int]
    note: str = ""

    def to_json(self) -> dict:
        return {"pod": self.pod, "node": self.node, "phase": self.phase, "container": self.container,
                "kind": self.kind, "image": self.image, "policy": self.policy, "state": self.state,
                "requested": self.requested, "attached": self.attached, "implicit": self.implicit, "note": self.note}


@dataclass
class NodeFinding:
    name: str
    runtime: str
    runtime_version: str
    kubelet: str
    feature: bool | None  # None: the field is absent
    strict: str  # SUPPORTED | WOULD_REJECT | IGNORES_STRICT
    pods: int = 0  # audited pods on the node
    would_reject: int = 0  # of them, pods the node would reject under Strict (not yet rejected)
    rejected: int = 0  # pods the node already rejected for Strict

    def to_json(self) -> dict:
        return {"name": self.name, "runtime": self.runtime, "runtimeVersion": self.runtime_version,
                "kubeletVersion": self.kubelet, "feature": self.feature, "strict": self.strict, "pods": self.pods,
                "wouldRejectUnderStrict": self.would_reject, "alreadyRejected": self.rejected}


@dataclass
class Audit:
    containers: list[ContainerFinding]
    nodes: list[NodeFinding]
    skipped: Counter = field(default_factory=Counter)  # pods not audited, by why

    def workloads(self) -> dict[Workload, list[ContainerFinding]]:
        out: dict[Workload, list[ContainerFinding]] = {}
        for c in self.containers:
            out.setdefault(c.workload, []).append(c)
        return dict(sorted(out.items(), key=lambda kv: (-SEVERITY[worst(kv[1])], kv[0])))

    def unsupported_nodes(self) -> list[NodeFinding]:
        """Nodes without Strict that run audited pods."""
        return [n for n in self.nodes if n.strict != SUPPORTED and (n.pods or n.rejected)]

    @property
    def exit_code(self) -> int:
        """0: every container ready and every node with audited pods supports Strict; else 1."""
        return 1 if any(c.state != READY for c in self.containers) or self.unsupported_nodes() else 0


def worst(findings: Iterable[ContainerFinding]) -> str:
    """The worst state among `findings` (READY when there are none)."""
    return max((f.state for f in findings), key=SEVERITY.__getitem__, default=READY)


def policy_of(pod: dict) -> str:
    return ((pod.get("spec") or {}).get("securityContext") or {}).get("supplementalGroupsPolicy") or "unset"


def requested_groups(pod_sc: dict, ctr_sc: dict, attached_gid: int | None) -> set[int]:
    """What Strict keeps: the primary gid (runAsGroup, else the image's, as attached), supplementalGroups and
    fsGroup."""
    gids = {int(g) for g in pod_sc.get("supplementalGroups") or []}
    for value in (pod_sc.get("fsGroup"), ctr_sc.get("runAsGroup", pod_sc.get("runAsGroup")), attached_gid):
        if value is not None:
            gids.add(int(value))
    return gids


def container_findings(pod: dict, workload: Workload) -> list[ContainerFinding]:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod["metadata"]
    pod_sc = spec.get("securityContext") or {}
    policy = policy_of(pod)
    rejected = is_rejected(pod)
    out = []
    for spec_key, status_key in KIND_KEYS:
        statuses = {s.get("name"): s for s in status.get(status_key) or []}
        for ctr in spec.get(spec_key) or []:
            kind = {"initContainers": "sidecar" if ctr.get("restartPolicy") == "Always" else "init",
                    "containers": "container", "ephemeralContainers": "ephemeral"}[spec_key]
            entry = statuses.get(ctr["name"])
            linux = ((entry or {}).get("user") or {}).get("linux")
            attached = None if linux is None else {"uid": linux.get("uid"), "gid": linux.get("gid"),
                                                   "supplementalGroups": list(linux.get("supplementalGroups") or [])}
            requested = requested_groups(pod_sc, ctr.get("securityContext") or {},
                                         attached["gid"] if attached else None)
            extra = sorted(set(attached["supplementalGroups"]) - requested) if attached else []
            note = ""
            if rejected:
                state, note = REJECTED, status.get("message", "")
            elif attached is None:
                state, note = UNKNOWN, _unknown_why(entry)
            else:
                state = READY if not extra else STRICT_IGNORED if policy == "Strict" else IMPLICIT
                note = _never_ran(entry)
            out.append(ContainerFinding(workload, meta["name"], spec.get("nodeName", ""), status.get("phase", ""),
                                        ctr["name"], kind, ctr.get("image", ""), policy, state, sorted(requested),
                                        attached, extra, note))
    return out


def _unknown_why(entry: dict | None) -> str:
    if entry is None:
        return "no container status yet"
    waiting = (entry.get("state") or {}).get("waiting")
    if waiting and not entry.get("containerID"):
        return f"not started ({waiting.get('reason', 'waiting')})"
    return "no user in the container status: the runtime or kubelet does not report it"


def _never_ran(entry: dict | None) -> str:
    """A note for a container the runtime created (and resolved the user of) but could not start: its groups
    are still what the runtime would give it, and what Strict would change."""
    terminated = ((entry or {}).get("state") or {}).get("terminated") or {}
    if terminated.get("reason") == "StartError" or terminated.get("startedAt", "").startswith("1970-01-01"):
        return f"never ran ({terminated.get('reason', 'not started')}): groups as the runtime resolved them"
    return ""


def node_finding(node: dict) -> NodeFinding:
    info = node_info(node)
    scheme, _, version = info.get("containerRuntimeVersion", "").partition("://")
    feature = node_feature(node)
    rejects = kubelet_minor(node) >= REJECT_FROM_MINOR
    strict = SUPPORTED if feature else WOULD_REJECT if rejects else IGNORES_STRICT
    return NodeFinding(node["metadata"]["name"], scheme, version, info.get("kubeletVersion", ""), feature, strict)


def audit(pods: list[dict], nodes: list[dict], owners: Owners) -> Audit:
    """Findings for every Linux pod in `pods` (still existing), and every Linux node."""
    result = Audit([], [node_finding(n) for n in nodes
                        if (n["metadata"].get("labels") or {}).get("kubernetes.io/os", "linux") == "linux"])
    by_name = {n.name: n for n in result.nodes}
    for pod in pods:
        spec = pod.get("spec") or {}
        if (spec.get("os") or {}).get("name") == "windows":
            result.skipped["windows pod"] += 1
            continue
        if pod["metadata"].get("deletionTimestamp"):
            result.skipped["being deleted"] += 1
            continue
        findings = container_findings(pod, owners.workload(pod))
        result.containers += findings
        node = by_name.get(spec.get("nodeName", ""))
        if node is None:
            continue
        if is_rejected(pod):
            node.rejected += 1
        else:
            node.pods += 1
            node.would_reject += int(node.strict == WOULD_REJECT)
    return result

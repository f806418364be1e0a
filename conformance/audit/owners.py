"""A pod's workload: its controller, one level further up for a ReplicaSet (its Deployment) and a Job (its
CronJob); a pod without a controller is its own workload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.audit.reader import OWNER_KINDS, ReadApi


@dataclass(frozen=True, order=True)
class Workload:
    namespace: str
    kind: str  # Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, ..., or Pod
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


def controller(meta: dict) -> dict | None:
    """The controller ownerReference (else the first one), or None."""
    refs = meta.get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


class Owners:
    """Resolves pods to workloads; lists ReplicaSets and Jobs only when some pod is owned by one, once per
    scope (namespace None = all namespaces)."""

    def __init__(self, api: ReadApi, namespace: str | None):
        self.api = api
        self.namespace = namespace
        self._index: dict[str, dict[tuple[str, str], dict]] = {}

    def _lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        if kind not in self._index:
            self._index[kind] = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                                 for o in self.api.owners(kind, self.namespace)}
        return self._index[kind].get((namespace, name))

    def workload(self, pod: dict) -> Workload:
        meta = pod["metadata"]
        namespace = meta.get("namespace", "")
        ref = controller(meta)
        if ref is None:
            return Workload(namespace, "Pod", meta["name"])
        if ref.get("kind") in OWNER_KINDS:
            owner = self._lookup(ref["kind"], namespace, ref["name"])
            top = controller(owner["metadata"]) if owner else None
            if top is not None:
                return Workload(namespace, top["kind"], top["name"])
        return Workload(namespace, ref["kind"], ref["name"])

    def workloads(self, pods: Iterable[dict]) -> list[Workload]:
        return [self.workload(p) for p in pods]

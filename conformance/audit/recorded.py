"""ReadApi over objects already read: a `kubectl get pods,nodes,replicasets,jobs -A -o json` dump (a List),
for an audit of a cluster that cannot be reached from here (`audit --from-file`), the tests and the bench."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.audit.reader import AuditError

KINDS = ("Pod", "Node", "ReplicaSet", "Job")


def matches(labels: dict, selector: str) -> bool:
    """Equality-based label selectors: `a=b,c!=d,e` (what kubectl -l takes without set operators)."""
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class RecordedApi:
    """The reads of ClusterReader answered from a list of objects (each with its `kind`)."""

    server = "recorded"

    def __init__(self, items: list[dict]):
        self.by_kind: dict[str, list[dict]] = {k: [] for k in KINDS}
        for item in items:
            if item.get("kind") in self.by_kind:
                self.by_kind[item["kind"]].append(item)
        self.calls: list[tuple[str, str | None]] = []

    @classmethod
    def load(cls, path: Path) -> RecordedApi:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AuditError(f"{path}: cannot read a JSON List of objects: {exc}") from exc
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise AuditError(f"{path}: items: expected the output of `kubectl get pods,nodes,replicasets,jobs -A "
                             "-o json` (a List with items)")
        return cls(items)

    def _in(self, kind: str, namespace: str | None) -> list[dict]:
        self.calls.append((kind, namespace))
        return [o for o in self.by_kind[kind] if namespace is None or o["metadata"].get("namespace") == namespace]

    def pods(self, namespace: str | None, selector: str) -> list[dict]:
        return [p for p in self._in("Pod", namespace) if matches(p["metadata"].get("labels") or {}, selector)]

    def nodes(self) -> list[dict]:
        return self._in("Node", None)

    def owners(self, kind: str, namespace: str | None) -> list[dict]:
        return self._in(kind, namespace)

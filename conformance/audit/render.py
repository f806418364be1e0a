"""The audit report: a table for the terminal, Markdown for a PR or a ticket, JSON (schema in docs/audit.md,
'Strict readiness audit')."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from conformance.audit.findings import SEVERITY, STATES, SUPPORTED, Audit, ContainerFinding, worst
from conformance.audit.owners import Workload

SCHEMA = "sgp-conformance/audit/v1"
FORMATS = ("table", "json", "markdown")
MEANING = {
    "ready": "nothing beyond what the pod asks for: Strict changes nothing (or Strict is already in force)",
    "implicit-groups": "groups that came only from the image's /etc/group: Strict would remove them",
    "strict-not-applied": "Strict is set, yet groups beyond the request were attached",
    "rejected": "the node rejected the pod: Strict on a node whose runtime lacks support",
    "unknown": "the status carries no user (an old runtime or kubelet, or the container never started)",
}


@dataclass
class Row:
    """One container of one workload, over all its pods."""

    workload: Workload
    container: str
    kind: str
    images: list[str]
    policies: list[str]
    state: str
    implicit: list[int]
    pods: int
    note: str


def rows(audit: Audit) -> list[Row]:
    out = []
    for workload, findings in audit.workloads().items():
        groups: dict[tuple[str, str], list[ContainerFinding]] = {}
        for f in findings:
            groups.setdefault((f.container, f.kind), []).append(f)
        for (container, kind), fs in groups.items():
            bad = max(fs, key=lambda f: SEVERITY[f.state])
            out.append(Row(workload, container, kind, sorted({f.image for f in fs}), sorted({f.policy for f in fs}),
                           bad.state, sorted({g for f in fs for g in f.implicit}), len({f.pod for f in fs}), bad.note))
    return out


def summary(audit: Audit) -> dict:
    workloads = Counter(worst(fs) for fs in audit.workloads().values())
    containers = Counter(c.state for c in audit.containers)
    without = audit.unsupported_nodes()
    return {"pods": len({(c.workload.namespace, c.pod) for c in audit.containers}),
            "containers": {s: containers[s] for s in STATES if containers[s]},
            "workloads": {s: workloads[s] for s in STATES if workloads[s]},
            "nodesWithoutSupport": len(without), "podsWouldBeRejected": sum(n.would_reject for n in without),
            "skipped": dict(audit.skipped)}


def to_json(audit: Audit, scope: dict) -> dict:
    return {"schema": SCHEMA, **scope, "exitCode": audit.exit_code, "summary": summary(audit),
            "workloads": [{"namespace": w.namespace, "kind": w.kind, "name": w.name,
                           "state": worst(fs),
                           "implicit": sorted({g for f in fs for g in f.implicit}),
                           "containers": [f.to_json() for f in fs]} for w, fs in audit.workloads().items()],
            "nodes": [n.to_json() for n in audit.nodes]}


def _gids(gids: list[int]) -> str:
    return ",".join(str(g) for g in gids) or "-"


def _feature(value: bool | None) -> str:
    return "absent" if value is None else str(value).lower()


def verdict_line(audit: Audit) -> str:
    s = summary(audit)
    parts = ", ".join(f"{n} {state}" for state, n in s["workloads"].items()) or "no workloads"
    nodes = (f"{s['nodesWithoutSupport']} node(s) with pods lack Strict support ({s['podsWouldBeRejected']} pod(s) "
             "would be rejected)" if s["nodesWithoutSupport"] else "every node with pods supports Strict")
    skipped = "".join(f"; skipped {n} {why}" for why, n in audit.skipped.items())
    count = sum(s["workloads"].values())
    return f"{s['pods']} pods, {count} workloads: {parts}; {nodes}{skipped}; exit {audit.exit_code}"


def _columns(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]


def workload_cells(row: Row) -> list[str]:
    return [str(row.workload), row.container, row.kind, ",".join(row.images), ",".join(row.policies), row.state,
            _gids(row.implicit), str(row.pods)]


WORKLOAD_HEAD = ["WORKLOAD", "CONTAINER", "KIND", "IMAGE", "POLICY", "STATE", "IMPLICIT GIDS", "PODS"]
NODE_HEAD = ["NODE", "RUNTIME", "VERSION", "KUBELET", "FEATURE", "STRICT", "PODS", "WOULD REJECT", "REJECTED"]


def node_cells(audit: Audit) -> list[list[str]]:
    return [[n.name, n.runtime, n.runtime_version, n.kubelet, _feature(n.feature), n.strict, str(n.pods),
             str(n.would_reject), str(n.rejected)] for n in audit.nodes]


def table(audit: Audit, scope: dict) -> str:
    where = f"context {scope['context']} ({scope['server']}), namespaces: {scope['namespaces']}" + \
        (f", selector {scope['selector']}" if scope.get("selector") else "")
    lines = [f"Strict readiness audit: {where}", ""]
    found = rows(audit)
    lines += _columns(WORKLOAD_HEAD, [workload_cells(r) for r in found]) if found else ["no pods"]
    lines += ["", *_columns(NODE_HEAD, node_cells(audit)), ""]
    notes = sorted({(r.state, r.note) for r in found if r.note and r.state != "rejected"})
    lines += [f"note ({state}): {note}" for state, note in notes]
    lines.append(f"audit: {verdict_line(audit)}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(audit: Audit, scope: dict) -> str:
    where = f"context `{scope['context']}`, namespaces: {scope['namespaces']}" + \
        (f", selector `{scope['selector']}`" if scope.get("selector") else "")
    lines = ["## Strict readiness audit", "", f"{where}  ", f"**{_md(verdict_line(audit))}**", "",
             "### Workloads", ""]
    if audit.containers:
        lines += ["| " + " | ".join(h.capitalize() for h in WORKLOAD_HEAD) + " |", "|" + "---|" * len(WORKLOAD_HEAD)]
        for r in rows(audit):
            cells = workload_cells(r)
            cells[0] = f"`{cells[0]}`"
            cells[5] = f"**{cells[5]}**" if r.state != "ready" else cells[5]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    else:
        lines.append("No pods.")
    lines += ["", "### Nodes", "", "| " + " | ".join(h.capitalize() for h in NODE_HEAD) + " |",
              "|" + "---|" * len(NODE_HEAD)]
    for n, cells in zip(audit.nodes, node_cells(audit), strict=True):
        cells[5] = cells[5] if n.strict == SUPPORTED else f"**{cells[5]}**"
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += ["", "States: " + "; ".join(f"**{s}**: {m}" for s, m in MEANING.items()) + "."]
    return "\n".join(lines) + "\n"

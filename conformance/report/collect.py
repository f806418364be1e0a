"""Read cell folders (results.json + the matrix's cell.json) into one Matrix value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conformance.core.model import POLICIES, CaseResult, Verdict
from conformance.core.scenario import USERNS_TAG
from conformance.report.describe import expected_text, observed_lines

CELL_FILE = "cell.json"  # written by conformance.tools.matrix next to each cell's results.json
RESULTS_FILE = "results.json"
SCHEMA_VERSION = 1
VERDICT_ORDER = [v.value for v in Verdict]


@dataclass
class Cell:
    """One runtime cell: its identity, how its run ended, and its case results."""

    id: str
    spec: str = ""
    index: int | None = None
    runtime: dict | None = None
    status: str = "complete"  # complete | crashed | interrupted | not-run
    exit_code: int = 0
    message: str = ""
    elapsed: float | None = None
    cases: dict[tuple[str, str], CaseResult] = field(default_factory=dict)
    target: str = "node"

    @property
    def label(self) -> str:
        """'containerd 2.1.9 (runc 1.1.5)' from the runtime record ('kubelet v1.36.2 on ...' for a local or
        cluster cell), else the cell spec."""
        if not self.runtime:
            return self.spec or self.id
        version = str(self.runtime.get("version", "")).removesuffix("+unknown")
        oci = self.runtime.get("oci_runtime") or {}
        handler = f"{oci['name']} {oci.get('version', '')}".strip() if oci else \
            self.runtime.get("handler") or "default handler"
        label = f"{self.runtime.get('name', '?')} {version} ({handler})"
        return f"{self.target}: {label}" if self.target != "node" else label

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(VERDICT_ORDER, 0)
        for case in self.cases.values():
            counts[case.verdict.value] += 1
        return counts

    @property
    def userns(self) -> dict:
        """The user-namespace cases (tag userns) of this cell: how many, their verdicts, and whether the
        runtime handler advertises user namespaces (None: not reported)."""
        cases = [c for c in self.cases.values() if USERNS_TAG in c.tags]
        counts = dict.fromkeys(VERDICT_ORDER, 0)
        for case in cases:
            counts[case.verdict.value] += 1
        features = (self.runtime or {}).get("handler_features")
        return {"handler_user_namespaces": features.get("user_namespaces") if features else None,
                "cases": len(cases), "counts": counts}

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "spec": self.spec,
            "label": self.label,
            "runtime": self.runtime,
            "status": self.status,
            "exit_code": self.exit_code,
            "message": self.message,
            "elapsed": self.elapsed,
            "total": len(self.cases),
            "counts": self.counts,
            "user_namespaces": self.userns,
        }


@dataclass
class Row:
    """One scenario x policy across all cells."""

    scenario: str
    policy: str
    source: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.scenario, self.policy


@dataclass
class Matrix:
    cells: list[Cell]
    rows: list[Row]
    generated: str = ""

    @property
    def exit_code(self) -> int:
        """Worst cell wins: 2 (error) > 1 (conformance failure) > 0."""
        return max((c.exit_code for c in self.cells), default=2)

    def result(self, row: Row, cell: Cell) -> CaseResult | None:
        return cell.cases.get(row.key)

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "generated": self.generated,
            "exit_code": self.exit_code,
            "cells": [c.to_json() for c in self.cells],
            "cases": [self._row_json(r) for r in self.rows],
        }

    def _row_json(self, row: Row) -> dict:
        results = {}
        for cell in self.cells:
            case = self.result(row, cell)
            if case is None:
                continue
            results[cell.id] = {
                "verdict": case.verdict.value,
                "expected": case.expected,
                "observed": case.observed,
                "expected_text": expected_text(case.expected),
                "observed_text": [f"{k}: {v}" for k, v in observed_lines(case.observed)],
                "detail": case.detail,
                "links": case.links,
                "duration": case.duration,
                "choice": case.choice,
            }
        return {"scenario": row.scenario, "policy": row.policy, "source": row.source, "tags": row.tags,
                "results": results}


def _policy_rank(policy: str) -> int:
    return POLICIES.index(policy) if policy in POLICIES else len(POLICIES)


def read_cell(folder: Path) -> Cell | None:
    """A Cell from `folder`, or None when it holds neither results.json nor cell.json."""
    meta_path, results_path = folder / CELL_FILE, folder / RESULTS_FILE
    if not meta_path.is_file() and not results_path.is_file():
        return None
    cell = Cell(id=folder.name)
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            meta = {"status": "crashed", "exit_code": 2, "message": f"unreadable {CELL_FILE}: {exc}"}
        cell.spec = str(meta.get("spec", ""))
        cell.index = meta.get("index")
        cell.status = str(meta.get("status", "complete"))
        cell.exit_code = int(meta.get("exit_code", 2))
        cell.message = str(meta.get("message", ""))
        cell.elapsed = meta.get("elapsed")
    if not results_path.is_file():
        cell.exit_code = 2  # no results: never a pass
        if cell.status == "complete":
            cell.status = "crashed"
        cell.message = cell.message or f"no {RESULTS_FILE}"
        return cell
    try:
        doc = json.loads(results_path.read_text())
        cases = [CaseResult.from_json(c) for c in doc.get("cases", [])]
    except (OSError, ValueError, KeyError) as exc:
        cell.status, cell.exit_code = "crashed", 2
        cell.message = f"unreadable {RESULTS_FILE}: {exc}"
        return cell
    cell.runtime = doc.get("runtime")
    cell.target = str(doc.get("target", "node"))
    cell.cases = {(c.scenario, c.policy): c for c in cases}
    recorded = int((doc.get("summary") or {}).get("exit_code", 2))
    cell.exit_code = max(cell.exit_code, recorded) if meta_path.is_file() else recorded
    if not cases:
        cell.exit_code = 2
        cell.message = cell.message or "no cases ran"
    return cell


def collect(results_dir: Path, order: list[str] | None = None) -> Matrix:
    """Cell folders directly under `results_dir`: exactly the ids in `order` (in that order, a missing
    one shown as crashed), or else every folder with results.json or cell.json, in cell.json index order."""
    cells = [c for c in (read_cell(p) for p in sorted(results_dir.iterdir()) if p.is_dir()) if c is not None] \
        if results_dir.is_dir() else []
    if order:
        found = {c.id: c for c in cells}
        cells = [found.get(cell_id) or Cell(id=cell_id, status="not-run", exit_code=2, message="no results")
                 for cell_id in order]
    else:
        cells.sort(key=lambda c: (c.index if isinstance(c.index, int) else 1_000_000, c.id))
    rows: dict[tuple[str, str], Row] = {}
    for cell in cells:
        for key, case in cell.cases.items():
            rows.setdefault(key, Row(case.scenario, case.policy, case.source, list(case.tags)))
    ordered = sorted(rows.values(), key=lambda r: (r.scenario, _policy_rank(r.policy), r.policy))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return Matrix(cells=cells, rows=ordered, generated=generated)

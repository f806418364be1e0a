"""results.json: the public record of a run (schema documented in docs/results.md)."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.core.model import CaseResult, RuntimeInfo, exit_code

SCHEMA_VERSION = 1


def write(path: Path, runtime: RuntimeInfo | None, cases: list[CaseResult], extra: dict | None = None) -> None:
    doc = {
        "schema": SCHEMA_VERSION,
        "runtime": runtime.to_json() if runtime else None,
        "cases": [c.to_json() for c in sorted(cases, key=lambda c: (c.scenario, c.policy))],
        "summary": summary(cases),
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def summary(cases: list[CaseResult]) -> dict:
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.verdict.value] = counts.get(case.verdict.value, 0) + 1
    return {"total": len(cases), "counts": counts, "exit_code": exit_code([c.verdict for c in cases])}


def read(path: Path) -> tuple[dict, list[CaseResult]]:
    doc = json.loads(path.read_text())
    return doc, [CaseResult.from_json(c) for c in doc.get("cases", [])]

"""Progress lines while a run goes, and the closing summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from conformance.core.model import CaseResult, Verdict

LABELS = {
    Verdict.PASS: "PASS",
    Verdict.FAIL: "FAIL",
    Verdict.UNSUPPORTED: "UNSUPPORTED",
    Verdict.KNOWN_FAILURE: "KNOWN-FAILURE",
    Verdict.REJECTED: "REJECTED",
    Verdict.ERROR: "ERROR",
}


class Progress:
    def __init__(self, out: TextIO):
        self.out = out
        self.total: int | None = None
        self.done = 0
        self.skipped = 0
        self.started = time.monotonic()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self, text: str) -> None:
        """The session's one-line description (runtime, cluster), then the clock starts for the cases."""
        self.line(text)
        self.started = time.monotonic()

    def case(self, result: CaseResult) -> None:
        self.done += 1
        total = self.total if self.total is not None else "?"
        width = len(str(total))
        note = result.detail.splitlines()[0] if result.detail and result.verdict != Verdict.PASS else ""
        if result.verdict == Verdict.PASS and result.detail:
            note = result.detail
        self.line(f"[{self.done:>{width}}/{total}] {LABELS[result.verdict]:<13} {result.scenario}[{result.policy}]"
                   f" {result.duration:.2f}s" + (f"  {note}" if note else ""))

    def not_run(self, name: str, why: str) -> None:
        """A case this run cannot express (a runtime restart on CRI_ENDPOINT): a line of its own, never a verdict."""
        self.done += 1
        self.skipped += 1
        total = self.total if self.total is not None else "?"
        self.line(f"[{self.done:>{len(str(total))}}/{total}] {'NOT-RUN':<13} {name}  {why}")

    def summary(self, records: list[CaseResult], code: int, results_dir: Path, interrupted: bool = False) -> None:
        counts: dict[str, int] = {}
        for r in records:
            counts[LABELS[r.verdict]] = counts.get(LABELS[r.verdict], 0) + 1
        elapsed = time.monotonic() - self.started
        bad = [r for r in records if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        by_detail: dict[str, list[CaseResult]] = {}
        for r in bad:
            by_detail.setdefault(r.detail, []).append(r)
        for detail, group in by_detail.items():
            names = ", ".join(f"{r.scenario}[{r.policy}]" for r in group[:3])
            more = f" and {len(group) - 3} more" if len(group) > 3 else ""
            source = f" ({group[0].source})" if len(group) == 1 else ""
            self.line(f"--- {LABELS[group[0].verdict]} {names}{more}{source}")
            for line in detail.splitlines():
                self.line(f"    {line}")
        parts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())) or "no cases"
        if self.skipped:
            parts += f", {self.skipped} not run"
        ran = f"{len(records)} cases"
        if interrupted:
            total = self.total if self.total is not None else len(records) + self.skipped
            ran = (f"interrupted after {len(records)} of {total} cases "
                   f"({max(0, total - len(records) - self.skipped)} did not run)")
        self.line(f"summary: {ran}: {parts} in {elapsed:.1f}s; exit {code}; results in {results_dir}/results.json")

"""`make soak N=20`: the whole catalogue N times in a row; do the verdicts ever change?

Each run is a separate `sgp-conformance run` (its own private runtime, its own results dir under
<results-dir>/soak/run-NN), on a copy of scenarios/ and images/ taken at the start. Prints one line
per run, then how many runs' verdicts differed from the first run's (target 0) and the spread of
run times; writes <results-dir>/soak/soak.json.
Exit 0: no run differed; 1: some run differed; 2: a run broke (no results.json) or bad usage.
Arguments it does not know go to every `sgp-conformance run` (e.g. --version 1.7, -n 4).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

Verdicts = dict[str, str]  # "scenario[policy]" -> verdict


@dataclass
class SoakRun:
    index: int
    exit_code: int
    seconds: float
    verdicts: Verdicts | None  # None: the run wrote no results.json
    runtime: str = ""
    changed: list[str] = field(default_factory=list)  # "case: first -> this" against the first run

    def to_json(self) -> dict:
        return {"run": self.index, "exit_code": self.exit_code, "seconds": round(self.seconds, 2),
                "cases": len(self.verdicts or {}), "runtime": self.runtime, "changed": self.changed}


def cli() -> str:
    """The console command next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "sgp-conformance"
    return str(local) if local.exists() else (shutil.which("sgp-conformance") or "sgp-conformance")


def read_verdicts(results: Path) -> tuple[Verdicts, str] | None:
    if not results.exists():
        return None
    doc = json.loads(results.read_text())
    runtime = doc.get("runtime") or {}
    return ({f"{c['scenario']}[{c['policy']}]": c["verdict"] for c in doc.get("cases", [])},
            f"{runtime.get('name', '?')} {runtime.get('version', '?')}")


def differences(first: Verdicts | None, this: Verdicts | None) -> list[str]:
    """Cases whose verdict differs from the first run ('missing' where a run has no such case)."""
    if first is None or this is None:
        return ["the run wrote no results.json"] if this is None else []
    return [f"{case}: {first.get(case, 'missing')} -> {this.get(case, 'missing')}"
            for case in sorted(set(first) | set(this)) if first.get(case) != this.get(case)]


def run_once(index: int, base: Path, extra: list[str]) -> SoakRun:
    out = base / f"run-{index:02d}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [cli(), "run", "--results-dir", str(out), *extra]
    started = time.monotonic()
    with open(base / f"run-{index:02d}.log", "w") as log:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    read = read_verdicts(out / "results.json")
    return SoakRun(index, proc.returncode, seconds, read[0] if read else None, read[1] if read else "")


def snapshot_catalogue(base: Path, extra: list[str]) -> list[str]:
    """Copy scenarios/ and images/ once, so every run judges the same catalogue even if it is edited meanwhile."""
    from conformance.catalogue import PROJECT

    out = list(extra)
    for flag, default in (("--scenarios", PROJECT / "scenarios"), ("--images", PROJECT / "images")):
        if any(a == flag or a.startswith(flag + "=") for a in extra):
            continue
        copy = base / "catalogue" / default.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(default, copy)
        out += [flag, str(copy.resolve())]
    return out


def spread(values: list[float]) -> str:
    return (f"min {min(values):.1f}s / median {statistics.median(values):.1f}s / max {max(values):.1f}s"
            if values else "no runs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-N", "--runs", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("--results-dir", default="results", help="runs go to <results-dir>/soak/ (default results)")
    args, extra = parser.parse_known_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not any(a == "--version" or a.startswith("--version=") for a in extra) and \
            not any(a.startswith("--cri-endpoint") for a in extra):
        extra = ["--version", "2", *extra]
    base = Path(args.results_dir) / "soak"
    base.mkdir(parents=True, exist_ok=True)
    extra = snapshot_catalogue(base, extra)
    runs: list[SoakRun] = []
    print(f"soak: {args.runs} runs of `sgp-conformance run {' '.join(extra)}`; logs and results in {base}/",
          flush=True)
    for i in range(1, args.runs + 1):
        run = run_once(i, base, extra)
        run.changed = differences(runs[0].verdicts if runs else run.verdicts, run.verdicts)
        runs.append(run)
        state = "same verdicts as run 1" if not run.changed else f"{len(run.changed)} verdict(s) differ from run 1"
        counts: dict[str, int] = {}
        for verdict in (run.verdicts or {}).values():
            counts[verdict] = counts.get(verdict, 0) + 1
        tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        print(f"run {i:2d}/{args.runs}: exit {run.exit_code}, {run.seconds:6.1f}s, {tally or 'no cases'}; {state}",
              flush=True)
        for change in run.changed[:10]:
            print(f"    {change}")
    differing = [r for r in runs if r.changed]
    broken = [r for r in runs if r.verdicts is None or r.exit_code not in (0, 1)]
    times = [r.seconds for r in runs]
    runtime = next((r.runtime for r in runs if r.runtime), "?")
    print(f"\nsoak summary: {len(runs)} runs x {len(runs[0].verdicts or {})} cases on {runtime}: "
          f"{len(differing)} run(s) differed from the first; {len(broken)} broke; run time {spread(times)}")
    (base / "soak.json").write_text(json.dumps({
        "runs": [r.to_json() for r in runs], "differing_runs": len(differing), "broken_runs": len(broken),
        "seconds": {"min": min(times), "median": statistics.median(times), "max": max(times)},
        "runtime": runtime, "args": extra,
    }, indent=2) + "\n")
    if broken:
        return 2
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())

"""`make soak N=20 [TARGET=...] [LOAD=2]`: the whole catalogue N times in a row on any target, optionally
beside a CPU hog; does a verdict ever change, does any case ever err?

Each run is a separate `sgp-conformance run` (its own private runtime or cluster, its own results dir
under <results-dir>/soak/run-NN), on a copy of scenarios/ and images/ taken at the start. `--load N` keeps
N busy processes running for the whole soak (a loaded CI runner). Prints one line per run, then every case
whose verdict changed (how often) and every error with its reason; writes <results-dir>/soak/soak.json.
Exit 0: no flip and no error; 1: a verdict flipped or a case erred; 2: a run broke (no results.json) or
bad usage. Arguments it does not know go to every `sgp-conformance run` (e.g. --target kind, -n 4).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.core.options import from_environment
from conformance.paths import IMAGES, SCENARIOS

Verdicts = dict[str, str]  # "scenario[policy]" -> verdict
HOG = "while True: pass"


@dataclass
class SoakRun:
    index: int
    exit_code: int
    seconds: float
    verdicts: Verdicts | None  # None: the run wrote no results.json
    runtime: str = ""
    changed: list[str] = field(default_factory=list)  # "case: first -> this" against the first run
    errors: dict[str, str] = field(default_factory=dict)  # case -> the error's detail

    def to_json(self) -> dict:
        return {"run": self.index, "exit_code": self.exit_code, "seconds": round(self.seconds, 2),
                "cases": len(self.verdicts or {}), "runtime": self.runtime, "changed": self.changed,
                "errors": self.errors}


def cli() -> str:
    """The console command next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "sgp-conformance"
    return str(local) if local.exists() else (shutil.which("sgp-conformance") or "sgp-conformance")


def read_verdicts(results: Path) -> tuple[Verdicts, str, dict[str, str]] | None:
    """(verdicts, runtime, errors with their details) of a run's results.json; None if it wrote none."""
    if not results.exists():
        return None
    doc = json.loads(results.read_text())
    runtime = doc.get("runtime") or {}
    cases = doc.get("cases", [])
    # a cluster's node names may be new each run (TARGET=local): a case is known by its node's place
    nodes = {f"@{n}": f"@node{i}" for i, n in enumerate(sorted((doc.get("kubernetes") or {}).get("nodes") or {}), 1)}

    def key(case: dict) -> str:
        name = case["scenario"]
        for real, place in nodes.items():
            name = name.replace(real, place)
        return f"{name}[{case['policy']}]"

    return ({key(c): c["verdict"] for c in cases}, f"{runtime.get('name', '?')} {runtime.get('version', '?')}",
            {key(c): (c.get("detail") or "")[:500] for c in cases if c["verdict"] == "error"})


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
    return SoakRun(index, proc.returncode, seconds, read[0] if read else None, read[1] if read else "",
                   errors=read[2] if read else {})


def option(argv: list[str], flag: str) -> str | None:
    """The value of `flag` in an argument list (`--flag v` or `--flag=v`); None if absent."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def run_flags(extra: list[str]) -> list[str]:
    """The flags every run gets: `make soak`'s variables become flags (from_environment), except RESULTS_DIR,
    which is the soak's own (each run writes <results-dir>/soak/run-NN/)."""
    out, skip = [], False
    for arg in from_environment(extra):
        if skip:
            skip = False
        elif arg == "--results-dir":
            skip = True
        elif not arg.startswith("--results-dir="):
            out.append(arg)
    return out


def flips(runs: list[SoakRun]) -> dict[str, list[str]]:
    """Per case whose verdict was not always the same: its verdict in each run ('missing' where absent)."""
    cases = sorted({c for r in runs for c in (r.verdicts or {})})
    seen = {c: [(r.verdicts or {}).get(c, "missing") for r in runs if r.verdicts is not None] for c in cases}
    return {c: v for c, v in seen.items() if len(set(v)) > 1}


@contextlib.contextmanager
def cpu_load(processes: int):
    """`processes` busy loops beside the soak (a loaded runner), gone afterwards whatever happens."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(processes)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()


def snapshot_catalogue(base: Path, extra: list[str]) -> list[str]:
    """Copy scenarios/ and images/ once, so every run judges the same catalogue even if it is edited meanwhile."""
    out = list(extra)
    for flag, default in (("--scenarios", SCENARIOS), ("--images", IMAGES)):
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
    parser = argparse.ArgumentParser(prog="python -m conformance.tools.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-N", "--runs", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("--results-dir", default="results", help="runs go to <results-dir>/soak/ (default results)")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the runs (default 0)")
    args, extra = parser.parse_known_args(argv)
    extra = run_flags(extra)
    if args.runs < 1 or args.load < 0:
        parser.error("--runs must be at least 1, --load at least 0")
    if option(extra, "--target") in (None, "node") and \
            not any(a.startswith(("--version", "--cri-endpoint", "--runtime")) for a in extra):
        extra = ["--version", "2", *extra]
    base = Path(args.results_dir) / "soak"
    base.mkdir(parents=True, exist_ok=True)
    extra = snapshot_catalogue(base, extra)
    runs: list[SoakRun] = []
    load = f" beside {args.load} busy process(es)" if args.load else ""
    print(f"soak: {args.runs} runs of `sgp-conformance run {' '.join(extra)}`{load}; logs and results in {base}/",
          flush=True)
    with cpu_load(args.load):
        runs = soak(args.runs, base, extra)
    return summarise(runs, base, extra, args.load)


def soak(count: int, base: Path, extra: list[str]) -> list[SoakRun]:
    runs: list[SoakRun] = []
    for i in range(1, count + 1):
        run = run_once(i, base, extra)
        run.changed = differences(runs[0].verdicts if runs else run.verdicts, run.verdicts)
        runs.append(run)
        state = "same verdicts as run 1" if not run.changed else f"{len(run.changed)} verdict(s) differ from run 1"
        counts: dict[str, int] = {}
        for verdict in (run.verdicts or {}).values():
            counts[verdict] = counts.get(verdict, 0) + 1
        tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        print(f"run {i:2d}/{count}: exit {run.exit_code}, {run.seconds:6.1f}s, {tally or 'no cases'}; {state}",
              flush=True)
        for change in run.changed[:10]:
            print(f"    {change}")
        for case, detail in run.errors.items():
            print(f"    error {case}: {detail.splitlines()[0] if detail else ''}")
    return runs


def summarise(runs: list[SoakRun], base: Path, extra: list[str], load: int) -> int:
    differing = [r for r in runs if r.changed]
    broken = [r for r in runs if r.verdicts is None or r.exit_code not in (0, 1)]
    flipped = flips(runs)
    errors = [(r.index, case, detail) for r in runs for case, detail in r.errors.items()]
    times = [r.seconds for r in runs]
    runtime = next((r.runtime for r in runs if r.runtime), "?")
    for case, verdicts in flipped.items():
        changes = sum(a != b for a, b in itertools.pairwise(verdicts))
        print(f"flip: {case}: {changes} change(s): {' '.join(verdicts)}")
    for index, case, detail in errors:
        print(f"error in run {index}: {case}: {detail}")
    print(f"\nsoak summary: {len(runs)} runs x {len(runs[0].verdicts or {})} cases on {runtime}"
          f"{f' beside {load} busy process(es)' if load else ''}: {len(flipped)} case(s) flipped, {len(errors)} "
          f"error(s), {len(broken)} run(s) broke; run time {spread(times)}")
    (base / "soak.json").write_text(json.dumps({
        "runs": [r.to_json() for r in runs], "differing_runs": len(differing), "broken_runs": len(broken),
        "flips": flipped, "errors": [{"run": i, "case": c, "detail": d} for i, c, d in errors], "load": load,
        "seconds": {"min": min(times), "median": statistics.median(times), "max": max(times)},
        "runtime": runtime, "args": extra,
    }, indent=2) + "\n")
    if broken:
        return 2
    return 1 if flipped or errors else 0


if __name__ == "__main__":
    sys.exit(main())

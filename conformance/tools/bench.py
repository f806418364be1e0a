"""`make bench`: the floor a target sets per pod, and what the suite costs per case on top of it, for any target.

The floor is the target's own runner creating bare pods and observing them as it observes a case (Runner.bare_pods:
on the node target a sandbox and a container running /bin/true, waited for until it exits, then removed; on the
Kubernetes targets a pod that sleeps, waited for through the run's watch until it runs, deleted in the background),
one at a time and as many side by side as the suite runs at once. The suite is the whole catalogue run with the
same options (the environment, as `make` passes them), start to report; the node target also with -n workers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from conformance.core.catalogue import Catalogue
from conformance.core.floor import BarePod
from conformance.core.options import FLAGS, from_mapping
from conformance.paths import PROJECT
from conformance.targets import create_session

POLL = 0.02  # the earlier floor: each bare pod polled with a GET every 20 ms (shown beside, not used in ratios)


def floor(rounds: int, results: Path) -> tuple[str, float, int, list[BarePod], list[BarePod], list[BarePod]]:
    """(the session's header, seconds to start it, pods at once, bare pods one at a time, side by side, side by
    side polled as the earlier floor was) on a session of its own with the run's options."""
    opts = from_mapping({o.name: os.environ.get(o.env) for o in FLAGS})
    opts.results_dir = results / "floor"
    session = create_session(opts, Catalogue.load(opts.scenarios_dir, opts.images_dir))
    try:
        started = time.perf_counter()
        session.start()
        up = time.perf_counter() - started
        runner = session.runner()
        try:
            runner.bare_pods(2, 1)  # warm-up
            serial = runner.bare_pods(rounds, 1)
            batch = runner.bare_pods(rounds, runner.parallel) if runner.parallel > 1 else []
            polled = runner.bare_pods(rounds, runner.parallel, poll=POLL)
        finally:
            runner.close()
        return session.header(up).splitlines()[0], up, runner.parallel, serial, batch, polled
    finally:
        session.stop()


def suite_run(workers: str | None, results: Path) -> tuple[float, dict, str]:
    """(wall seconds start to report, results.json, output) of one whole catalogue run with the same options."""
    argv = [str(Path(sys.executable).parent / "sgp-conformance"), "run", "--options-from-env", "--results-dir",
            str(results)]
    if workers:
        argv += ["-n", workers]
    started = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if res.returncode not in (0, 1):
        raise SystemExit(f"suite run failed ({res.returncode}):\n{res.stdout[-3000:]}")
    return wall, json.loads((results / "results.json").read_text()), res.stdout


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def target_bench(rounds: int, workers: str, results: Path) -> int:
    """The floor, then the suite's whole catalogue, set side by side."""
    header, up, width, serial, batch, polled = floor(rounds, results)
    f = statistics.median(p.seconds for p in serial)
    removals = [p.removal for p in serial if p.removal is not None]
    r = statistics.median(removals) if removals else 0.0
    fb = statistics.median(p.seconds for p in batch) if batch else f
    rate = width / fb  # bare pods per second at the suite's concurrency
    print(f"{header}; {os.cpu_count()} cores; started in {up:.1f} s")
    print(f"floor: a bare pod observed as a case is: median {ms(f)} one at a time (min "
          f"{ms(min(p.seconds for p in serial))}, max {ms(max(p.seconds for p in serial))}, {rounds} pods)"
          + (f"; removing it {ms(r)} more" if removals else "")
          + (f"; {ms(fb)} each with {width} side by side" if batch else "") + f" = {rate:.2f} pods/s")
    if polled:
        fp = statistics.median(p.seconds for p in polled)
        print(f"earlier floor, for comparison only: the same pods each polled with a GET every {ms(POLL)} "
              f"({width / POLL:.0f} requests/s at the API server while {width} run): median {ms(fp)} each with "
              f"{width} side by side = {width / fp:.2f} pods/s; the ratios below use the watch floor above")
    runs = [("suite", None)] + ([(f"suite -n {workers}", workers)] if width == 1 and workers else [])
    for label, n in runs:
        wall, doc, out = suite_run(n, results / (label.replace(" ", "").replace("-", "")))
        cases = doc["summary"]["total"]
        ready = re.search(r"ready in ([0-9.]+)s", out)
        alone = wall - float(ready.group(1)) if ready else wall
        pods = {c["observed"]["pod"].get("name") for c in doc["cases"] if "pod" in (c.get("observed") or {})}
        print(f"{label}: {cases} cases" + (f" in {len(pods)} pods" if pods else "") + f", whole run {wall:.1f} s "
              f"start to report = {cases / wall:.2f} cases/s = {cases / wall / rate:.2f}x the bare-pod rate; "
              f"per case {ms(wall / cases)} = {wall / cases / f:.2f}x the floor's time per pod"
              + (f" ({wall / cases / (f + r):.2f}x with removal)" if removals else "")
              + (f"; cases alone (after start-up) {alone:.1f} s = {cases / alone / rate:.2f}x" if ready else ""))
    return 0


AUDIT_RECORDED = PROJECT / "tests" / "fixtures" / "audit" / "containerd-2.json"


def scaled(items: list[dict], pods: int) -> list[dict]:
    """Copies of recorded pods (with their ReplicaSets and Jobs) in namespaces of their own, up to `pods` pods;
    the nodes once."""
    import copy

    originals = [i for i in items if i["kind"] == "Pod"]
    out = [i for i in items if i["kind"] == "Node"]
    made = 0
    for k in range(-(-pods // len(originals))):
        for item in items:
            if item["kind"] == "Node" or (item["kind"] == "Pod" and made >= pods):
                continue
            made += item["kind"] == "Pod"
            twin = copy.deepcopy(item)
            twin["metadata"]["namespace"] = f"{twin['metadata']['namespace']}-{k}"
            out.append(twin)
    return out


def audit_bench(pods: int, rounds: int) -> int:
    """Seconds to audit `pods` pods of recorded objects: owners, findings and all three reports."""
    from conformance.audit import render
    from conformance.audit.cli import run
    from conformance.audit.recorded import RecordedApi

    items = scaled(json.loads(AUDIT_RECORDED.read_text())["items"], pods)
    scope = {"context": "bench", "server": "recorded", "namespaces": "all", "selector": ""}
    times, sizes = [], {}
    for _ in range(rounds):
        started = time.perf_counter()
        result = run(RecordedApi(items), None, "")
        analysed = time.perf_counter()
        sizes = {"json": len(json.dumps(render.to_json(result, scope))), "table": len(render.table(result, scope)),
                 "markdown": len(render.markdown(result, scope))}
        times.append((analysed - started, time.perf_counter() - analysed))
    count = sum(1 for i in items if i["kind"] == "Pod")
    analyse, report = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    print(f"audit of {count} pods ({len(result.containers)} containers, {len(result.workloads())} workloads) "
          f"recorded from a real cluster: median over {rounds} rounds {analyse * 1000:.0f} ms owners and findings, "
          f"{report * 1000:.0f} ms for the three reports (json {sizes['json'] // 1024} KiB, table "
          f"{sizes['table'] // 1024} KiB, markdown {sizes['markdown'] // 1024} KiB); {os.cpu_count()} cores")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sgp-bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", default="2", help="node target: xdist workers for a second run")
    parser.add_argument("--results-dir", default="results/bench")
    parser.add_argument("--audit", action="store_true", help="`sgp-conformance audit` on recorded objects instead")
    parser.add_argument("--pods", type=int, default=1000, help="--audit: pods to audit")
    args = parser.parse_args(argv)
    if args.audit:
        return audit_bench(args.pods, args.rounds)
    return target_bench(args.rounds, args.workers, Path(args.results_dir))


if __name__ == "__main__":
    sys.exit(main())

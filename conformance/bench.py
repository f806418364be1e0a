"""`make bench`: the floor a runtime sets per pod, and what the suite costs per case on top of it.

Floor: bare RunPodSandbox + CreateContainer + StartContainer + wait for exit (+ removal), no checks.
Suite: the full catalogue with all observations, serially and with xdist, timed start to report.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from conformance.catalogue import PROJECT, Catalogue
from conformance.cri import api_pb2 as pb
from conformance.options import Options
from conformance.session import NodeSession


def floor(session: NodeSession, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per bare pod (sandbox, container running /bin/true, wait for exit) and per removal."""
    client, refs = session.client, session.image_refs
    assert client is not None and session.log_root is not None and session.target is not None
    times, removals = [], []
    for _ in range(rounds):
        name = f"bench-{secrets.token_hex(3)}"
        ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
        linux = pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns))
        if session.target.cgroup_parent:
            linux.cgroup_parent = f"/{session.target.cgroup_parent}/{name}"
        sandbox = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=secrets.token_hex(8), namespace="bench"),
            log_directory=str(session.log_root / name), labels={"sgpconf.run": session.run_id}, linux=linux)
        ref = refs["agnhost-like"]
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=ref, user_specified_image=ref),
            command=["/bin/true"], log_path="c.log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                namespace_options=ns, run_as_user=pb.Int64Value(value=1000))))
        started = time.perf_counter()
        sandbox_id = client.run_pod_sandbox(sandbox)
        container_id = client.create_container(sandbox_id, container, sandbox)
        client.start_container(container_id)
        while client.container_status(container_id).state != pb.CONTAINER_EXITED:
            time.sleep(0.005)
        exited = time.perf_counter()
        times.append(exited - started)
        session.target.remove_sandbox(sandbox_id)
        removals.append(time.perf_counter() - exited)
    return times, removals


def suite_run(version: str, workers: str | None, results: Path) -> tuple[float, int]:
    """(wall seconds start to report, number of cases) for one full catalogue run."""
    argv = [str(Path(sys.executable).parent / "sgp-conformance"), "run", "--version", version,
            "--results-dir", str(results)]
    if workers:
        argv += ["-n", workers]
    started = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"suite run failed ({res.returncode}):\n{res.stdout[-3000:]}")
    cases = json.loads((results / "results.json").read_text())["summary"]["total"]
    return wall, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sgp-bench", description=__doc__)
    parser.add_argument("--version", default="2")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", default="2", help="xdist workers for the parallel run")
    parser.add_argument("--results-dir", default="results/bench")
    args = parser.parse_args(argv)
    results = Path(args.results_dir)
    opts = Options(version=args.version, results_dir=results)
    session = NodeSession(opts, Catalogue.load(PROJECT / "scenarios", PROJECT / "images"))
    try:
        session.start()
        assert session.info is not None
        runtime = f"{session.info.name} {session.info.version}"
        floor(session, 2)  # warm-up
        bare, removal = floor(session, args.rounds)
    finally:
        session.stop()
    serial_wall, cases = suite_run(args.version, None, results / "serial")
    parallel_wall, _ = suite_run(args.version, args.workers, results / "parallel")
    f, r = statistics.median(bare), statistics.median(removal)
    serial, parallel = serial_wall / cases, parallel_wall / cases
    print(f"runtime: {runtime}; {cases} cases; {os.cpu_count()} cores")
    print(f"floor: bare RunPodSandbox+CreateContainer+StartContainer+wait for exit: median {f * 1000:.0f} ms "
          f"over {args.rounds} pods (min {min(bare) * 1000:.0f}, max {max(bare) * 1000:.0f}); "
          f"removing the pod: {r * 1000:.0f} ms more")
    print(f"suite per case, all observations, start to report / cases: serial {serial * 1000:.0f} ms = "
          f"{serial / f:.2f}x floor ({serial / (f + r):.2f}x floor+removal); -n {args.workers} "
          f"{parallel * 1000:.0f} ms = {parallel / f:.2f}x floor")
    print(f"whole catalogue, start to report: serial {serial_wall:.1f} s ({cases / serial_wall:.1f} cases/s), "
          f"-n {args.workers} {parallel_wall:.1f} s ({cases / parallel_wall:.1f} cases/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

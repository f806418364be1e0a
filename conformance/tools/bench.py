"""`make bench`: the floor a runtime sets per pod, and what the suite costs per case on top of it.

Node target: the floor is a bare RunPodSandbox + CreateContainer + StartContainer + wait for exit (+ removal),
no checks; the suite is the full catalogue with all observations, serially and with xdist, start to report.
TARGET=local: the floor is the kubelet's own create-to-Running latency for a bare pod on the same kind of
private cluster (one at a time, and side by side as many as the suite runs at once); the suite is the full
Kubernetes-level run, its cases per second set against bare pods per second at the same concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from conformance.core.catalogue import Catalogue
from conformance.core.options import Options
from conformance.cri import api_pb2 as pb
from conformance.paths import IMAGES, PROJECT, SCENARIOS
from conformance.targets.node.session import NodeSession
from conformance.targets.node.target import RUN_LABEL


def floor(session: NodeSession, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per bare pod (sandbox, container running /bin/true, wait for exit) and per removal."""
    client, refs = session.runtime.client, session.runtime.image_refs
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
            log_directory=str(session.log_root / name), labels={RUN_LABEL: session.run_id}, linux=linux)
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


def bare_pod(name: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"hostNetwork": True, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "tolerations": [{"operator": "Exists"}], "automountServiceAccountToken": False,
                     "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                     "command": ["/bin/sh", "-c", "exec sleep 3600"]}]}}


def kubelet_floor(api: object, namespace: str, image: str, count: int, side_by_side: int) -> list[float]:
    """Seconds from create to phase Running for `count` bare pods, `side_by_side` at once."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> float:
        name = f"bench-{secrets.token_hex(4)}"
        started = time.perf_counter()
        api.create_pod(namespace, bare_pod(name, image))  # type: ignore[attr-defined]
        while (api.get_pod(namespace, name).get("status") or {}).get("phase") != "Running":  # type: ignore[attr-defined]
            time.sleep(0.02)
        took = time.perf_counter() - started
        api.delete_pod(namespace, name)  # type: ignore[attr-defined]
        return took

    with ThreadPoolExecutor(max_workers=side_by_side) as pool:
        return list(pool.map(one, range(count)))


def local_bench(args: argparse.Namespace, results: Path) -> int:
    from conformance.targets.local.session import LocalSession

    local = ["--target", "local", "--k8s-bin-dir", args.k8s_bin_dir] + (["--etcd-bin", args.etcd_bin]
                                                                         if args.etcd_bin else [])
    runtime = ["--runtime", "crio", "--crio-bin-dir", args.crio_bin_dir] if args.crio_bin_dir else \
        ["--version", args.version]
    opts = Options(target="local", version=args.version, k8s_bin_dir=Path(args.k8s_bin_dir),
                   etcd_bin=Path(args.etcd_bin) if args.etcd_bin else None, results_dir=results / "floor",
                   runtime="crio" if args.crio_bin_dir else "containerd",
                   crio_bin_dir=Path(args.crio_bin_dir) if args.crio_bin_dir else None)
    session = LocalSession(opts, Catalogue.load(SCENARIOS, IMAGES))
    try:
        started = time.perf_counter()
        session.start()
        up = time.perf_counter() - started
        assert session.api is not None and session.kube is not None
        image, ns = session.refs["agnhost-like"], session.kube.namespace
        kubelet_floor(session.api, ns, image, 2, 1)  # warm-up
        serial = kubelet_floor(session.api, ns, image, args.rounds, 1)
        batch = kubelet_floor(session.api, ns, image, args.rounds, opts.parallel)
        timings = dict(session.cluster.timings) if session.cluster else {}
    finally:
        session.stop()
    argv = [str(Path(sys.executable).parent / "sgp-conformance"), "run", *local, *runtime, "--results-dir",
            str(results / "suite")]
    begun = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - begun
    if res.returncode not in (0, 1):
        raise SystemExit(f"suite run failed ({res.returncode}):\n{res.stdout[-3000:]}")
    doc = json.loads((results / "suite" / "results.json").read_text())
    cases = doc["summary"]["total"]
    ready = re.search(r"ready in ([0-9.]+)s", res.stdout)
    cases_phase = wall - float(ready.group(1)) if ready else wall
    f, fb = statistics.median(serial), statistics.median(batch)
    width = opts.parallel
    print(f"local cluster on {session.info.name if session.info else '?'} "
          f"{session.info.version if session.info else ''}; {cases} cases; {os.cpu_count()} cores")
    print(f"cluster start: {up:.1f} s to a Ready node and the run's namespace (components: {timings})")
    print(f"floor: kubelet create-to-Running of a bare pod: median {f * 1000:.0f} ms one at a time "
          f"(min {min(serial) * 1000:.0f}, max {max(serial) * 1000:.0f}); {fb * 1000:.0f} ms each with {width} side "
          f"by side = {width / fb:.2f} pods/s")
    pods = {c["observed"].get("pod", {}).get("name") for c in doc["cases"] if "pod" in (c.get("observed") or {})}
    print(f"suite: {cases} cases in {len(pods)} pods, {width} pods at once")
    print(f"whole run {wall:.1f} s start to report = {cases / wall:.2f} cases/s = {cases / wall / (width / fb):.2f}x "
          f"the bare-pod rate at the same concurrency; cases alone (after the cluster was ready) {cases_phase:.1f} s = "
          f"{cases / cases_phase:.2f} cases/s = {cases / cases_phase / (width / fb):.2f}x")
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
    parser.add_argument("--version", default="2")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", default="2", help="xdist workers for the parallel run")
    parser.add_argument("--results-dir", default="results/bench")
    parser.add_argument("--target", default="node", choices=("node", "local", "audit"),
                        help="audit: `sgp-conformance audit` on 1,000 pods of recorded objects")
    parser.add_argument("--pods", type=int, default=1000, help="audit: pods to audit")
    parser.add_argument("--k8s-bin-dir", default=os.environ.get("K8S_BIN_DIR"))
    parser.add_argument("--etcd-bin", default=os.environ.get("ETCD_BIN"))
    parser.add_argument("--crio-bin-dir", help="local: a private CRI-O from this folder instead of containerd")
    args = parser.parse_args(argv)
    results = Path(args.results_dir)
    if args.target == "audit":
        return audit_bench(args.pods, args.rounds)
    if args.target == "local":
        if not args.k8s_bin_dir:
            print("error: make bench TARGET=local needs K8S_BIN_DIR", file=sys.stderr)
            return 2
        return local_bench(args, results)
    opts = Options(version=args.version, results_dir=results)
    session = NodeSession(opts, Catalogue.load(SCENARIOS, IMAGES))
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

"""`TARGET=kind|cluster`: options, DRY_RUN plans, and the run. Exit codes: 0 every case passed, was
unsupported, a known failure or rejected as expected; 1 a conformance failure; 2 an error."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from conformance import archive
from conformance.catalogue import PROJECT, Catalogue
from conformance.cluster import plan, versions
from conformance.cluster.kube import (
    VARIANTS,
    KubeApi,
    KubeTarget,
    api_negatives,
    kube_cases,
    node_feature_results,
    run_cases,
)
from conformance.cluster.lifecycle import ClusterOptions, KindCell
from conformance.errors import SuiteError
from conformance.model import CaseResult, Verdict, exit_code
from conformance.options import default_cache
from conformance.results import write

ENV = {"target": "TARGET", "runtime": "RUNTIME", "version": "VERSION", "k8s": "K8S", "kubeconfig": "KUBECONFIG",
       "context": "CONTEXT", "nodes": "NODES", "results_dir": "RESULTS_DIR", "image_registry": "IMAGE_REGISTRY"}
FLAGS_ENV = {"dry_run": "DRY_RUN", "keep": "KEEP", "reuse": "REUSE"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sgp-conformance-cluster", description=__doc__)
    p.add_argument("--target", choices=("kind", "cluster"), help="kind: a cluster per cell; cluster: an existing one")
    p.add_argument("--runtime", help="kind: containerd or crio")
    p.add_argument("--version", help="kind: runtime version, e.g. 1.7, 2.1, 1.34 (cells in versions.yaml)")
    p.add_argument("--k8s", help="kind: Kubernetes version when a runtime version has several cells")
    p.add_argument("--dry-run", action="store_true", help="write and print the plan, run nothing")
    p.add_argument("--keep", action="store_true", help="kind: keep the cluster afterwards")
    p.add_argument("--reuse", action="store_true", help="kind: reuse a cluster of the same cell if it exists")
    p.add_argument("--kubeconfig", help="cluster: kubeconfig file")
    p.add_argument("--context", help="cluster: kubeconfig context")
    p.add_argument("--nodes", help="'all': run the cases on every Linux node and report per node")
    p.add_argument("--workers", type=int, default=1, help="kind: worker nodes (default 1)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"container kinds to probe ({','.join(VARIANTS)})")
    p.add_argument("--image-registry", help="cluster: registry holding the test images (pull IfNotPresent)")
    p.add_argument("--cleanup", action="store_true", help="cluster: delete namespaces left by earlier runs, then exit")
    p.add_argument("--results-dir", help="where results go (default results/)")
    p.add_argument("--versions-file", default=str(versions.VERSIONS_FILE), help=argparse.SUPPRESS)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    args = parser().parse_args(argv)
    for name, env in ENV.items():
        if getattr(args, name, None) in (None, "") and os.environ.get(env):
            setattr(args, name, os.environ[env])
    for name, env in FLAGS_ENV.items():
        if not getattr(args, name) and os.environ.get(env, "") not in ("", "0", "false"):
            setattr(args, name, True)
    args.target = args.target or "kind"
    args.results_dir = Path(args.results_dir or "results")
    return args


def main(argv: list[str]) -> int:
    try:
        args = parse(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
        if args.target == "kind":
            return run_kind(args, catalogue)
        return run_cluster(args, catalogue)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _variants(args: argparse.Namespace) -> tuple[str, ...]:
    chosen = tuple(v for v in args.variants.split(",") if v)
    bad = [v for v in chosen if v not in VARIANTS]
    if bad:
        raise SuiteError(f"--variants: unknown {bad}; choose from {VARIANTS}")
    return chosen


def _cell(args: argparse.Namespace) -> versions.Cell:
    if not args.runtime:
        raise SuiteError("TARGET=kind needs RUNTIME=containerd|crio (and VERSION)")
    return versions.select(versions.load(Path(args.versions_file)), args.runtime, args.version, args.k8s)


def run_kind(args: argparse.Namespace, catalogue: Catalogue) -> int:
    cell = _cell(args)
    opts = ClusterOptions(results_dir=args.results_dir, workers=args.workers, keep=args.keep, reuse=args.reuse)
    if args.dry_run:
        _, text = plan.write(cell, opts, catalogue, default_cache())
        print(text)
        return 0
    kc = KindCell(cell, opts)
    results: list[CaseResult] = []
    try:
        kc.preflight()
        archives = [archive.build(catalogue.images[n], default_cache() / "images") for n in catalogue.image_names()]
        kc.ensure_image()
        kc.up()
        from conformance.cluster.apiclient import ClientApi

        api = ClientApi(str(kc.kubeconfig))
        nodes = kc.wait_ready(api)
        advertised = kc.verify_runtime(nodes)
        kc.load_images(archives)
        refs = {a.name: a.ref for a in archives}
        results = run_checks(api, catalogue, refs, nodes, advertised, args)
    except (SuiteError, ConnectionError, TimeoutError) as exc:
        results.append(infra_error(kc.phases[-1].name if kc.phases else "setup", exc))
    finally:
        if any(r.verdict in (Verdict.ERROR, Verdict.FAIL) for r in results) and (kc.created or kc.reused):
            kc.dump_logs()
        try:
            kc.down()
        except SuiteError as exc:
            results.append(infra_error("Down", exc))
    return finish(args.results_dir / cell.id, results, {"target": "kind", **kc.metadata()})


def run_cluster(args: argparse.Namespace, catalogue: Catalogue) -> int:
    if args.dry_run:
        print("TARGET=cluster plan (nothing run): namespace per run, node-features, API negatives, cases:")
        print("\n".join(f"  {s.name}{'' if v == 'container' else '.' + v} [{p}]"
                        for s, p, v in kube_cases(catalogue, _variants(args))))
        return 0
    from conformance.cluster.apiclient import ClientApi

    api = ClientApi(args.kubeconfig, args.context)
    if args.cleanup:
        names = KubeTarget(api, {}).cleanup_all()
        print(f"deleted {len(names)} namespace(s): {' '.join(names)}")
        return 0
    archives = [archive.build(catalogue.images[n], default_cache() / "images") for n in catalogue.image_names()]
    refs = {a.name: a.ref for a in archives}
    if args.image_registry:
        refs = {name: f"{args.image_registry.rstrip('/')}/{ref.split('/', 1)[1]}" for name, ref in refs.items()}
    results: list[CaseResult] = []
    try:
        nodes = api.list_nodes("kubernetes.io/os=linux")
        results = run_checks(api, catalogue, refs, nodes, None, args)
    except (SuiteError, ConnectionError, TimeoutError) as exc:
        results.append(infra_error("Test", exc))
    return finish(args.results_dir, results, {"target": "cluster", "context": args.context})


def run_checks(api: KubeApi, catalogue: Catalogue, refs: dict[str, str], nodes: list[dict],
               advertised: dict[str, bool | None] | None, args: argparse.Namespace) -> list[CaseResult]:
    """Node features, API negatives and every case, in one namespace that is always deleted."""
    pull = "IfNotPresent" if getattr(args, "image_registry", None) else "Never"
    target = KubeTarget(api, refs, pull_policy=pull)
    target.setup()
    try:
        results = node_feature_results(nodes, advertised)
        results += api_negatives(api, target.namespace, target.run_id, refs["pause"])
        cases = kube_cases(catalogue, _variants(args))
        if args.nodes == "all":
            for node in nodes:
                name = node["metadata"]["name"]
                results += run_cases(target, catalogue, cases, node=name, node_suffix=f"@{name}")
        else:
            results += run_cases(target, catalogue, cases, node=args.nodes or None)
        return results
    finally:
        target.cleanup()


def infra_error(phase: str, exc: Exception) -> CaseResult:
    """The cluster broke: one ERROR record, so the run never reads as a pass."""
    return CaseResult(scenario=f"infra:{phase}", policy="n/a", verdict=Verdict.ERROR, detail=f"{exc}",
                      tags=["infra"])


def finish(folder: Path, results: list[CaseResult], extra: dict) -> int:
    if not results:
        results = [infra_error("Test", SuiteError("no case ran"))]
    write(folder / "results.json", None, results, {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                   **extra})
    (folder / "matrix.md").write_text(matrix_md(extra.get("cell", {}).get("id", "cluster"), results))
    code = exit_code([r.verdict for r in results])
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict.value] = counts.get(r.verdict.value, 0) + 1
    print(f"{len(results)} cases: {counts}; results in {folder}/results.json; exit {code}")
    return code


def matrix_md(cell: str, results: list[CaseResult]) -> str:
    icon = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.UNSUPPORTED: "⏭", Verdict.KNOWN_FAILURE: "⚠️",
            Verdict.REJECTED: "🚫", Verdict.ERROR: "🧱"}
    lines = [f"### {cell}", "", "| case | policy | verdict | detail |", "|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r.scenario, r.policy)):
        detail = r.detail.replace("\n", " ").replace("|", "\\|")[:200]
        lines.append(f"| {r.scenario} | {r.policy} | {icon[r.verdict]} {r.verdict.value} | {detail} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

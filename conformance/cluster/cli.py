"""What TARGET=kind|cluster can do without running cases: DRY_RUN=1 writes and prints a cell's plan, and
`--cleanup` deletes the namespaces earlier runs left in a cluster. Cases themselves run through the
pytest plugin like every target's (`sgp-conformance run --target kind|cluster`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from conformance.catalogue import PROJECT, Catalogue
from conformance.cluster import plan, versions
from conformance.cluster.kube import VARIANTS, KubeTarget, kube_cases
from conformance.cluster.lifecycle import ClusterOptions
from conformance.errors import SuiteError
from conformance.options import default_cache, switch


def wanted(argv: list[str]) -> bool:
    """Does this `run` ask for a plan or a cleanup rather than cases?"""
    return "--dry-run" in argv or "--cleanup" in argv or switch(os.environ.get("DRY_RUN"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sgp-conformance run --target kind|cluster", description=__doc__)
    p.add_argument("--target", choices=("kind", "cluster"), default="kind")
    p.add_argument("--runtime", help="kind: containerd or crio")
    p.add_argument("--version", help="kind: runtime version, e.g. 1.7, 2.1, 1.34 (cells in versions.yaml)")
    p.add_argument("--k8s", help="kind: Kubernetes version when a runtime version has several cells")
    p.add_argument("--dry-run", action="store_true", help="write and print the plan, run nothing")
    p.add_argument("--cleanup", action="store_true", help="cluster: delete namespaces left by earlier runs, then exit")
    p.add_argument("--kubeconfig", help="cluster: kubeconfig file")
    p.add_argument("--context", help="cluster: kubeconfig context")
    p.add_argument("--variants", default=",".join(VARIANTS), help="container kinds")
    p.add_argument("--workers", type=int, default=1, help="kind: worker nodes (default 1)")
    p.add_argument("--results-dir", default="results", help="where the plan goes (default results/)")
    p.add_argument("--versions-file", default=str(versions.VERSIONS_FILE), help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    args, _ = parser().parse_known_args(argv)
    try:
        catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
        if args.cleanup:
            from conformance.cluster.apiclient import ClientApi

            names = KubeTarget(ClientApi(args.kubeconfig, args.context), {}).cleanup_all()
            print(f"deleted {len(names)} namespace(s): {' '.join(names)}")
            return 0
        variants = tuple(v for v in args.variants.split(",") if v)
        if args.target == "cluster":
            print("TARGET=cluster plan (nothing run): a namespace per run, node-features, API negatives, cases:")
            print("\n".join(f"  {s.name}{'' if v == 'container' else '.' + v} [{p}]"
                            for s, p, v in kube_cases(catalogue, variants)))
            return 0
        if not args.runtime:
            raise SuiteError("TARGET=kind needs RUNTIME=containerd|crio (and VERSION)")
        cell = versions.select(versions.load(Path(args.versions_file)), args.runtime, args.version, args.k8s)
        opts = ClusterOptions(results_dir=Path(args.results_dir), workers=args.workers)
        _, text = plan.write(cell, opts, catalogue, default_cache())
        print(text)
        return 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

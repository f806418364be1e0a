"""TARGET=cluster: an existing cluster from a kubeconfig. Only the run's namespace is created, and it is
deleted afterwards; `--cleanup` deletes the namespaces earlier runs left (KEEP=1)."""

from __future__ import annotations

import argparse
import sys

from conformance.catalogue import PROJECT, Catalogue
from conformance.errors import ProvisionError, SuiteError
from conformance.kube.api import ClientApi, client
from conformance.kube.manifests import VARIANTS, kube_cases
from conformance.kube.pods import KubeTarget
from conformance.kube.runner import KubeSession
from conformance.kube.status import node_ready


class ClusterSession(KubeSession):
    """An existing cluster from a kubeconfig. Its test images must be on the nodes already, or in a registry
    given with IMAGE_REGISTRY. Only the run's namespace is created, and it is deleted afterwards."""

    name = "cluster"

    def start(self) -> None:
        self.host_network = self.opts.host_network
        self.kubeconfig, self.context = self.opts.kubeconfig, self.opts.context
        self.api = client(self.kubeconfig, self.context)
        self.refs = {a.name: a.ref for a in self.catalogue.archives(self.opts.cache_dir)}
        if self.opts.image_registry:
            registry = self.opts.image_registry.rstrip("/")
            self.refs = {name: f"{registry}/{ref.split('/', 1)[1]}" for name, ref in self.refs.items()}
            self.pull_policy = "IfNotPresent"
        try:
            self.nodes = [n for n in self.api.list_nodes("kubernetes.io/os=linux") if node_ready(n)]
        except (ConnectionError, TimeoutError) as exc:
            raise ProvisionError(f"the cluster does not answer: {exc}") from exc
        if not self.nodes:
            raise ProvisionError("the cluster has no Ready Linux node")
        self._namespace()

    def describe(self) -> str:
        return f"existing ({self.context or 'current context'})"





def without_cases(argv: list[str]) -> int:
    """`--cleanup` (any Kubernetes target: namespaces earlier KEEP=1 runs left), or DRY_RUN=1: the cases a
    run would create, printed."""
    p = argparse.ArgumentParser(prog="sgp-conformance run --target cluster", description=__doc__)
    p.add_argument("--cleanup", action="store_true", help="delete namespaces left by earlier runs, then exit")
    p.add_argument("--kubeconfig", help="kubeconfig file")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--variants", default=",".join(VARIANTS), help="container kinds")
    args, _ = p.parse_known_args(argv)
    try:
        if args.cleanup:
            names = KubeTarget(ClientApi(args.kubeconfig, args.context), {}).cleanup_all()
            print(f"deleted {len(names)} namespace(s): {' '.join(names)}")
            return 0
        catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
        variants = tuple(v for v in args.variants.split(",") if v)
        print("TARGET=cluster plan (nothing run): a namespace per run, node-features, API negatives, cases:")
        print("\n".join(f"  {s.name}{'' if v == 'container' else '.' + v} [{p}]"
                        for s, p, v in kube_cases(catalogue, variants)))
        return 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

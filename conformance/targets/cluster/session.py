"""TARGET=cluster's session: an existing cluster from a kubeconfig. Only the run's namespace is created, and it
is deleted afterwards; `--cleanup` deletes the namespaces earlier runs left (KEEP=1)."""

from __future__ import annotations

from conformance.core.catalogue import Catalogue
from conformance.core.options import Options
from conformance.errors import ProvisionError
from conformance.kube.api import ClientApi, client
from conformance.kube.manifests import kube_cases
from conformance.kube.pods import KubeTarget
from conformance.kube.runner import KubeSession
from conformance.kube.status import node_ready
from conformance.testimages import imagepush
from conformance.testimages.archive import catalogue_archives


class ClusterSession(KubeSession):
    """An existing cluster from a kubeconfig. Its test images are pushed to IMAGE_REGISTRY first (or must be on
    the nodes already); one probe pod per node checks that before any case. Only the run's namespace is
    created, and it is deleted afterwards."""

    name = "cluster"
    pushed: imagepush.Pushed | None = None

    def start(self) -> None:
        self.host_network = self.opts.host_network
        self.kubeconfig, self.context = self.opts.kubeconfig, self.opts.context
        self.api = client(self.kubeconfig, self.context)
        archives = catalogue_archives(self.catalogue, self.opts.cache_dir)
        self.refs = {a.name: a.ref for a in archives}
        if self.opts.image_registry:
            registry = imagepush.check_registry(self.opts.image_registry)
            if self.opts.image_push:
                self.refs, self.pushed = imagepush.push(archives, registry, self.opts.image_registry_insecure,
                                                       self.opts.state_dir)
            else:
                self.refs = {a.name: imagepush.remote_ref(registry, a) for a in archives}
            self.pull_policy = "IfNotPresent"
        try:
            self.nodes = [n for n in self.api.list_nodes("kubernetes.io/os=linux") if node_ready(n)]
        except (ConnectionError, TimeoutError) as exc:
            raise ProvisionError(f"the cluster does not answer: {exc}") from exc
        if not self.nodes:
            raise ProvisionError("the cluster has no Ready Linux node")
        self._namespace()
        self._check_images()

    def describe(self) -> str:
        where = self.opts.image_registry or "on the nodes (imagePullPolicy Never)"
        pushed = f", {self.pushed.summary()}" if self.pushed else ""
        return f"existing ({self.context or 'current context'}); test images {where}{pushed}"

    @classmethod
    def plan(cls, opts: Options, catalogue: Catalogue) -> str:
        """DRY_RUN=1: the cases a run would create, nothing started."""
        head = "TARGET=cluster plan (nothing run): a namespace per run, node-features, API negatives, cases:"
        return "\n".join([head, *(f"  {s.name}{'' if v == 'container' else '.' + v} [{p}]"
                                   for s, p, v in kube_cases(catalogue, opts.variants))])

    @classmethod
    def cleanup(cls, opts: Options) -> int:
        """--cleanup: delete the namespaces earlier KEEP=1 runs left in the cluster."""
        names = KubeTarget(ClientApi(opts.kubeconfig, opts.context), {}).cleanup_all()
        print(f"deleted {len(names)} namespace(s): {' '.join(names)}")
        return 0

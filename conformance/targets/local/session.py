"""TARGET=local: the runtime under test (the node target's options), then etcd, the API server, the
controller-manager, the scheduler and a kubelet on it, all private (controlplane.py, pki.py,
binaries.py; the pod network is conformance/runtimes/podnet.py); everything goes at stop()."""

from __future__ import annotations

import time
from collections.abc import Callable

from conformance.core.catalogue import Catalogue
from conformance.core.options import Options
from conformance.errors import InputError, ProvisionError
from conformance.kube import binaries
from conformance.kube.api import client, warm
from conformance.kube.runner import KubeSession
from conformance.kube.status import node_ready
from conformance.kube.waits import NotYet, Waits
from conformance.targets.local.controlplane import LocalCluster
from conformance.targets.undertest import RuntimeUnderTest
from conformance.testimages.archive import catalogue_archives

NODE_READY_TIMEOUT = 60.0  # after the kubelet answers: 0.2 s in the cgroup v2 guest under emulation


class LocalSession(KubeSession):
    """TARGET=local: the runtime of the node target (the same options), then etcd, the API server, the
    controller-manager, the scheduler and a kubelet on it, all private; everything goes at stop()."""

    name = "local"
    host_network = True  # pods on the host network, but for hostUsers: false (the API forbids both; podnet.py)

    def __init__(self, opts: Options, catalogue: Catalogue, kubelet_endpoint: Callable[[str], str] | None = None):
        super().__init__(opts, catalogue)
        if opts.cri_endpoint:
            raise InputError("CRI_ENDPOINT", "CRI_ENDPOINT", "TARGET=local starts its own runtime: leave CRI_ENDPOINT "
                             "empty (use RUNTIME, VERSION, CONTAINERD_BIN_DIR or CRIO_BIN_DIR)")
        self.runtime = RuntimeUnderTest(opts)
        self.cluster: LocalCluster | None = None
        self.kubelet_endpoint = kubelet_endpoint  # e.g. a CRI proxy in front of the runtime (make faults)
        self.node_name = f"sgp-node-{self.run_id}"

    def start(self) -> None:
        self.runtime.validate()
        warm()  # the API client's import, while the runtime and the control plane start
        bins = binaries.resolve(self.opts.k8s_bin_dir, self.opts.k8s, self.opts.etcd_bin, self.opts.cache_dir)
        # the control plane and the kubelet start while the test images load into the runtime
        self.runtime.start(catalogue_archives(self.catalogue, self.opts.cache_dir), lambda: self._cluster(bins))
        assert self.cluster is not None and self.runtime.info is not None
        self.kubeconfig = str(self.cluster.kubeconfig)
        self.api = client(self.kubeconfig)
        started = time.monotonic()
        node = Waits().until(self._node_ready, NODE_READY_TIMEOUT, f"node {self.node_name} Ready")
        self.cluster.timings["node Ready"] = round(time.monotonic() - started, 2)
        self.nodes = [node]
        info = self.runtime.info
        self.advertised = {self.node_name: info.features.get("supplemental_groups_policy") if info.features else None}
        self.refs = dict(self.runtime.image_refs)
        self.info = info
        self._namespace()
        self.facts.update(self.cluster.versions(), startup={**self.runtime.timings, **self.cluster.timings},
                          node=self.node_name)

    def _cluster(self, bins: binaries.Binaries) -> None:
        """Start the cluster on the runtime (which answers; its images may still be loading)."""
        prov = self.runtime.provisioned
        assert prov is not None and prov.daemon is not None
        endpoint = self.kubelet_endpoint(prov.endpoint) if self.kubelet_endpoint else prov.endpoint
        self.cluster = LocalCluster(bins, prov.daemon.state_dir / "k8s", prov.daemon.namespace, endpoint,
                                    self.node_name, prov.cgroup_parent)
        self.cluster.start()

    def _node_ready(self) -> dict:
        assert self.cluster is not None and self.api is not None
        dead = self.cluster.exited()
        if dead:
            logs = "\n".join(f"--- {d.name}:\n{d.log_tail(15)}" for d in self.cluster.daemons if d.name in dead)
            raise ProvisionError(f"{', '.join(dead)} exited:\n{logs}")
        found = [n for n in self.api.list_nodes() if n["metadata"]["name"] == self.node_name]
        if not found or not node_ready(found[0]):
            raise NotYet(f"node {self.node_name} not Ready yet")
        return found[0]

    def hold(self, say: Callable[[str], None]) -> None:
        """KEEP=1: the cluster and the cases' pods stay up until Ctrl-C or SIGTERM (or until one of its
        components exits); then stop() removes everything as after any run."""
        if not self.opts.keep or self.cluster is None or self.kube is None:
            return
        say(f"KEEP=1: the cluster keeps running with the cases' pods in namespace {self.kube.namespace}: "
            f"KUBECONFIG={self.kubeconfig}")
        say("KEEP=1: Ctrl-C (or SIGTERM) stops it and removes everything")
        try:
            while not self.cluster.exited():
                time.sleep(0.5)
            say(f"KEEP=1: {', '.join(self.cluster.exited())} exited; stopping the cluster")
        except KeyboardInterrupt:
            say("KEEP=1: stopping the cluster")

    def describe(self) -> str:
        info = self.runtime.info
        how = "started by the suite" if self.runtime.owned else f"existing socket {info.endpoint if info else '?'}"
        runtime = f"{info.name} {info.version} ({how})" if info else "?"
        versions = self.cluster.versions() if self.cluster else {}
        oci = self.runtime.oci_text()
        return (f"local (API server {versions.get('apiserver')}, etcd {versions.get('etcd')}, "
                f"{versions.get('kubernetes_from')}); runtime: {runtime}{'; ' + oci if oci else ''}")

    def stop(self) -> None:
        """The kubelet first (so it recreates nothing), then the control plane with its logs kept in
        RESULTS_DIR/local-logs, and last the runtime with every sandbox in it. The run's namespace is not
        deleted through the API: the whole cluster, its etcd data included, goes. The run's watch ends first
        (the API server would wait for it before exiting), and pod deletes still queued are dropped."""
        if self.kube is not None:
            self.kube.stop()
        self.kube = None
        if self.cluster is not None:  # stops the kubelet first
            self.cluster.stop(keep_logs_to=self.opts.results_dir / "local-logs")
            self.cluster = None
        self.runtime.stop()



"""The Kubernetes targets as sessions for the runner (targets/base.py): TARGET=local (a private cluster on
the private runtime), TARGET=cluster (an existing cluster) and TARGET=kind (a kind cluster per cell).
All three run the same cases the same way (KubeRunner); they differ only in where the cluster comes from."""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Callable

from conformance.catalogue import Catalogue
from conformance.cluster import cni, k8sbin, versions
from conformance.cluster.checks import API_CHECKS, API_NEGATIVES, NODE_FEATURES, api_check, node_features_check
from conformance.cluster.controlplane import LocalCluster
from conformance.cluster.kube import (
    VARIANTS,
    KubeApi,
    KubeTarget,
    NotYet,
    Waits,
    case_observed,
    judge_case,
    kube_cases,
    node_feature,
    node_info,
    node_ready,
    runtime_info,
)
from conformance.errors import InputError, ProvisionError, SuiteError
from conformance.model import RuntimeInfo
from conformance.options import Options
from conformance.targets.base import Case, Verdicted

NODE_READY_TIMEOUT = 60.0


def client(kubeconfig: str | None, context: str | None = None) -> KubeApi:
    """The API client; a kubeconfig that cannot be read or has no such context is a ProvisionError."""
    from conformance.cluster.apiclient import ClientApi

    try:
        return ClientApi(kubeconfig, context)
    except Exception as exc:
        if isinstance(exc, SuiteError):
            raise
        where = kubeconfig or "the default kubeconfig (~/.kube/config)"
        raise ProvisionError(f"cannot use {where}{f' context {context}' if context else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; set KUBECONFIG "
                             "(and CONTEXT)") from exc


class KubeRunner:
    """Runs and judges Kubernetes-level cases in one pytest process; pods of different cases run side by side."""

    can_restart = False

    def __init__(self, target: KubeTarget, catalogue: Catalogue, parallel: int,
                 advertised: dict[str, bool | None] | None):
        self.target = target
        self.catalogue = catalogue
        self.parallel = parallel
        self.advertised = advertised  # per node, what its runtime's Status() says (None: the suite cannot ask)

    @classmethod
    def from_context(cls, ctx: dict, catalogue: Catalogue) -> KubeRunner:
        target = KubeTarget(client(ctx["kubeconfig"], ctx.get("context")), ctx["refs"], ctx["run_id"],
                            pull_policy=ctx["pull_policy"], host_network=ctx["host_network"],
                            keep_pods=ctx.get("keep", False))
        return cls(target, catalogue, ctx["parallel"], ctx.get("advertised"))

    def run(self, case: Case) -> object:
        if case.check == NODE_FEATURES:
            known = self.advertised is not None and case.node in self.advertised
            return node_features_check(self.target, self.catalogue, case.node,
                                       (self.advertised or {}).get(case.node), known)
        if case.check:
            return api_check(self.target.api, self.target.namespace, self.target.run_id,
                             self.target.image_refs["pause"], case.check)
        assert case.scenario is not None
        return self.target.run_pod(case.scenario, case.policy, case.variant, case.node or None)

    def judge(self, case: Case, outcome: object) -> Verdicted:
        if isinstance(outcome, Verdicted):
            return outcome
        assert case.scenario is not None
        judgement = judge_case(self.catalogue, case.scenario, case.policy, outcome, case.variant)  # type: ignore[arg-type]
        return Verdicted(judgement, case_observed(outcome))  # type: ignore[arg-type]

    def close(self) -> None:
        """Cases still running in other threads give up at their next poll."""
        self.target.waits.stopping.set()


class KubeSession:
    """What every Kubernetes target shares: the run's namespace, the cases, the runner, the report."""

    name = "kube"
    host_network = False
    pull_policy = "Never"

    def __init__(self, opts: Options, catalogue: Catalogue):
        bad = [v for v in opts.variants if v not in VARIANTS]
        if bad or not opts.variants:
            raise InputError("VARIANTS", "VARIANTS", f"{','.join(opts.variants)!r}: choose from {','.join(VARIANTS)}")
        self.opts = opts
        self.catalogue = catalogue
        self.run_id = secrets.token_hex(4)
        self.api: KubeApi | None = None
        self.kube: KubeTarget | None = None
        self.info: RuntimeInfo | None = None
        self.nodes: list[dict] = []
        self.advertised: dict[str, bool | None] | None = None
        self.kubeconfig: str | None = None
        self.context: str | None = None
        self.refs: dict[str, str] = {}
        self.facts: dict = {}
        self.failed = False

    def _namespace(self) -> None:
        assert self.api is not None
        self.kube = KubeTarget(self.api, self.refs, self.run_id, pull_policy=self.pull_policy,
                               host_network=self.host_network, keep_pods=self.opts.keep)
        self.kube.setup()
        self.info = self.info or runtime_info(self.nodes[0])
        self.facts["nodes"] = {n["metadata"]["name"]: {
            "kubeletVersion": node_info(n).get("kubeletVersion"),
            "containerRuntimeVersion": node_info(n).get("containerRuntimeVersion"),
            "features": (n.get("status") or {}).get("features")} for n in self.nodes}

    def case_nodes(self) -> list[str]:
        names = [n["metadata"]["name"] for n in self.nodes]
        if self.opts.nodes == "all":
            return names
        if self.opts.nodes:
            if self.opts.nodes not in names:
                raise InputError("NODES", "NODES", f"{self.opts.nodes!r}: no such Linux node (have {', '.join(names)})")
            return [self.opts.nodes]
        return [""]

    def cases(self) -> list[Case]:
        nodes = self.case_nodes()
        checks = [Case(None, "n/a", node=n["metadata"]["name"], check=NODE_FEATURES) for n in self.nodes
                  if not self.opts.nodes or self.opts.nodes == "all" or n["metadata"]["name"] == self.opts.nodes]
        checks += [Case(None, next((n.policy for n in API_NEGATIVES if n.name == c), "Merge->Strict"), check=c)
                   for c in API_CHECKS]
        return checks + [Case(s, p, v, node) for s, p, v in kube_cases(self.catalogue, self.opts.variants)
                         for node in nodes]

    def runner(self) -> KubeRunner:
        assert self.kube is not None
        return KubeRunner(self.kube, self.catalogue, self.opts.parallel, self.advertised)

    def worker_context(self) -> dict:
        return {"kubeconfig": self.kubeconfig, "context": self.context, "run_id": self.run_id, "refs": self.refs,
                "pull_policy": self.pull_policy, "host_network": self.host_network, "parallel": 1,
                "advertised": self.advertised, "keep": self.opts.keep}

    def header(self, startup: float) -> str:
        nodes = "; ".join(
            f"node {n['metadata']['name']}: kubelet {node_info(n).get('kubeletVersion')}, "
            f"{node_info(n).get('containerRuntimeVersion')}, features.supplementalGroupsPolicy="
            f"{'absent' if node_feature(n) is None else node_feature(n)}" for n in self.nodes)
        return f"cluster: {self.describe()}; {nodes}; ready in {startup:.1f}s; {self.opts.parallel} pods at once"

    def describe(self) -> str:
        return self.name

    def results_extra(self) -> dict:
        return {"target": self.name, "kubernetes": self.facts}

    def hold(self, say: Callable[[str], None]) -> None:
        """KEEP=1 after the cases: what stays and how to remove it (TARGET=local holds its cluster)."""
        if self.opts.keep and self.kube is not None:
            say(f"KEEP=1: namespace {self.kube.namespace} kept with the cases' pods; `sgp-conformance run "
                f"--target {self.name} --cleanup` (with the same KUBECONFIG) deletes it")

    def _drop_namespace(self) -> None:
        """Delete the run's namespace (KEEP=1 leaves it)."""
        if self.kube is not None and not self.opts.keep:
            with contextlib.suppress(SuiteError, ConnectionError, TimeoutError):
                self.kube.cleanup()
        self.kube = None

    def stop(self) -> None:
        self._drop_namespace()


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


class LocalSession(KubeSession):
    """TARGET=local: the runtime of the node target (the same options), then etcd, the API server, the
    controller-manager, the scheduler and a kubelet on it, all private; everything goes at stop()."""

    name = "local"
    host_network = True  # no pod network here (conformance/cluster/cni.py)

    def __init__(self, opts: Options, catalogue: Catalogue, kubelet_endpoint: Callable[[str], str] | None = None):
        super().__init__(opts, catalogue)
        if opts.cri_endpoint:
            raise InputError("CRI_ENDPOINT", "CRI_ENDPOINT", "TARGET=local starts its own runtime: leave CRI_ENDPOINT "
                             "empty (use RUNTIME, VERSION, CONTAINERD_BIN_DIR or CRIO_BIN_DIR)")
        from conformance.session import NodeSession

        self.node_session = NodeSession(opts, catalogue)
        self.cluster: LocalCluster | None = None
        self.kubelet_endpoint = kubelet_endpoint  # e.g. a CRI proxy in front of the runtime (make faults)
        self.node_name = f"sgp-node-{self.run_id}"

    def start(self) -> None:
        self.node_session.validate()
        bins = k8sbin.resolve(self.opts.k8s_bin_dir, self.opts.k8s, self.opts.etcd_bin, self.opts.cache_dir)
        loopback = cni.loopback_plugin(self.opts.cache_dir)
        self.node_session.start()
        prov = self.node_session.provisioned
        assert prov is not None and prov.daemon is not None and self.node_session.info is not None
        state = prov.daemon.state_dir
        cni.install(loopback, state / "cni" / "conf", state / "cni" / "bin")
        endpoint = self.kubelet_endpoint(prov.endpoint) if self.kubelet_endpoint else prov.endpoint
        self.cluster = LocalCluster(bins, state / "k8s", prov.daemon.namespace, endpoint, self.node_name,
                                    prov.cgroup_parent)
        self.cluster.start()
        self.kubeconfig = str(self.cluster.kubeconfig)
        self.api = client(self.kubeconfig)
        started = time.monotonic()
        node = Waits().until(self._node_ready, NODE_READY_TIMEOUT, f"node {self.node_name} Ready")
        self.cluster.timings["node Ready"] = round(time.monotonic() - started, 2)
        self.nodes = [node]
        info = self.node_session.info
        self.advertised = {self.node_name: info.features.get("supplemental_groups_policy") if info.features else None}
        self.refs = dict(self.node_session.image_refs)
        self.info = info
        self._namespace()
        self.facts.update(self.cluster.versions(), startup=self.cluster.timings, node=self.node_name)

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
        runtime = self.node_session.header(0.0).split(";")[0].removeprefix("runtime: ")
        versions = self.cluster.versions() if self.cluster else {}
        return (f"local (API server {versions.get('apiserver')}, etcd {versions.get('etcd')}, "
                f"{versions.get('kubernetes_from')}); runtime: {runtime}")

    def stop(self) -> None:
        """The kubelet first (so it recreates nothing), then the control plane with its logs kept in
        RESULTS_DIR/local-logs, and last the runtime with every sandbox in it. The run's namespace is not
        deleted through the API: the whole cluster, its etcd data included, goes."""
        self.kube = None
        if self.cluster is not None:  # stops the kubelet first
            self.cluster.stop(keep_logs_to=self.opts.results_dir / "local-logs")
            self.cluster = None
        self.node_session.stop()


class KindSession(KubeSession):
    """TARGET=kind: the cell of versions.yaml for RUNTIME/VERSION/K8S as a kind cluster (created, checked,
    loaded with the test images; deleted afterwards unless KEEP=1; its logs exported when a case failed)."""

    name = "kind"

    def start(self) -> None:
        from conformance.cluster.lifecycle import ClusterOptions, KindCell

        if not self.opts.runtime:
            raise InputError("RUNTIME", "RUNTIME", "TARGET=kind needs RUNTIME=containerd|crio (and VERSION)")
        cell = versions.select(versions.load(), self.opts.runtime, self.opts.version, self.opts.k8s)
        self.cell = KindCell(cell, ClusterOptions(results_dir=self.opts.results_dir, keep=self.opts.keep,
                                                  reuse=self.opts.reuse))
        archives = self.catalogue.archives(self.opts.cache_dir)
        self.cell.preflight()
        self.cell.ensure_image()
        self.cell.up()
        self.kubeconfig = str(self.cell.kubeconfig)
        self.api = client(self.kubeconfig)
        self.nodes = self.cell.wait_ready(self.api)
        self.advertised = self.cell.verify_runtime(self.nodes)
        self.cell.load_images(archives)
        self.refs = {a.name: a.ref for a in archives}
        self._namespace()
        self.facts.update(self.cell.metadata())

    def describe(self) -> str:
        return f"kind cell {self.cell.cell.id}" if hasattr(self, "cell") else "kind"

    def stop(self) -> None:
        self._drop_namespace()
        cell = getattr(self, "cell", None)
        if cell is None:
            return
        if self.failed and (cell.created or cell.reused):
            cell.dump_logs()
        try:
            cell.down()
        except SuiteError as exc:
            print(f"cleanup error: {exc}", file=sys.stderr)


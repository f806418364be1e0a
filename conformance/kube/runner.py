"""What every Kubernetes target shares as the runner's side (conformance/targets/protocol.py): KubeRunner runs and
judges cases as pods side by side in one pytest process; KubeSession holds the run's namespace, its cases
(node-features, the API negatives, the scenarios in every container kind) and the report. TARGET=local,
cluster and kind subclass KubeSession; they differ only in where the cluster comes from."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable

from conformance.core.case import Case, Verdicted
from conformance.core.catalogue import Catalogue
from conformance.core.floor import BarePod, measure
from conformance.core.model import RuntimeInfo
from conformance.core.options import Options
from conformance.errors import InputError, SuiteError
from conformance.kube.api import KubeApi, client
from conformance.kube.checks import API_CHECKS, API_NEGATIVES, NODE_FEATURES, api_check, node_features_check
from conformance.kube.imagecheck import check_images
from conformance.kube.manifests import VARIANTS, kube_cases, pod_groups
from conformance.kube.pods import KubeTarget, case_observed, judge_case
from conformance.kube.status import node_feature, node_info, runtime_info
from conformance.runtimes.process import join_network
from conformance.runtimes.reaper import HostLeftovers


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
        if ctx.get("network"):  # a worker process reaches the cluster from the network it lives in
            join_network(ctx["network"])
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

    def batches(self, cases: list[Case]) -> list[list[Case]]:
        return pod_groups(cases)

    def run_batch(self, cases: list[Case]) -> list[object]:
        """A scenario's container kinds under one policy on one node: one pod. A kind whose own container broke
        gets its error (CaseError, an exception object in its place); the others their own outcomes."""
        first = cases[0]
        if len(cases) == 1 or first.scenario is None:
            return [self.run(case) for case in cases]
        outcomes = self.target.run_group(first.scenario, first.policy, tuple(c.variant for c in cases),
                                         first.node or None)
        return [outcomes[case.variant] for case in cases]

    def judge(self, case: Case, outcome: object) -> Verdicted:
        if isinstance(outcome, Verdicted):
            return outcome
        assert case.scenario is not None
        judgement = judge_case(self.catalogue, case.scenario, case.policy, outcome, case.variant)  # type: ignore[arg-type]
        return Verdicted(judgement, case_observed(outcome))  # type: ignore[arg-type]

    def bare_pods(self, count: int, side_by_side: int, poll: float | None = None) -> list[BarePod]:
        return measure(lambda: self.target.bare_pod(poll), count, side_by_side)

    def close(self) -> None:
        """Cases still running in other threads give up at their next poll; the watch stops."""
        self.target.stop()


class KubeSession(HostLeftovers):
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

    def _check_images(self) -> None:
        """One probe pod per node the cases run on, every test image in it: an image a node cannot get stops
        the run once; and a pod's status reaching the API proves the node and its authorization are settled
        before the first case (a kind cluster just up refused a kubelet's status updates for a while)."""
        assert self.kube is not None and self.api is not None
        names = [n["metadata"]["name"] for n in self.nodes]
        probed = [name for name in names if self.opts.nodes in (None, "all", name)] or names
        check_images(self.kube, probed, self.refs)

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

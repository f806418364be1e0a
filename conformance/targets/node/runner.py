"""The node target's runner: runs and judges cases in one pytest process (controller or xdist worker)."""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.core.case import Case, Verdicted
from conformance.core.catalogue import Catalogue
from conformance.core.floor import BarePod, measure
from conformance.core.model import RuntimeInfo
from conformance.core.verdict import Observation
from conformance.cri.client import CRIClient
from conformance.targets.node.target import NodeTarget, shared_sandbox


class NodeRunner:
    """Runs and judges node-target cases in one pytest process (targets/base.py Runner)."""

    # two sandboxes' batches at once: the runtime's work and the suite's polling overlap (whole catalogue here,
    # 2 cores: 30.6-36.5 s one at a time, 25.9 s two at once); xdist (-n) gives each case a sandbox of its own
    parallel = 2

    def __init__(self, target: NodeTarget, info: RuntimeInfo, catalogue: Catalogue):
        self.target = target
        self.info = info
        self.catalogue = catalogue

    @property
    def can_restart(self) -> bool:
        return bool(self.target.restart_socket)

    @classmethod
    def from_context(cls, ctx: dict, catalogue: Catalogue) -> NodeRunner:
        target = NodeTarget(CRIClient(ctx["endpoint"]), ctx["refs"], Path(ctx["log_root"]), ctx["run_id"],
                            handler=ctx["runtime"].get("handler", ""), cgroup_parent=ctx["cgroup_parent"])
        target.restart_socket = ctx.get("restart_socket", "")
        return cls(target, RuntimeInfo.from_json(ctx["runtime"]), catalogue)

    def run(self, case: Case) -> Observation:
        assert case.scenario is not None
        return self.target.run_case(case.scenario, case.policy)

    def batches(self, cases: list[Case]) -> list[list[Case]]:
        """Cases whose sandboxes agree share one (in the order their first case comes); the others alone."""
        groups: dict[object, list[Case]] = {}
        for index, case in enumerate(cases):
            key = shared_sandbox(case.scenario, case.policy) if case.scenario is not None else None
            groups.setdefault(index if key is None else key, []).append(case)
        return list(groups.values())

    def run_batch(self, cases: list[Case]) -> list[Observation | BaseException]:
        """One sandbox for the batch; a case's own error (an exception object) in its place."""
        return self.target.run_shared([(c.scenario, c.policy) for c in cases if c.scenario is not None])

    def judge(self, case: Case, outcome: Observation) -> Verdicted:
        assert case.scenario is not None
        return Verdicted(self.catalogue.judge(case.scenario, case.policy, outcome, self.info), outcome.to_json())

    def bare_pods(self, count: int, side_by_side: int, poll: float | None = None) -> list[BarePod]:
        """The node target observes by polling the runtime already: no other floor (`poll` gives none)."""
        return [] if poll is not None else measure(self.target.bare_pod, count, side_by_side)

    def close(self) -> None:
        """No further case starts in a shared sandbox; background removals finish."""
        self.target.stopping.set()
        for problem in self.target.drain():
            print(f"warning: {problem}", file=sys.stderr)

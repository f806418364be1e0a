"""What every target hands to the runner (the pytest plugin): its cases, a runner per pytest process, and
the session that owns everything it started. Adding a target means one module with these three."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from conformance.model import RuntimeInfo
from conformance.scenario import Scenario
from conformance.verdict import Judgement


@dataclass(frozen=True)
class Case:
    """One pytest item: a scenario under a policy (in a container kind, on a node), or a target's own check."""

    scenario: Scenario | None
    policy: str
    variant: str = "container"  # container | init | sidecar | ephemeral (Kubernetes targets)
    node: str = ""  # NODES=all: the node the case is pinned to
    check: str = ""  # a check that is not a scenario: node-features, api-*

    @property
    def label(self) -> str:
        """The case's name in results: 'blog-example', 'blog-example.init', 'blog-example@node-1'."""
        base = self.check or (self.scenario.name if self.scenario else "?")
        if self.variant != "container":
            base += f".{self.variant}"
        return base + (f"@{self.node}" if self.node else "")

    @property
    def item_name(self) -> str:
        return f"{self.label}[{self.policy}]"


@dataclass
class Verdicted:
    """A judged case: the verdict, the evidence for results.json, and (for a target's own checks, which have
    no scenario) what was expected and where that comes from."""

    judgement: Judgement
    observed: dict
    expected: dict | None = None
    source: str = ""


class Runner(Protocol):
    """Runs and judges cases in one pytest process (the controller or an xdist worker)."""

    parallel: int  # how many cases may run at once in one process (Kubernetes targets run pods side by side)
    can_restart: bool  # the runtime can be restarted (a runtime the suite started)

    def run(self, case: Case) -> Any: ...

    def batches(self, cases: list[Case]) -> list[list[Case]]:
        """The cases that run together (one pod of the Kubernetes targets); each alone elsewhere."""
        ...

    def run_batch(self, cases: list[Case]) -> list[Any]:
        """Run one batch; the outcomes in the batch's order. An exception object in a case's place is that
        case's error alone (the batch's other cases keep their outcomes); one raised is every case's."""
        ...

    def judge(self, case: Case, outcome: Any) -> Verdicted: ...

    def close(self) -> None: ...


class Session(Protocol):
    """Everything one run owns on its target; stop() removes all of it, and only it."""

    info: RuntimeInfo | None
    failed: bool  # set by the runner before stop(): a case failed or errored (kind keeps its logs then)

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def header(self, startup: float) -> str: ...

    def hold(self, say: Callable[[str], None]) -> None:
        """After the cases, before stop(): KEEP=1 keeps what it can (TARGET=local waits for Ctrl-C here)."""
        ...

    def cases(self) -> list[Case]: ...

    def runner(self) -> Runner: ...

    def worker_context(self) -> dict:
        """JSON-able context from which an xdist worker builds its own runner."""
        ...

    def results_extra(self) -> dict:
        """Top-level results.json fields besides runtime, cases and summary."""
        ...

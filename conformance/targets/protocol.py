"""The interface every target implements (the pytest plugin drives it): its cases, a runner per pytest
process, and the session that owns everything it started. Adding a target means one folder with these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from conformance.core.case import Case, Verdicted
from conformance.core.catalogue import Catalogue
from conformance.core.floor import BarePod
from conformance.core.model import RuntimeInfo
from conformance.core.options import Options


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

    def bare_pods(self, count: int, side_by_side: int, poll: float | None = None) -> list[BarePod]:
        """The floor (`make bench`): `count` bare pods, created and observed as this runner runs a case. With
        `poll`: each observed by a GET every `poll` seconds instead (the bench's earlier floor, shown beside the
        real one); a runner that has no other way to observe than its own returns none."""
        ...

    def close(self) -> None: ...


class Session(Protocol):
    """Everything one run owns on its target; stop() removes all of it, and only it."""

    info: RuntimeInfo | None
    failed: bool  # set by the runner before stop(): a case failed or errored (kind keeps its logs then)

    def __init__(self, opts: Options, catalogue: Catalogue) -> None: ...

    @classmethod
    def plan(cls, opts: Options, catalogue: Catalogue) -> str | None:
        """DRY_RUN=1: what a run would build and start, nothing started; None: no plan (DRY_RUN=1 is refused)."""
        ...

    @classmethod
    def cleanup(cls, opts: Options) -> int:
        """--cleanup: remove what runs that died left; the exit code."""
        ...

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

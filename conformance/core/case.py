"""A case: one pytest item, a scenario under a policy (in a container kind, on a node) or a target's own
check; and a judged case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.core.observe import ProbeError
from conformance.core.scenario import Scenario
from conformance.core.verdict import Judgement
from conformance.errors import Stopped, SuiteError


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


class CaseError(SuiteError):
    """The error one case of a shared pod or sandbox hit, carried to that case (and no other)."""

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}" if isinstance(error, ProbeError) else str(error))
        self.error = error


def own(fn: Callable[[], Any], *also: type[BaseException]) -> Any:
    """fn's value, or the error one case hit (SuiteError, ProbeError, and `also`) as that case's CaseError; a
    stopping run stops."""
    try:
        return fn()
    except Stopped:
        raise
    except (SuiteError, ProbeError, *also) as exc:
        return CaseError(exc)

"""Core value types shared by every target: identities, policies, verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MAX_ID = 2147483647
POLICIES = ("unset", "Merge", "Strict")
USERNS_LENGTH = 65536  # the kubelet's per-pod user namespace: container IDs 0..65535 (hostUsers: false)


class Verdict(StrEnum):
    """Outcome of one case. Only PASS, UNSUPPORTED and KNOWN_FAILURE keep the exit code at 0."""

    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"
    KNOWN_FAILURE = "known-failure"
    REJECTED = "rejected"
    ERROR = "error"


@dataclass(frozen=True)
class Identity:
    """A process identity: uid, primary gid and the set of supplementary groups."""

    uid: int
    gid: int
    groups: frozenset[int]

    def to_json(self) -> dict:
        return {"uid": self.uid, "gid": self.gid, "groups": sorted(self.groups)}

    @classmethod
    def from_json(cls, data: dict) -> Identity:
        return cls(int(data["uid"]), int(data["gid"]), frozenset(int(g) for g in data["groups"]))


@dataclass(frozen=True)
class Expectation:
    """What a case should show: an identity, or an expected CreateContainer/RunPodSandbox failure.
    `label` names the outcome when the runtime may choose between several (a scenario's runtime_choice)."""

    identity: Identity | None = None
    error: str | None = None  # e.g. "CreateContainer"
    message: str = ""  # text the runtime's error must contain (errors only)
    label: str = ""

    def to_json(self) -> dict:
        out: dict = {"as": self.label} if self.label else {}
        if self.error:
            return {**out, "error": self.error, **({"message": self.message} if self.message else {})}
        assert self.identity is not None
        return {**out, **self.identity.to_json()}

    def same_outcome(self, other: Expectation) -> bool:
        """Equal apart from the label and message (the oracle knows neither)."""
        return self.identity == other.identity and self.error == other.error


@dataclass
class RuntimeInfo:
    """The runtime under test as the CRI describes it."""

    name: str
    version: str
    api_version: str = ""
    features: dict[str, bool] | None = None  # None: Status() carried no features message
    handler: str = ""
    endpoint: str = ""
    oci: dict | None = None  # the OCI runtime: name, path, version (and a wrapper, if the suite put one in front)
    # the handler's features (Status().runtime_handlers, node.status.runtimeHandlers): user_namespaces,
    # recursive_read_only_mounts; None: the runtime reports no handlers
    handler_features: dict[str, bool] | None = None
    source: str = ""  # where the binaries of a runtime the suite started came from

    @property
    def supports_policy(self) -> bool:
        return bool(self.features and self.features.get("supplemental_groups_policy"))

    @property
    def supports_userns(self) -> bool:
        """The handler in use advertises user namespaces (what the kubelet checks for hostUsers: false)."""
        return bool(self.handler_features and self.handler_features.get("user_namespaces"))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "api_version": self.api_version,
            "features": self.features,
            "handler": self.handler,
            "endpoint": self.endpoint,
            "oci_runtime": self.oci,
            "handler_features": self.handler_features,
            "from": self.source,
        }

    @classmethod
    def from_json(cls, data: dict) -> RuntimeInfo:
        return cls(name=data["name"], version=data["version"], api_version=data.get("api_version", ""),
                   features=data.get("features"), handler=data.get("handler", ""),
                   endpoint=data.get("endpoint", ""), oci=data.get("oci_runtime"),
                   handler_features=data.get("handler_features"), source=data.get("from", ""))


@dataclass
class CaseResult:
    """One scenario × policy, as written to results.json."""

    scenario: str
    policy: str
    verdict: Verdict
    expected: dict = field(default_factory=dict)
    observed: dict = field(default_factory=dict)
    detail: str = ""
    source: str = ""
    tags: list[str] = field(default_factory=list)
    duration: float = 0.0
    links: list[str] = field(default_factory=list)
    choice: str = ""  # which allowed outcome the runtime chose (scenarios with a runtime_choice)

    def to_json(self) -> dict:
        extra = {"choice": self.choice} if self.choice else {}
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "verdict": self.verdict.value,
            "expected": self.expected,
            "observed": self.observed,
            "detail": self.detail,
            "source": self.source,
            "tags": self.tags,
            "links": self.links,
            "duration": round(self.duration, 3),
            **extra,
        }

    @classmethod
    def from_json(cls, data: dict) -> CaseResult:
        return cls(
            scenario=data["scenario"],
            policy=data["policy"],
            verdict=Verdict(data["verdict"]),
            expected=data.get("expected", {}),
            observed=data.get("observed", {}),
            detail=data.get("detail", ""),
            source=data.get("source", ""),
            tags=list(data.get("tags", [])),
            duration=float(data.get("duration", 0.0)),
            links=list(data.get("links", [])),
            choice=data.get("choice", ""),
        )


def exit_code(verdicts: list[Verdict]) -> int:
    """0: all pass/unsupported/known/rejected; 1: a conformance failure; 2: an error."""
    if Verdict.ERROR in verdicts:
        return 2
    if Verdict.FAIL in verdicts:
        return 1
    return 0

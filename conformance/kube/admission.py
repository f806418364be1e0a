"""The kubelet's admission rule: from kubelet 1.33 on, a Strict pod on a node that does not advertise
the feature is rejected with one reason, one message and one Warning event (behaviours.md 13, 14, E15)."""

from __future__ import annotations

from conformance.core.model import Expectation, Verdict
from conformance.core.verdict import Judgement

REJECT_REASON = "SupplementalGroupsPolicyNotSupported"
REJECT_MESSAGE = "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node"
REJECT_FROM_MINOR = 33  # kubelet admission rejects from Beta (1.33) on; alpha falls back to Merge silently


def expects_rejection(policy: str, supported: bool, minor: int) -> bool:
    return policy == "Strict" and not supported and minor >= REJECT_FROM_MINOR


def expected_outcome(policy: str, supported: bool, minor: int, expectation: Expectation) -> str:
    """What a case should end as: rejected, unsupported (silent Merge), error (CreateContainer) or identity."""
    if expects_rejection(policy, supported, minor):
        return "rejected"
    if policy == "Strict" and not supported:
        return "unsupported"
    return "create-error" if expectation.error else "identity"


def is_rejected(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == REJECT_REASON


def rejection_judgement(policy: str, pod: dict, events: list[dict], supported: bool,
                        minor: int) -> Judgement | None:
    """The admission part of the verdict; None when admission was as expected and the identity decides."""
    rejected = is_rejected(pod)
    if not expects_rejection(policy, supported, minor):
        if rejected:
            why = "the node advertises the feature" if supported else f"kubelet 1.{minor} predates the rejection"
            return Judgement(Verdict.FAIL, f"pod rejected ({REJECT_REASON}) although {why}"
                             + ("" if policy == "Strict" else f"; only Strict may be rejected, policy {policy}"))
        return None
    if not rejected:
        phase = (pod.get("status") or {}).get("phase")
        return Judgement(Verdict.FAIL, f"Strict pod admitted (phase {phase}) on a node without "
                         f"supplementalGroupsPolicy support; kubelet 1.{minor} must reject it with {REJECT_REASON}")
    problems = []
    message = (pod.get("status") or {}).get("message")
    if message != REJECT_MESSAGE:
        problems.append(f"status.message {message!r}, expected {REJECT_MESSAGE!r}")
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") == REJECT_REASON]
    total = sum(int(e.get("count") or 1) for e in warnings)
    if total != 1:
        problems.append(f"{total} Warning events with reason {REJECT_REASON}, expected exactly 1")
    for event in warnings:
        if event.get("message") != REJECT_MESSAGE.removeprefix("Pod was rejected: "):
            problems.append(f"event message {event.get('message')!r}")
    if problems:
        return Judgement(Verdict.FAIL, "rejected, but: " + "; ".join(problems))
    return Judgement(Verdict.REJECTED, f"rejected as expected: {REJECT_MESSAGE}")


# ----------------------------------------------------------------------------- running cases


"""Judge one case: compare every piece of evidence with the expectation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.model import Expectation, Identity, RuntimeInfo, Verdict
from conformance.observe import ProcessIdentity
from conformance.scenario import KnownFailure


@dataclass
class Observation:
    """Everything read for one case on a target."""

    first: ProcessIdentity | None = None  # the container's first process (from its log)
    exec: ProcessIdentity | None = None  # a process started with ExecSync
    user: dict | None = None  # ContainerStatus.user.linux: uid, gid, supplemental_groups
    create_error: str | None = None  # CreateContainer refused the container
    extra: dict | None = None

    def to_json(self) -> dict:
        out: dict = {
            "first_process": self.first.to_json() if self.first else None,
            "exec_process": self.exec.to_json() if self.exec else None,
            "status_user": self.user,
        }
        if self.create_error is not None:
            out["create_error"] = self.create_error
        if self.extra:
            out.update(self.extra)
        return out


@dataclass
class Judgement:
    verdict: Verdict
    detail: str
    links: tuple[str, ...] = ()


def _fmt(groups: Iterable[int]) -> str:
    return "{" + ", ".join(str(g) for g in sorted(groups)) + "}"


def _compare(label: str, uid: int | None, gid: int | None, groups: list[int], want: Identity) -> list[str]:
    problems = []
    if uid != want.uid:
        problems.append(f"{label}: uid {uid}, expected {want.uid}")
    if gid != want.gid:
        problems.append(f"{label}: gid {gid}, expected {want.gid}")
    have = set(groups)
    if have != want.groups:
        extra, missing = have - want.groups, want.groups - have
        parts = [f"extra {_fmt(extra)}" if extra else "", f"missing {_fmt(missing)}" if missing else ""]
        problems.append(f"{label}: groups {_fmt(have)}, expected {_fmt(want.groups)} ("
                        + ", ".join(p for p in parts if p) + ")")
    if len(groups) != len(have):
        problems.append(f"{label}: groups list has duplicates: {groups}")
    return problems


def process_problems(label: str, proc: ProcessIdentity | None, want: Identity) -> list[str]:
    """`id` and /proc/<pid>/status of one process against the expected identity."""
    if proc is None:
        return [f"{label}: no evidence read"]
    problems = _compare(f"{label} `id`", proc.id_uid, proc.id_gid, proc.id_groups, want)
    for key, values, expect in (("Uid", proc.status_uid, want.uid), ("Gid", proc.status_gid, want.gid)):
        if not values or any(v != expect for v in values):
            problems.append(f"{label} /proc status {key}: {values}, expected all {expect}")
    have = set(proc.status_groups)
    if have != want.groups:
        problems.append(f"{label} /proc status Groups: {_fmt(have)}, expected {_fmt(want.groups)}")
    return problems


def user_problems(user: dict | None, want: Identity, advertised: bool) -> list[str]:
    if not advertised:
        return [] if user is None else [f"status user reported ({user}) but the runtime does not advertise "
                                        "the feature: expected absent"]
    if user is None:
        return ["status user: absent, expected it reported (the runtime advertises the feature)"]
    return _compare("status user", user.get("uid"), user.get("gid"), list(user.get("supplemental_groups", [])),
                    want)


def silent_ignore_evidence(first: ProcessIdentity | None, strict: Identity, merge: Identity | None) -> str:
    """For Strict on a runtime without the feature: say whether Strict was silently ignored."""
    if first is None:
        return "no process evidence"
    have = set(first.status_groups)
    if merge is None or merge.groups == strict.groups:
        return (f"the image grants no extra groups, so a silent ignore cannot be seen (groups {_fmt(have)})")
    if have == merge.groups:
        image_groups = merge.groups - strict.groups
        return (f"Strict was silently ignored: image groups {_fmt(image_groups)} attached anyway "
                f"(groups {_fmt(have)}, Strict expects {_fmt(strict.groups)})")
    if have == strict.groups:
        return f"Strict was honoured although not advertised (groups {_fmt(have)})"
    return f"groups {_fmt(have)} match neither Strict {_fmt(strict.groups)} nor Merge {_fmt(merge.groups)}"


def judge(policy: str, expectation: Expectation, obs: Observation, runtime: RuntimeInfo,
          merge: Expectation | None = None, known: KnownFailure | None = None) -> Judgement:
    """The verdict for one case; never PASS unless every piece of evidence matched."""
    advertised = runtime.supports_policy
    if expectation.error:
        if obs.create_error is not None:
            return Judgement(Verdict.PASS, f"{expectation.error} refused as expected: {obs.create_error}")
        return _failed([f"expected {expectation.error} to fail, but it succeeded"], known)
    want = expectation.identity
    assert want is not None
    unsupported = policy == "Strict" and not advertised
    if obs.create_error is not None:
        if unsupported:
            return Judgement(Verdict.UNSUPPORTED, f"runtime does not advertise the feature; CreateContainer "
                                                  f"refused Strict: {obs.create_error}")
        return _failed([f"CreateContainer failed: {obs.create_error}"], known)
    if unsupported:
        merge_id = merge.identity if merge else None
        evidence = silent_ignore_evidence(obs.first, want, merge_id)
        return Judgement(Verdict.UNSUPPORTED, "runtime does not advertise supplemental_groups_policy; " + evidence)
    problems = (process_problems("first process", obs.first, want) + process_problems("exec'd process", obs.exec, want)
                + user_problems(obs.user, want, advertised))
    if problems:
        return _failed(problems, known)
    if known is not None:
        return Judgement(Verdict.PASS, f"known failure did not reproduce, the issue looks fixed: {known.link}",
                         (known.link,))
    return Judgement(Verdict.PASS, "")


def _failed(problems: list[str], known: KnownFailure | None) -> Judgement:
    text = "\n".join(problems)
    if known is not None:
        return Judgement(Verdict.KNOWN_FAILURE, f"known failure ({known.link}): {known.reason}\n{text}",
                         (known.link,))
    return Judgement(Verdict.FAIL, text)

"""Judge one case: compare every piece of evidence with the expectation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from conformance.core.model import USERNS_LENGTH, Expectation, Identity, RuntimeInfo, Verdict
from conformance.core.observe import ProcessIdentity
from conformance.core.scenario import KnownFailure, RuntimeChoice


@dataclass
class Observation:
    """Everything read for one case on a target."""

    first: ProcessIdentity | None = None  # the container's first process (from its log)
    first_from: str | None = None  # where an exited first process's block was read: termination message | log
    exec: ProcessIdentity | None = None  # a process started with ExecSync
    user: dict | None = None  # ContainerStatus.user.linux: uid, gid, supplemental_groups
    create_error: str | None = None  # CreateContainer refused the container
    sandbox_error: str | None = None  # RunPodSandbox refused the pod (recorded only where expected)
    start_error: str | None = None  # StartContainer failed (recorded for user-namespace cases and where expected)
    extra: dict | None = None
    sent_policy: int | None = None  # the supplemental_groups_policy enum value sent; None: left unset
    expected_exit: int | None = None  # the first process was meant to exit with this code (no exec then)
    state: str | None = None  # ContainerStatus.state when the status user was read (exited cases)
    exit_code: int | None = None  # ContainerStatus.exit_code of an exited container
    later_users: dict[str, dict | None] = field(default_factory=dict)  # label -> status user read later
    later_execs: dict[str, ProcessIdentity | None] = field(default_factory=dict)  # label -> exec read later

    @property
    def needs_feature(self) -> bool:
        """The case depends on the policy field: something other than Merge/unset was sent."""
        return self.sent_policy not in (None, 0)

    def to_json(self) -> dict:
        out: dict = {
            "first_process": self.first.to_json() if self.first else None,
            "exec_process": self.exec.to_json() if self.exec else None,
            "status_user": self.user,
        }
        if self.sent_policy is not None:
            out["sent_policy_value"] = self.sent_policy
        if self.create_error is not None:
            out["create_error"] = self.create_error
        if self.sandbox_error is not None:
            out["sandbox_error"] = self.sandbox_error
        if self.start_error is not None:
            out["start_error"] = self.start_error
        if self.expected_exit is not None:
            out.update({"expected_exit": self.expected_exit, "state": self.state, "exit_code": self.exit_code})
        if self.first_from is not None:
            out["first_process_from"] = self.first_from
        for label, user in self.later_users.items():
            out[f"status_user {label}"] = user
        for label, proc in self.later_execs.items():
            out[f"exec_process {label}"] = proc.to_json() if proc else None
        if self.extra:
            out.update(self.extra)
        return out


@dataclass
class Judgement:
    verdict: Verdict
    detail: str
    links: tuple[str, ...] = ()
    choice: str = ""  # the allowed outcome the runtime took (scenarios with a runtime_choice)


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


def exit_problems(obs: Observation) -> list[str]:
    """An exited-container case: the container must have exited with the planned code."""
    if obs.expected_exit is None:
        return []
    problems = []
    if obs.state != "CONTAINER_EXITED":
        problems.append(f"container state {obs.state}, expected CONTAINER_EXITED")
    if obs.exit_code != obs.expected_exit:
        problems.append(f"container exit code {obs.exit_code}, expected {obs.expected_exit}")
    return problems


def later_problems(obs: Observation, want: Identity, advertised: bool) -> list[str]:
    """Evidence read again later (e.g. after a runtime restart): the same identity, the same user."""
    problems = []
    for label, user in obs.later_users.items():
        problems += [f"{p} ({label})" for p in user_problems(user, want, advertised)]
        if user != obs.user:
            problems.append(f"status user {label}: {user}, but {obs.user} before: the runtime must keep "
                            "reporting the same user")
    for label, proc in obs.later_execs.items():
        problems += process_problems(f"exec'd process {label}", proc, want)
    return problems


def userns_problems(label: str, proc: ProcessIdentity | None) -> list[str]:
    """A process of a hostUsers: false case must be in a user namespace of its own whose maps hold
    container IDs 0..USERNS_LENGTH-1 (what the kubelet sends); the maps are its evidence."""
    if proc is None:
        return []
    if not proc.uid_map or not proc.gid_map:
        return [f"{label}: no uid_map/gid_map read"]
    if not proc.in_userns:
        return [f"{label}: not in a user namespace (uid_map {proc.uid_map}): userns_options were ignored"]
    problems = []
    for name, entries in (("uid_map", proc.uid_map), ("gid_map", proc.gid_map)):
        if not any(inside == 0 and length >= USERNS_LENGTH for inside, _, length in entries):
            problems.append(f"{label}: {name} {entries} does not map container IDs 0..{USERNS_LENGTH - 1}")
    return problems


def _stage_error(obs: Observation) -> str:
    """The first call that failed, with its message, or '' when everything started."""
    for call, error in (("RunPodSandbox", obs.sandbox_error), ("CreateContainer", obs.create_error),
                        ("StartContainer", obs.start_error)):
        if error is not None:
            return f"{call} failed: {error}"
    return ""


def _error_judgement(expectation: Expectation, obs: Observation, known: KnownFailure | None) -> Judgement:
    error = {"RunPodSandbox": obs.sandbox_error, "CreateContainer": obs.create_error,
             "StartContainer": obs.start_error}[expectation.error or ""]
    if error is None:
        other = _stage_error(obs)
        if other:
            return _failed([f"expected {expectation.error} to fail, but {other}"], known)
        return _failed([f"expected {expectation.error} to fail, but it succeeded"], known)
    if expectation.message and expectation.message.lower() not in error.lower():
        return _failed([f"{expectation.error} failed, but its error lacks {expectation.message!r}: {error}"], known)
    return Judgement(Verdict.PASS, f"{expectation.error} refused as expected: {error}")


def judge(policy: str, expectation: Expectation, obs: Observation, runtime: RuntimeInfo,
          merge: Expectation | None = None, known: KnownFailure | None = None, userns: bool = False) -> Judgement:
    """The verdict for one case; never PASS unless every piece of evidence matched.

    A case that needs the feature (Strict, or a raw enum value other than Merge) is UNSUPPORTED on a
    runtime that does not advertise it, whatever happened, with the evidence of what it did. A
    user-namespace case (`userns`) is UNSUPPORTED likewise when the runtime handler does not advertise
    user namespaces (the kubelet refuses hostUsers: false there), with what the runtime did."""
    if userns and not runtime.supports_userns:
        return _userns_unsupported(policy, expectation, obs, runtime, merge)
    judgement = _judge(policy, expectation, obs, runtime, merge, known)
    if not userns or expectation.error or judgement.verdict not in (Verdict.PASS, Verdict.FAIL,
                                                                    Verdict.KNOWN_FAILURE):
        return judgement
    problems = userns_problems("first process", obs.first) + userns_problems("exec'd process", obs.exec)
    if not problems:
        return judgement
    if judgement.verdict == Verdict.PASS:
        return _failed(problems, None)
    return Judgement(judgement.verdict, judgement.detail + "\n" + "\n".join(problems), judgement.links)


def _userns_unsupported(policy: str, expectation: Expectation, obs: Observation, runtime: RuntimeInfo,
                        merge: Expectation | None) -> Judgement:
    """UNSUPPORTED for a user-namespace case, with what the handler reports and what the runtime did."""
    handler = f"runtime handler {runtime.handler!r}" if runtime.handler else "the default runtime handler"
    if runtime.handler_features is None:
        why = f"the runtime reports no runtime handlers, so {handler} does not advertise user namespaces"
    else:
        why = f"{handler} advertises user_namespaces=false (CRI Status().runtime_handlers, node.status.runtimeHandlers)"
    failed = _stage_error(obs)
    if failed:
        return Judgement(Verdict.UNSUPPORTED, f"{why}; {failed}")
    plain = _judge(policy, expectation, obs, runtime, merge, None)
    problems = userns_problems("first process", obs.first) if not expectation.error else []
    if plain.verdict == Verdict.PASS and not problems:
        seen = "ran in a user namespace and every piece of evidence matched the expectation"
    else:
        seen = "what it did: " + "; ".join([plain.detail, *problems]).strip("; ")
    return Judgement(Verdict.UNSUPPORTED, f"{why}; {seen}")


def _judge(policy: str, expectation: Expectation, obs: Observation, runtime: RuntimeInfo,
           merge: Expectation | None = None, known: KnownFailure | None = None) -> Judgement:
    """judge() without the user-namespace part."""
    advertised = runtime.supports_policy
    unsupported = (policy == "Strict" or obs.needs_feature) and not advertised
    if expectation.error:
        if unsupported:
            refused = obs.sandbox_error or obs.create_error or obs.start_error
            outcome = (f"{expectation.error} refused: {refused}" if refused is not None
                       else f"{expectation.error} accepted it (the field is silently ignored)")
            return Judgement(Verdict.UNSUPPORTED, f"runtime does not advertise supplemental_groups_policy; {outcome}")
        return _error_judgement(expectation, obs, known)
    want = expectation.identity
    assert want is not None
    if obs.sandbox_error is not None:
        return _failed([f"RunPodSandbox failed: {obs.sandbox_error}"], known)
    if obs.create_error is not None:
        if unsupported:
            return Judgement(Verdict.UNSUPPORTED, f"runtime does not advertise the feature; CreateContainer "
                                                  f"refused Strict: {obs.create_error}")
        return _failed([f"CreateContainer failed: {obs.create_error}"], known)
    if obs.start_error is not None:
        return _failed([f"StartContainer failed: {obs.start_error}"], known)
    if unsupported:
        merge_id = merge.identity if merge else None
        evidence = silent_ignore_evidence(obs.first, want, merge_id)
        return Judgement(Verdict.UNSUPPORTED, "runtime does not advertise supplemental_groups_policy; " + evidence)
    problems = process_problems("first process", obs.first, want) + exit_problems(obs)
    if obs.expected_exit is None:
        problems += process_problems("exec'd process", obs.exec, want)
    problems += user_problems(obs.user, want, advertised) + later_problems(obs, want, advertised)
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


def judge_outcomes(policy: str, outcomes: tuple[Expectation, ...], obs: Observation, runtime: RuntimeInfo,
                   merge: Expectation | None = None, known: KnownFailure | None = None,
                   choice: RuntimeChoice | None = None, userns: bool = False) -> Judgement:
    """The verdict against every outcome a scenario allows: one expectation, or the alternatives of a
    runtime_choice, where matching any one of them passes and the one taken is recorded."""
    if len(outcomes) == 1:
        return judge(policy, outcomes[0], obs, runtime, merge, known, userns)
    tried = [(o, judge(policy, o, obs, runtime, merge, userns=userns)) for o in outcomes]
    for outcome, judgement in tried:
        if judgement.verdict == Verdict.PASS:
            return Judgement(Verdict.PASS, f"runtime choice '{outcome.label}': one of the allowed outcomes "
                             f"({', '.join(o.label for o in outcomes)})", choice=outcome.label)
    if tried[0][1].verdict != Verdict.FAIL:  # unsupported: the same for every outcome
        return tried[0][1]
    problems = ["matches none of the allowed outcomes:"]
    for outcome, judgement in tried:
        problems += [f"[{outcome.label}] {line}" for line in judgement.detail.splitlines()]
    return _failed(problems, known)

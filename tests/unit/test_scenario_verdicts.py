"""Judging exited containers, later reads (runtime restart), expected errors and raw enum values."""

from __future__ import annotations

from conformance.core.model import Expectation, Identity, RuntimeInfo, Verdict
from conformance.core.observe import ProcessIdentity
from conformance.core.scenario import RuntimeChoice
from conformance.core.verdict import Observation, judge, judge_outcomes

SUPPORTED = RuntimeInfo("containerd", "2.1.9", features={"supplemental_groups_policy": True})
UNSUPPORTED = RuntimeInfo("containerd", "1.7.24", features=None)
WANT = Expectation(Identity(1000, 1000, frozenset({1000, 60000})))
ERROR = Expectation(error="CreateContainer")
USER = {"uid": 1000, "gid": 1000, "supplemental_groups": [1000, 60000]}


def proc(groups: list[int]) -> ProcessIdentity:
    return ProcessIdentity(id_line="x", id_uid=1000, id_gid=1000, id_groups=groups, status_uid=[1000] * 4,
                           status_gid=[1000] * 4, status_groups=groups)


def exited(code: int, expected: int, state: str = "CONTAINER_EXITED") -> Observation:
    return Observation(first=proc([1000, 60000]), user=dict(USER), expected_exit=expected, state=state,
                       exit_code=code)


def test_exited_container_passes_without_exec() -> None:
    assert judge("Strict", WANT, exited(3, 3), SUPPORTED).verdict == Verdict.PASS


def test_exited_container_with_wrong_code_or_state_fails() -> None:
    assert "exit code 0, expected 3" in judge("Merge", WANT, exited(0, 3), SUPPORTED).detail
    j = judge("Merge", WANT, exited(0, 0, state="CONTAINER_RUNNING"), SUPPORTED)
    assert j.verdict == Verdict.FAIL and "CONTAINER_EXITED" in j.detail


def test_running_container_still_needs_exec_evidence() -> None:
    obs = Observation(first=proc([1000, 60000]), user=dict(USER))
    j = judge("Merge", WANT, obs, SUPPORTED)
    assert j.verdict == Verdict.FAIL and "exec'd process: no evidence" in j.detail


def test_user_changed_after_restart_fails() -> None:
    obs = Observation(first=proc([1000, 60000]), exec=proc([1000, 60000]), user=dict(USER))
    obs.later_users["after runtime restart"] = {}
    obs.later_execs["after runtime restart"] = proc([1000, 60000])
    j = judge("Merge", WANT, obs, SUPPORTED)
    assert j.verdict == Verdict.FAIL and "after runtime restart" in j.detail and "same user" in j.detail


def test_same_user_after_restart_passes_and_missing_exec_after_fails() -> None:
    obs = Observation(first=proc([1000, 60000]), exec=proc([1000, 60000]), user=dict(USER))
    obs.later_users["after runtime restart"] = dict(USER)
    obs.later_execs["after runtime restart"] = proc([1000, 60000])
    assert judge("Merge", WANT, obs, SUPPORTED).verdict == Verdict.PASS
    obs.later_execs["after runtime restart"] = None
    assert judge("Merge", WANT, obs, SUPPORTED).verdict == Verdict.FAIL


def test_expected_error_needs_the_message() -> None:
    obs = Observation(create_error="not implemented in this containerd release: SupplementalGroupsPolicy=2",
                      sent_policy=2)
    assert judge("unset", Expectation(error="CreateContainer", message="not implemented"), obs,
                 SUPPORTED).verdict == Verdict.PASS
    j = judge("unset", Expectation(error="CreateContainer", message="specified without user"), obs, SUPPORTED)
    assert j.verdict == Verdict.FAIL and "lacks" in j.detail


def test_expected_error_that_does_not_happen_fails() -> None:
    obs = Observation(first=proc([1000]), exec=proc([1000]), user=dict(USER), sent_policy=2)
    assert judge("unset", ERROR, obs, SUPPORTED).verdict == Verdict.FAIL


def test_raw_enum_on_runtime_without_the_feature_is_unsupported() -> None:
    obs = Observation(first=proc([1000]), exec=proc([1000]), sent_policy=2)
    j = judge("unset", ERROR, obs, UNSUPPORTED)
    assert j.verdict == Verdict.UNSUPPORTED and "silently ignored" in j.detail


def test_strict_error_case_is_unsupported_without_the_feature() -> None:
    j = judge("Strict", ERROR, Observation(create_error="boom", sent_policy=1), UNSUPPORTED)
    assert j.verdict == Verdict.UNSUPPORTED and "boom" in j.detail
    assert judge("Merge", ERROR, Observation(create_error="boom", sent_policy=0), UNSUPPORTED).verdict == Verdict.PASS


def test_sandbox_error_expectation() -> None:
    want = Expectation(error="RunPodSandbox", message="without user")
    assert judge("Merge", want, Observation(sandbox_error="user group is specified without user"),
                 SUPPORTED).verdict == Verdict.PASS
    assert judge("Merge", want, Observation(create_error="x"), SUPPORTED).verdict == Verdict.FAIL


def test_observation_json_carries_the_new_evidence() -> None:
    obs = exited(3, 3)
    obs.sent_policy = 1
    obs.later_users["after runtime restart"] = dict(USER)
    doc = obs.to_json()
    assert doc["sent_policy_value"] == 1 and doc["exit_code"] == 3 and doc["status_user after runtime restart"]


REFUSES = Expectation(error="RunPodSandbox", message="specified without user", label="refuses-sandbox")
RUNS = Expectation(Identity(1000, 1000, frozenset({1000, 60000})), label="runs-pod")
CHOICE = RuntimeChoice(why="The CRI leaves it open. More words.", source="cri-api")


def test_runtime_choice_passes_either_allowed_outcome_and_records_it() -> None:
    refused = judge_outcomes("Merge", (REFUSES, RUNS), Observation(sandbox_error='user group "3000" is '
                             "specified without user"), SUPPORTED, choice=CHOICE)
    assert refused.verdict == Verdict.PASS and refused.choice == "refuses-sandbox"
    assert "one of the allowed outcomes (refuses-sandbox, runs-pod)" in refused.detail
    ran = judge_outcomes("Merge", (REFUSES, RUNS), Observation(first=proc([1000, 60000]), exec=proc([1000, 60000]),
                         user=dict(USER)), SUPPORTED, choice=CHOICE)
    assert ran.verdict == Verdict.PASS and ran.choice == "runs-pod"


def test_runtime_choice_fails_when_no_outcome_matches() -> None:
    obs = Observation(first=proc([1000]), exec=proc([1000]), user={"uid": 1000, "gid": 1000,
                      "supplemental_groups": [1000]})
    j = judge_outcomes("Merge", (REFUSES, RUNS), obs, SUPPORTED, choice=CHOICE)
    assert j.verdict == Verdict.FAIL and j.choice == "" and "matches none of the allowed outcomes" in j.detail
    assert "[refuses-sandbox] expected RunPodSandbox to fail" in j.detail and "[runs-pod] first process" in j.detail
    wrong_refusal = judge_outcomes("Merge", (REFUSES, RUNS), Observation(sandbox_error="no space left"), SUPPORTED)
    assert wrong_refusal.verdict == Verdict.FAIL and "RunPodSandbox failed: no space left" in wrong_refusal.detail


def test_runtime_choice_on_a_runtime_without_the_feature_is_unsupported_for_strict() -> None:
    j = judge_outcomes("Strict", (REFUSES, RUNS), Observation(sandbox_error="x", sent_policy=1), UNSUPPORTED)
    assert j.verdict == Verdict.UNSUPPORTED

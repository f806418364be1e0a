from conformance.core.model import Expectation, Identity, RuntimeInfo, Verdict
from conformance.core.observe import ProcessIdentity
from conformance.core.scenario import KnownFailure
from conformance.core.verdict import Observation, judge

SUPPORTED = RuntimeInfo("containerd", "2.1.9", features={"supplemental_groups_policy": True})
UNSUPPORTED = RuntimeInfo("containerd", "1.7.24", features=None)
STRICT = Expectation(Identity(1000, 1000, frozenset({1000, 60000})))
MERGE = Expectation(Identity(1000, 1000, frozenset({1000, 50000, 60000})))


def proc(groups: list[int], uid: int = 1000, gid: int = 1000) -> ProcessIdentity:
    return ProcessIdentity(id_line="x", id_uid=uid, id_gid=gid, id_groups=groups, status_uid=[uid] * 4,
                           status_gid=[gid] * 4, status_groups=groups)


def obs(groups: list[int], user_groups: list[int] | None = None, user: bool = True) -> Observation:
    ug = groups if user_groups is None else user_groups
    return Observation(first=proc(groups), exec=proc(groups),
                       user={"uid": 1000, "gid": 1000, "supplemental_groups": ug} if user else None)


def test_pass_needs_every_piece_of_evidence() -> None:
    assert judge("Strict", STRICT, obs([1000, 60000]), SUPPORTED).verdict == Verdict.PASS


def test_status_lie_is_a_failure_even_if_process_is_right() -> None:
    j = judge("Strict", STRICT, obs([1000, 60000], user_groups=[1000, 50000, 60000]), SUPPORTED)
    assert j.verdict == Verdict.FAIL and "status user" in j.detail and "extra {50000}" in j.detail


def test_process_evidence_beats_a_correct_status() -> None:
    o = obs([1000, 60000])
    o.first = proc([1000, 50000, 60000])
    j = judge("Strict", STRICT, o, SUPPORTED)
    assert j.verdict == Verdict.FAIL and "first process" in j.detail and "/proc status Groups" in j.detail


def test_missing_user_on_supporting_runtime_fails() -> None:
    assert judge("Merge", MERGE, obs([1000, 50000, 60000], user=False), SUPPORTED).verdict == Verdict.FAIL


def test_user_reported_without_feature_fails() -> None:
    j = judge("Merge", MERGE, obs([1000, 50000, 60000]), UNSUPPORTED)
    assert j.verdict == Verdict.FAIL and "does not advertise" in j.detail


def test_duplicates_in_status_fail() -> None:
    j = judge("Strict", STRICT, obs([1000, 60000], user_groups=[1000, 60000, 60000]), SUPPORTED)
    assert j.verdict == Verdict.FAIL and "duplicates" in j.detail


def test_strict_unsupported_reports_silent_ignore() -> None:
    j = judge("Strict", STRICT, obs([1000, 50000, 60000], user=False), UNSUPPORTED, merge=MERGE)
    assert j.verdict == Verdict.UNSUPPORTED and "silently ignored" in j.detail and "{50000}" in j.detail


def test_strict_unsupported_without_image_groups_says_so() -> None:
    j = judge("Strict", STRICT, obs([1000, 60000], user=False), UNSUPPORTED, merge=STRICT)
    assert j.verdict == Verdict.UNSUPPORTED and "cannot be seen" in j.detail


def test_expected_error() -> None:
    want = Expectation(error="CreateContainer")
    assert judge("Merge", want, Observation(create_error="no such user"), SUPPORTED).verdict == Verdict.PASS
    assert judge("Merge", want, obs([1000]), SUPPORTED).verdict == Verdict.FAIL


def test_unexpected_create_error_fails() -> None:
    j = judge("Merge", MERGE, Observation(create_error="boom"), SUPPORTED)
    assert j.verdict == Verdict.FAIL and "boom" in j.detail


def test_known_failure_and_fixed() -> None:
    kf = KnownFailure("containerd", "*", ("Merge",), "https://github.com/containerd/containerd/issues/11937", "r")
    bad = judge("Merge", MERGE, obs([1000, 60000]), SUPPORTED, known=kf)
    assert bad.verdict == Verdict.KNOWN_FAILURE and kf.link in bad.links
    good = judge("Merge", MERGE, obs([1000, 50000, 60000]), SUPPORTED, known=kf)
    assert good.verdict == Verdict.PASS and "looks fixed" in good.detail

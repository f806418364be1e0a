"""Scenario keys for the catalogue's mechanics: first_process.exit, error messages, raw_cri, restart."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from conformance.core.case import Case
from conformance.core.catalogue import Catalogue
from conformance.core.image import load_images
from conformance.core.observe import ProbeError
from conformance.core.scenario import load_catalogue, load_scenario
from conformance.core.verdict import Observation
from conformance.cri.client import CRIError
from conformance.errors import InputError, SuiteError
from conformance.targets.node.runner import NodeRunner
from conformance.targets.node.target import CaseLock, CaseSpec, NodeTarget, shared_sandbox

PROJECT = Path(__file__).resolve().parents[2]
IMAGES = load_images(PROJECT / "images")
BASE = "source: test\nimage: agnhost-like\npod: {runAsUser: 1000}\n"
EXPECT = ("expect:\n  unset: {uid: 1000, gid: 1000, groups: [1000, 50000]}\n"
          "  Merge: {uid: 1000, gid: 1000, groups: [1000, 50000]}\n  Strict: {uid: 1000, gid: 1000, groups: [1000]}\n")


def scenario(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(path, IMAGES)


def test_first_process_exit_is_loaded_and_drives_the_case_spec(tmp_path: Path) -> None:
    scn = scenario(tmp_path, BASE + "first_process: {exit: 3}\n" + EXPECT)
    assert scn.first_exit == 3
    assert CaseSpec.for_scenario(scn) == CaseSpec(keep_running=False, exit_code=3, restart=False)


@pytest.mark.parametrize("value", ["-1", "256", "true", "'0'"])
def test_first_process_exit_must_be_an_exit_code(tmp_path: Path, value: str) -> None:
    with pytest.raises(InputError, match=r"first_process\.exit"):
        scenario(tmp_path, BASE + f"first_process: {{exit: {value}}}\n" + EXPECT)


def test_first_process_needs_exit(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"first_process\.exit: is required"):
        scenario(tmp_path, BASE + "first_process: {}\n" + EXPECT)


def test_restart_tag_makes_a_restart_case(tmp_path: Path) -> None:
    scn = scenario(tmp_path, BASE + "tags: [restart]\n" + EXPECT)
    assert scn.restart and CaseSpec.for_scenario(scn).restart and CaseSpec.for_scenario(scn).keep_running


def test_raw_cri_requires_explicit_oracle_false(tmp_path: Path) -> None:
    text = BASE + "policies: [unset]\nraw_cri: {policy_value: 2}\nexpect:\n  unset: {error: CreateContainer}\n"
    with pytest.raises(InputError, match="oracle: false"):
        scenario(tmp_path, text)
    scn = scenario(tmp_path, text + "oracle: false\n")
    assert scn.raw_cri is not None and scn.raw_cri.policy_value == 2 and not scn.oracle


def test_error_message_is_kept_per_policy(tmp_path: Path) -> None:
    scn = scenario(tmp_path, BASE + "policies: [unset]\noracle: false\nraw_cri: {policy_value: 2}\n"
                   "expect:\n  unset: {error: CreateContainer, message: not implemented}\n")
    assert scn.expect["unset"].error == "CreateContainer" and scn.expect["unset"].message == "not implemented"


def test_message_without_error_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="only goes with 'error'"):
        scenario(tmp_path, BASE + "policies: [unset]\nexpect:\n  unset: {uid: 1000, gid: 1000, groups: [1000], "
                 "message: x}\n")


def test_sandbox_error_is_an_allowed_expectation(tmp_path: Path) -> None:
    scn = scenario(tmp_path, "source: t\nimage: critest-like\npod: {runAsGroup: 3000}\noracle: false\n"
                   "policies: [Merge]\nexpect:\n  Merge: {error: RunPodSandbox}\n")
    assert scn.expect["Merge"].error == "RunPodSandbox"


CHOICE = ("runtime_choice: {why: the CRI leaves it open, source: cri-api}\n"
          "expect:\n  Merge:\n    - {as: refuses, error: RunPodSandbox}\n"
          "    - {as: runs, uid: 1000, gid: 1000, groups: [1000, 50000]}\n")


def test_runtime_choice_lists_named_outcomes(tmp_path: Path) -> None:
    scn = scenario(tmp_path, BASE + "policies: [Merge]\n" + CHOICE)
    assert [o.label for o in scn.outcomes("Merge")] == ["refuses", "runs"] and scn.choice is not None
    assert scn.expected_json("Merge")["any_of"][0] == {"as": "refuses", "error": "RunPodSandbox"}
    assert scn.expected_json("Merge")["why"] == "the CRI leaves it open"


@pytest.mark.parametrize(("text", "message"), [
    ("expect:\n  Merge:\n    - {as: a, error: RunPodSandbox}\n    - {as: b, error: CreateContainer}\n",
     "needs a runtime_choice"),
    ("runtime_choice: {why: w, source: s}\nexpect:\n  Merge: {error: RunPodSandbox}\n", "no expect entry lists"),
    ("runtime_choice: {why: w, source: s}\nexpect:\n  Merge:\n    - {as: a, error: RunPodSandbox}\n",
     "at least two"),
    ("runtime_choice: {why: w, source: s}\nexpect:\n  Merge:\n    - {error: RunPodSandbox}\n"
     "    - {as: b, error: CreateContainer}\n", r"Merge\[0\]\.as: is required"),
    ("runtime_choice: {why: w, source: s}\nexpect:\n  Merge:\n    - {as: a, error: RunPodSandbox}\n"
     "    - {as: a, error: CreateContainer}\n", "names repeat"),
    ("runtime_choice: {why: w}\nexpect:\n  Merge:\n    - {as: a, error: RunPodSandbox}\n"
     "    - {as: b, error: CreateContainer}\n", "source: is required"),
])
def test_runtime_choice_mistakes_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        scenario(tmp_path, BASE + "policies: [Merge]\noracle: false\n" + text)


def test_lint_accepts_a_choice_when_one_outcome_is_the_oracles(tmp_path: Path) -> None:
    from conformance.tools.lint import lint

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "a.yaml").write_text(BASE + "policies: [Merge]\n" + CHOICE)
    assert lint(folder, PROJECT / "images") == []
    (folder / "a.yaml").write_text(BASE + "policies: [Merge]\n" + CHOICE.replace("50000]", "50001]"))
    assert "the oracle computes" in lint(folder, PROJECT / "images")[0]


def test_catalogue_size_and_sources() -> None:
    scenarios = load_catalogue(PROJECT / "scenarios", IMAGES)
    assert len(scenarios) >= 40
    assert all(s.source for s in scenarios)
    assert any(s.restart for s in scenarios) and any(s.first_exit for s in scenarios)
    assert all(not s.oracle for s in scenarios if s.raw_cri is not None)


def test_case_lock_exclusive_waits_for_shared(tmp_path: Path) -> None:
    import fcntl
    import threading

    lock = CaseLock(tmp_path)
    order: list[str] = []
    with lock.hold(exclusive=False):
        def writer() -> None:
            with lock.hold(exclusive=True):
                order.append("writer")
        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(0.3)
        assert order == []  # blocked while a case holds the lock shared
        with open(lock.main, "a") as probe:  # another reader is held off by the waiting writer's gate
            fcntl.flock(probe, fcntl.LOCK_SH)
            fcntl.flock(probe, fcntl.LOCK_UN)
        order.append("reader done")
    thread.join(5)
    assert order == ["reader done", "writer"]


def test_cases_whose_sandboxes_agree_share_one() -> None:
    """The node target's batches: the same pod-level security context sent (policy, user, groups) share a
    sandbox, in the order the first case comes, unset with Merge (the same bytes); a restart, a user namespace,
    raw CRI values and an expected sandbox refusal run alone."""
    catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    cases = [Case(s, p) for s in catalogue.scenarios for p in s.policies]
    batches = NodeRunner.batches(None, cases)  # type: ignore[arg-type]  # batches reads no runner state
    assert sorted(c.item_name for b in batches for c in b) == sorted(c.item_name for c in cases)
    assert len(batches) < len(cases) * 3 // 4
    for batch in batches:
        keys = {shared_sandbox(c.scenario, c.policy) for c in batch if c.scenario is not None}
        assert len(keys) == 1 and (None not in keys or len(batch) == 1)
        assert batch == sorted(batch, key=cases.index)
    assert any({c.policy for c in b} == {"unset", "Merge"} for b in batches)
    assert not any("Strict" in {c.policy for c in b} and len({c.policy for c in b}) > 1 for b in batches)
    alone = [b[0].scenario for b in batches if shared_sandbox(b[0].scenario, b[0].policy) is None]
    assert any(s.restart for s in alone) and any(s.user_namespace for s in alone) and any(s.raw_cri for s in alone)


class SharedFake(NodeTarget):
    """run_shared's own logic, no runtime: a sandbox id, and each case's evidence or error as scripted."""

    def __init__(self, tmp: Path, breaks: set[str], refuse: bool = False):
        self.lock, self.log_root, self.handler, self.cgroup_parent, self.run_id = CaseLock(tmp), tmp, "", "", "r"
        self.breaks, self.refuse, self.alone, self.removed = breaks, refuse, [], []
        self.stopping = threading.Event()

        class Client:
            @staticmethod
            def run_pod_sandbox(config: object, handler: str) -> str:
                if refuse:
                    raise CRIError("RunPodSandbox", grpc.StatusCode.UNKNOWN, "refused")
                return "sandbox-1"

        self.client = Client()  # type: ignore[assignment]

    def _evidence(self, scn, policy, spec, sandbox_id, sandbox_config, container):  # type: ignore[no-untyped-def]
        if scn.name == "no-etc-files" and "stop" in self.breaks:
            self.stopping.set()  # a Ctrl-C while this case runs
        if scn.name in self.breaks:
            raise ProbeError(f"{container}: no block")
        return Observation(state=container)

    def run_case(self, scn, policy, spec=None):  # type: ignore[no-untyped-def]
        self.alone.append(scn.name)
        if scn.name in self.breaks:
            raise SuiteError(f"{scn.name} broke alone too")
        return Observation(state="alone")

    def _remove_later(self, sandbox_id: str) -> None:
        self.removed.append(sandbox_id)


def test_a_case_that_breaks_in_a_shared_sandbox_runs_again_alone(tmp_path: Path) -> None:
    catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    names = ["blog-example", "container-run-as-group-override", "no-etc-files"]
    cases = [(catalogue.by_name(n), "Merge") for n in names]
    fake = SharedFake(tmp_path, {"container-run-as-group-override"})
    out = fake.run_shared(cases)
    assert [o.state if isinstance(o, Observation) else type(o).__name__ for o in out] == [
        "probe-0", "CaseError", "probe-2"]
    assert "broke alone too" in str(out[1]) and fake.alone == ["container-run-as-group-override"]
    assert fake.removed == ["sandbox-1"]
    refused = SharedFake(tmp_path, set(), refuse=True)
    assert [o.state for o in refused.run_shared(cases)] == ["alone"] * 3  # type: ignore[union-attr]
    assert refused.alone == names and refused.removed == []
    stopped = SharedFake(tmp_path, {"stop"})
    out = stopped.run_shared([cases[2], *cases[:2]])  # the run stops during the first: the others never start
    assert isinstance(out[0], Observation) and [str(o) for o in out[1:]] == ["the run is stopping"] * 2
    assert stopped.alone == [] and stopped.removed == ["sandbox-1"]

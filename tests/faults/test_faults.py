"""Every injected fault must be caught (never `pass`), every control must pass; real containerd 2.x and 1.7."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.core.model import Verdict
from tests.faults import proxy as cri_proxy
from tests.faults.harness import CONTROLS, FAULTS, KUBELET_CONTROLS, KUBELET_FAULTS, Fault, Lab

pytestmark = pytest.mark.runtime


def a_lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        leftovers = lab.close()
    assert not leftovers, "the fault runs left:\n" + "\n".join(leftovers)


@pytest.fixture(scope="module")
def lab(real_runtime: None) -> Iterator[Lab]:
    yield from a_lab()


@pytest.mark.parametrize("fault", CONTROLS, ids=lambda f: f.name)
def test_control_passes(lab: Lab, fault: Fault) -> None:
    outcome = lab.run(fault)
    assert outcome.caught, outcome.diff()
    assert set(outcome.verdicts.values()) == {"pass"}, outcome.diff()


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_fault_is_caught(lab: Lab, fault: Fault) -> None:
    outcome = lab.run(fault)
    assert outcome.caught, outcome.diff()
    assert "pass" not in {outcome.verdicts[p] for p in fault.allowed}, outcome.diff()
    assert not outcome.notes, outcome.diff()


@pytest.fixture(scope="module")
def kubelet_lab(k8s_bin_dir: Path) -> Iterator[Lab]:
    yield from a_lab()


@pytest.mark.parametrize("fault", KUBELET_CONTROLS + KUBELET_FAULTS, ids=lambda f: f.name)
def test_fault_behind_the_kubelet_is_caught(kubelet_lab: Lab, fault: Fault) -> None:
    """The lying CRI proxy between a real kubelet and the runtime: caught through the API alone."""
    outcome = kubelet_lab.run(fault)
    assert outcome.caught, outcome.diff()
    if fault.allowed:
        assert "pass" not in {outcome.verdicts[p] for p in fault.allowed}, outcome.diff()
    else:
        assert set(outcome.verdicts.values()) == {"pass"}, outcome.diff()


def test_a_broken_kind_of_a_shared_pod_errs_alone(kubelet_lab: Lab) -> None:
    """One container kind of a shared pod breaks on a real kubelet (its init probe exits printing nothing):
    exactly that case errs; the other kinds run again in pods of their own and pass."""
    fault = Fault("kubelet-silent-shared-init", "the init probe of a shared pod prints nothing", "kubelet", "2",
                  allowed={}, evidence={}, request_hooks={"CreateContainer": cri_proxy.silence_shared_init})
    results = kubelet_lab.shared_pod(fault)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and "probe-init" in str(errors[0]) and "without its probe block" in str(errors[0])
    assert [r.verdict for r in results if not isinstance(r, BaseException)] == [Verdict.PASS] * 3, results


def test_a_fault_that_passes_is_missed() -> None:
    """The judge of the faults itself: a `pass` on an affected case is reported as missed."""
    from tests.faults.harness import Outcome, assess

    fault = next(f for f in FAULTS if f.name == "proxy-strip-policy")
    outcome = assess(Outcome(fault, verdicts={"unset": "pass", "Merge": "pass", "Strict": "pass"},
                             details={"unset": "", "Merge": "", "Strict": ""}, exit_code=0))
    assert not outcome.caught
    assert outcome.line().startswith("missed")
    assert "Strict: verdict pass" in outcome.diff()

"""A broken runtime, a missing socket and interruptions: exit 2, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conformance.runtimes.process import processes_mentioning
from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers
from tests.support.suite import finish, interrupt_after, start_suite, wait_for_cases

pytestmark = pytest.mark.runtime


def daemon_pid(state_root: Path) -> int:
    for pid in processes_mentioning(str(state_root)):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if cmdline and cmdline[0].endswith(b"/containerd"):
            return pid
    raise AssertionError("containerd not found")


def test_runtime_killed_mid_run(real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    proc = start_suite(tmp_path, state_root, "--version", "2")
    wait_for_cases(proc, 3)
    os.kill(daemon_pid(state_root), signal.SIGKILL)
    out = finish(proc, 120)
    assert proc.returncode == 2, out
    doc = json.loads((tmp_path / "results.json").read_text())
    verdicts = [c["verdict"] for c in doc["cases"]]
    assert "error" in verdicts and "pass" in verdicts
    assert doc["summary"]["exit_code"] == 2
    assert leftovers(state_root, proc.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cleans_up(sig: signal.Signals, real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    interrupt_after(tmp_path, state_root, ("--version", "2"), 2, 10, sig)


def test_missing_socket(tmp_path: Path, state_root: Path) -> None:
    missing = tmp_path / "nowhere" / "cri.sock"
    res = subprocess.run([str(CLI), "run", "--cri-endpoint", f"unix://{missing}", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "SGP_STATE_DIR": str(state_root)},
                         timeout=120, cwd=PROJECT)
    assert res.returncode == 2
    assert str(missing) in res.stdout + res.stderr
    assert list(state_root.iterdir()) == []


def test_crio_without_bin_dir(tmp_path: Path, state_root: Path) -> None:
    res = subprocess.run([str(CLI), "run", "--runtime", "crio", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "SGP_STATE_DIR": str(state_root)},
                         timeout=120, cwd=PROJECT)
    assert res.returncode == 2
    assert "CRIO_BIN_DIR" in res.stdout + res.stderr
    assert list(state_root.iterdir()) == []


def gone_within(state_root: Path, pid: int, seconds: float) -> float:
    """How long until nothing the run `pid` started is left (AssertionError with the leftovers after `seconds`)."""
    started = time.monotonic()
    while leftovers(state_root, pid):
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{seconds:.0f}s after SIGKILL still left: {leftovers(state_root, pid)}")
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.parametrize("target", ["node", "local", "kind"])
def test_a_killed_run_leaves_nothing_running(target: str, request: pytest.FixtureRequest, tmp_path: Path,
                                             state_root: Path) -> None:
    """SIGKILL of the suite mid-run (a CI job's timeout, the OOM killer): its watchdog removes the runtime, its
    shims and containers, the control plane, the private Docker engine and its clusters, the namespaces,
    mounts, cgroups and state within seconds."""
    if target == "node":
        request.getfixturevalue("real_runtime")
        args: tuple[str, ...] = ("--version", "2")
    else:
        k8s = request.getfixturevalue("k8s_bin_dir")
        args = ("--target", target, "--k8s-bin-dir", str(k8s), "--version", "2", "--runtime", "containerd")
        if os.environ.get("ETCD_BIN"):
            args += ("--etcd-bin", os.environ["ETCD_BIN"])
    proc = start_suite(tmp_path, state_root, *args)
    wait_for_cases(proc, 3, timeout=900)
    proc.kill()
    proc.wait(10)
    took = gone_within(state_root, proc.pid, 30)
    print(f"{target}: everything gone {took:.1f}s after SIGKILL")

"""Running the suite as a user does, for the integration tests: a whole run, a run to interrupt or hold, the
arguments of a TARGET=local run, a crun that says it is too old."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers


def run_suite(results: Path, state_root: Path, *args: str, timeout: int = 600) -> tuple[int, str, int]:
    """(exit code, output, pid of the suite process)."""
    env = {**os.environ, "SGP_STATE_DIR": str(state_root)}
    proc = subprocess.Popen([str(CLI), "run", "--results-dir", str(results), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out, proc.pid


def old_crun(folder: Path) -> Path:
    """A folder with a `crun` that says it is 1.8.1 (Debian bookworm's), to show the refusal of the suite's own
    version check without depending on what the host has installed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crun").write_text("#!/bin/sh\necho 'crun version 1.8.1'\necho 'commit: 0'\n")
    (folder / "crun").chmod(0o755)
    return folder


def _interruptible() -> None:
    """In the child: Ctrl-C as a terminal delivers it, even when these tests were started in the background
    (a shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_suite(results: Path, state_root: Path, *args: str) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a run that hangs prints every thread's stack on SIGABRT (see finish())
    env = {**os.environ, "SGP_STATE_DIR": str(state_root), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen([str(CLI), "run", "--results-dir", str(results), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT, preexec_fn=_interruptible)


def wait_for_cases(proc: subprocess.Popen, count: int, timeout: float = 120) -> str:
    """Read progress lines until `count` cases are done."""
    seen, done = [], 0
    deadline = time.monotonic() + timeout
    while done < count and time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        if line.startswith("["):
            done += 1
    assert done >= count, "".join(seen)
    return "".join(seen)


def finish(proc: subprocess.Popen, timeout: float) -> str:
    """The run's remaining output once it exits; if it is still running after `timeout`, its threads' stacks."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out = proc.communicate()[0]
        raise AssertionError(f"still running {timeout:.0f}s after the signal; its threads:\n{out[-6000:]}") from None


def interrupt_after(results: Path, state_root: Path, args: tuple[str, ...], cases: int, within: float,
                    sig: signal.Signals = signal.SIGINT) -> None:
    """Start a run, signal it after `cases` cases: it stops within `within` s, exit 2, nothing left behind."""
    proc = start_suite(results, state_root, *args)
    wait_for_cases(proc, cases)
    sent = time.monotonic()
    proc.send_signal(sig)
    out = finish(proc, 60)
    assert time.monotonic() - sent < within, out
    assert proc.returncode == 2, out
    assert re.search(r"^summary: interrupted after \d+ of \d+ cases \(\d+ did not run\): ", out, re.M), out[-3000:]
    assert leftovers(state_root, proc.pid) == []


def release(proc: subprocess.Popen, state_root: Path) -> tuple[str, float]:
    """Ctrl-C a held run: it removes everything and exits with the run's verdict. (output, seconds to exit)"""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out = finish(proc, 600)
    except AssertionError as hung:  # its threads' stacks; the leftover check below then says what it left
        out = str(hung)
    took = time.monotonic() - sent
    assert leftovers(state_root, proc.pid) == [], out[-3000:]
    return out, took


def local_args(k8s_bin_dir: Path, *runtime: str) -> list[str]:
    etcd = ["--etcd-bin", os.environ["ETCD_BIN"]] if os.environ.get("ETCD_BIN") else []
    return ["--target", "local", "--k8s-bin-dir", str(k8s_bin_dir), *etcd, *runtime]

"""What a run that died left is removed by the next run or `--cleanup`; a live run's things are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance.runtimes import reaper
from tests.conftest import CLI, PROJECT


def holder(folder: Path) -> subprocess.Popen:
    """A process whose command line names `folder`, as the suite's daemons and namespace holders do."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(folder)])


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_what_a_dead_run_left_goes_and_a_live_run_stays(tmp_path: Path) -> None:
    dead, live_owner = dead_pid(), holder(tmp_path / "none")
    left = tmp_path / f"containerd-2.1.9-{dead}-a1b2c3"
    mine = tmp_path / f"kind-{live_owner.pid}-d4e5f6"
    for folder in (left, mine):
        (folder / "run").mkdir(parents=True)
    (tmp_path / f"worker-context-{dead}.json").write_text("{}")
    (tmp_path / "unrelated").mkdir()
    daemon, alive_daemon = holder(left / "run"), holder(mine / "run")
    try:
        assert reaper.dead_runs(tmp_path) == [dead]
        removed = reaper.reap_dead(tmp_path)
        assert daemon.wait(5) is not None
        assert any(f"process {daemon.pid}" in r for r in removed) and not left.exists()
        assert not (tmp_path / f"worker-context-{dead}.json").exists()
        assert mine.is_dir() and alive_daemon.poll() is None and (tmp_path / "unrelated").is_dir()
    finally:
        for proc in (live_owner, daemon, alive_daemon):
            proc.kill()
            proc.wait()


def test_cleanup_works_on_every_target(tmp_path: Path) -> None:
    dead = dead_pid()
    (tmp_path / f"crio-1.37.0-{dead}-abcdef").mkdir()
    env = {**os.environ, "SGP_STATE_DIR": str(tmp_path)}
    for target in ("node", "local", "kind"):
        out = subprocess.run([str(CLI), "run", "--target", target, "--cleanup"], capture_output=True, text=True,
                             env=env, cwd=PROJECT, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "runs still alive untouched" in out.stdout
    assert not (tmp_path / f"crio-1.37.0-{dead}-abcdef").exists()


def test_the_watchdog_reaps_once_its_run_is_gone(tmp_path: Path) -> None:
    """The watchdog of a process that dies removes what that process's run left, then exits."""
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    folder = tmp_path / f"crio-1.37.0-{run.pid}-abcdef"
    folder.mkdir()
    daemon = holder(folder)
    watchdog = subprocess.Popen([sys.executable, "-m", "conformance.runtimes.reaper", "watch", str(run.pid),
                                 str(tmp_path)], cwd=PROJECT)
    try:
        assert watchdog.poll() is None
        run.kill()
        run.wait()
        assert watchdog.wait(10) == 0
        assert daemon.wait(5) is not None and not folder.exists()
    finally:
        for proc in (run, daemon, watchdog):
            proc.kill()
            proc.wait()


def test_a_dead_run_hands_back_the_controllers_it_enabled_at_the_cgroup_v2_root(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """SIGKILLed after runc (or the kubelet's cgroup root) enabled controllers at the root: whoever reaps the run
    disables those its record says the root did not have, as the run's own end would have."""
    root, state = tmp_path / "cgroup", tmp_path / "state"
    root.mkdir()
    control = root / "cgroup.subtree_control"
    control.write_text("memory pids\n")
    dead = dead_pid()
    record = reaper.record_host(state, dead, root, tmp_path / "no-modules")
    assert record is not None and reaper.owner(record.name) == dead
    control.write_text("cpu cpuset memory pids\n")  # what runc enabled on the way to the run's cgroups
    real_write = Path.write_text

    def kernel(self: Path, text: str, *args, **kwargs) -> int:  # `-x` takes x out, as the kernel does
        if self != control:
            return real_write(self, text, *args, **kwargs)
        return real_write(self, " ".join(sorted(set(control.read_text().split()) - {text.lstrip("-")})))

    monkeypatch.setattr(Path, "write_text", kernel)
    removed = reaper.reap(state, dead, root)
    assert set(control.read_text().split()) == {"memory", "pids"}
    assert "controllers cpu cpuset at the cgroup root (handed back)" in removed and not record.exists()
    # v1/hybrid and no loadable modules: nothing to record
    assert reaper.record_host(state, dead, tmp_path / "v1", tmp_path / "no-modules") is None


def test_a_run_that_ends_by_itself_leaves_no_record(tmp_path: Path) -> None:
    watchdog = reaper.Watchdog(tmp_path)
    watchdog.start()
    watchdog.stop()
    assert list(tmp_path.iterdir()) == []

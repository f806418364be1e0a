"""Start a runtime daemon privately and remove every trace of it afterwards.

The daemon runs in its own mount namespace with a private folder bind-mounted over /run,
so runtimes of several versions run side by side and nothing lands in the host's /run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from conformance.errors import ProvisionError

CGROUP_ROOT = Path("/sys/fs/cgroup")
# $0 is a label, $1 the private /run; the rest is the daemon's argv. No scenario data.
PRIVATE_RUN = 'mount --bind "$1" /run && shift && exec "$@"'


class PrivateDaemon:
    """One daemon process in a private mount namespace, with a state folder it owns."""

    def __init__(self, name: str, state_dir: Path, argv: Sequence[str], env: dict[str, str],
                 cgroup_parent: str):
        self.name = name
        self.state_dir = state_dir
        self.argv = list(argv)
        self.env = env
        self.cgroup_parent = cgroup_parent
        self.log_path = state_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Start the daemon and wait until `ready()` is true; fail early if it exits."""
        if not shutil.which("unshare"):
            raise ProvisionError("unshare (util-linux) is needed to start a private runtime")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", PRIVATE_RUN,
                f"sgp-{self.name}", str(self.run_dir), *self.argv]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProvisionError(f"{self.name} exited with {self.proc.returncode} while starting:\n"
                                     + self.log_tail())
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.02)
        raise ProvisionError(f"{self.name} was not ready after {timeout:.0f}s:\n" + self.log_tail())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self, timeout: float) -> bool:
        """SIGTERM the daemon alone (its shims and containers keep running) and wait for it to exit;
        close its log. False if it is still running after `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        if getattr(self, "_log", None):
            self._log.close()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon, SIGKILL if it lingers, then remove everything it left."""
        if not self.terminate(timeout):
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)
            self._log.close()
        kill_processes_mentioning(str(self.state_dir))
        remove_cgroups(self.cgroup_parent)
        unmount_under(self.state_dir)

    def remove_state(self, keep_log_to: Path | None = None) -> None:
        if keep_log_to is not None and self.log_path.exists():
            keep_log_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, keep_log_to)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (shims name the daemon's socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def kill_processes_mentioning(text: str) -> None:
    for pid in processes_mentioning(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory named `parent` under each mounted hierarchy."""
    name = parent.strip("/")
    if not name:
        return []
    dirs = []
    for hierarchy in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())]:
        candidate = hierarchy / name
        if candidate.is_dir():
            dirs.append(candidate)
    return dirs


def remove_cgroups(parent: str, timeout: float = 5.0) -> None:
    """Kill what is left in the cgroup subtrees named `parent`, then rmdir them deepest first."""
    deadline = time.monotonic() + timeout
    for top in cgroup_dirs(parent):
        subdirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*subdirs, top]:
            while True:
                try:
                    for pid in (d / "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)


def mounts_under(path: Path) -> list[str]:
    """Mount points in the host namespace at or below `path`."""
    prefix = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


def unmount_under(path: Path) -> None:
    for point in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)

"""Start daemons privately and remove every trace of them afterwards.

Daemons run in a private mount namespace (MountNamespace) that outlives any one of them: a holder
process keeps it, private folders are bind-mounted over /run and /var/lib inside it, and every daemon
enters it with nsenter. A runtime restarted in the same namespace finds the mounts it made before (CRI-O's
namespace pins, container root filesystems), as after a restart on a real node, and a kubelet in
the same namespace sees the runtime's mounts and the runtime sees the kubelet's volumes. Nothing
lands in the host's /run; runtimes of several versions run side by side.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from conformance.errors import CommandError, ProvisionError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLONE_NEWNET = 0x40000000
READY = "sgp-namespace-ready"
# No scenario data reaches these scripts. $0 is a label, $1 the private /run, $2 the private /var/lib (CNI's
# libcni caches its results in /var/lib/cni whatever the runtime's settings), $3 a Python: the holder sleeps as
# `python -c ... <private /run>`, so its command line names the state folder (`sleep` would not) and the
# leftover check finds a holder left behind.
SLEEP = "import signal; signal.pause()"
HOLDER = f'mount --bind "$1" /run && mount --bind "$2" /var/lib && echo {READY} && exec "$3" -c "{SLEEP}" "$1"'
# with a private network namespace too: loopback up first (`ip` from iproute2)
NET_HOLDER = f'ip link set lo up && {HOLDER}'

class MountNamespace:
    """A private mount namespace (and, with `net`, a private network namespace with only `lo`) held open by a
    sleeping process; mounts made in it stay in it, links, routes and firewall rules made in it die with it."""

    def __init__(self, state_dir: Path, label: str = "sgp", net: bool = False):
        self.state_dir = state_dir
        self.label = label
        self.net = net
        self.run_dir = state_dir / "run"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise ProvisionError("the private mount namespace is gone (its holder process exited)")
        return self.proc.pid

    def start(self) -> None:
        for tool in ("unshare", "nsenter"):
            if not shutil.which(tool):
                raise ProvisionError(f"{tool} (util-linux) is needed to run a private runtime")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        var_lib = self.state_dir / "var-lib"
        var_lib.mkdir(parents=True, exist_ok=True)
        argv = ["unshare", "--mount", *(["--net"] if self.net else []), "--propagation", "private", "--",
                "/bin/sh", "-c", NET_HOLDER if self.net else HOLDER, f"{self.label}-ns", str(self.run_dir),
                str(var_lib), sys.executable]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # the holder prints READY once its mounts are in place
        if line != READY:
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise ProvisionError(f"could not make a private mount namespace: {(line + ' ' + err).strip()}")

    def enter(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["nsenter", "-t", str(self.pid), "-m", *(["-n"] if self.net else []), "--", *argv]

    def enter_network(self, argv: Sequence[str]) -> list[str]:
        """`argv` run in the namespace's network only (the host's file system, so every path means the same)."""
        return ["nsenter", "-t", str(self.pid), "-n", "--", *argv] if self.net else list(argv)

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> str:
        """Run a short command inside the namespace (e.g. a mount); CommandError if it fails."""
        full = self.enter(argv)
        res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
        if res.returncode != 0:
            raise CommandError(full, res.returncode, res.stdout, res.stderr)
        return res.stdout

    def bind(self, source: Path, target: str) -> None:
        """Bind-mount `source` over `target` inside the namespace only."""
        self.run(["mount", "--bind", str(source), target])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """End the holder; the namespace and every mount in it go with the last process in it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if stream:
                stream.close()


def join_network(path: str) -> Callable[[], None]:
    """Move the calling thread into the network namespace at `path` (/proc/<pid>/ns/net); threads it starts
    afterwards are born there. Returns the function that moves it back to where it was."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            os.close(home)
            raise ProvisionError(f"cannot join the network namespace {path}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(target)

    def back() -> None:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)

    return back


class PrivateDaemon:
    """One daemon process in a private mount namespace, with a state folder it owns."""

    def __init__(self, name: str, state_dir: Path, argv: Sequence[str], env: dict[str, str],
                 cgroup_parent: str, namespace: MountNamespace | None = None):
        self.name = name
        self.state_dir = state_dir
        self.argv = list(argv)
        self.env = env
        self.cgroup_parent = cgroup_parent
        self.namespace = namespace or MountNamespace(state_dir, f"sgp-{name}")
        self.owns_namespace = namespace is None
        self.log_path = state_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.root_controllers: set[str] | None = None  # the cgroup v2 root's, as the first start found them

    @property
    def run_dir(self) -> Path:
        return self.namespace.run_dir

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Start the daemon (and its namespace, the first time) and wait until `ready()` is true;
        fail early if it exits."""
        if not self.namespace.alive():
            self.namespace.start()
        if self.cgroup_parent and self.root_controllers is None:
            self.root_controllers = subtree_controllers()
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in terminate()
        self._log = log
        self.proc = subprocess.Popen(self.namespace.enter(self.argv), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
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
        """SIGTERM the daemon alone (its shims, monitors and containers keep running, and so does the
        namespace) and wait for it to exit; close its log. False if it is still running after `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        if self._log is not None:
            self._log.close()
            self._log = None
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon, SIGKILL if it lingers, then remove everything it left."""
        if not self.terminate(timeout):
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)
            self.terminate(0)
        kill_processes_mentioning(str(self.state_dir))
        if self.owns_namespace:
            self.namespace.stop()
        remove_cgroups(self.cgroup_parent)
        restore_subtree(self.root_controllers)
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


def kill_processes_mentioning(text: str) -> list[int]:
    """SIGKILL every process whose command line contains `text`; the ones found."""
    found = processes_mentioning(text)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


def cgroup_hierarchies(mountinfo: str | None = None) -> list[Path]:
    """The cgroup file systems mounted at or below the cgroup root, as /proc/self/mountinfo lists them: the root
    alone on a cgroup v2 host (its sub-folders are cgroups, not hierarchies), each v1 controller's hierarchy and
    a hybrid host's cgroup2 otherwise."""
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    found: list[Path] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        fstype = fields[fields.index("-", 6) + 1]
        point = Path(fields[4].replace("\\040", " "))
        if fstype in ("cgroup", "cgroup2") and (point == CGROUP_ROOT or CGROUP_ROOT in point.parents) \
                and point not in found:
            found.append(point)
    return sorted(found, key=lambda p: (p != CGROUP_ROOT, str(p)))


def own_cgroups() -> dict[str, str]:
    """This process's cgroup in each hierarchy, keyed by the hierarchy's folder name ('' = the cgroup2 root)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        names = [c.removeprefix("name=") for c in controllers.split(",")] if controllers else ["", "unified"]
        for key in (*names, ",".join(names)):
            own[key] = path
    return own


def cgroup_parents() -> list[Path]:
    """Where a cgroup parent may stand in each mounted hierarchy: at its root, and below this process's own
    cgroup there (a daemon given a relative cgroup parent, as dockerd is, nests under its own cgroup)."""
    own = own_cgroups()
    tops = []
    for hierarchy in cgroup_hierarchies():
        mine = hierarchy / own.get("" if hierarchy == CGROUP_ROOT else hierarchy.name, "/").strip("/")
        tops += [hierarchy] if mine == hierarchy else [hierarchy, mine]
    return tops


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory named `parent` in each mounted hierarchy (see cgroup_parents)."""
    name = parent.strip("/")
    if not name:
        return []
    return [top / name for top in cgroup_parents() if (top / name).is_dir()]


def subtree_controllers(root: Path = CGROUP_ROOT) -> set[str] | None:
    """The controllers a cgroup v2 root hands to its children (cgroup.subtree_control); None on v1/hybrid."""
    try:
        return set((root / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None


def restore_subtree(before: set[str] | None, root: Path = CGROUP_ROOT) -> list[str]:
    """Hand back the cgroup v2 root as a run found it: runc enables every controller on the way to a cgroup it
    makes, so the controllers enabled since (`before`) are disabled again; one still in use below (another run,
    a systemd unit) is refused by the kernel (EBUSY) and stays. The ones disabled."""
    now = subtree_controllers(root)
    if before is None or now is None:
        return []
    done = []
    for controller in sorted(now - before):
        try:
            (root / "cgroup.subtree_control").write_text(f"-{controller}")
            done.append(controller)
        except OSError:
            pass
    return done


def enable_controllers(cgroup: Path, wanted: Sequence[str], root: Path = CGROUP_ROOT) -> list[str]:
    """On cgroup v2, hand `wanted` controllers (those the root has) down from the root to `cgroup`, as a
    kubelet's cgroup root needs them (runc does the same on the way to a container's cgroup); the ones handed.
    restore_subtree takes them back at the root afterwards. Nothing on v1."""
    try:
        available = set((root / "cgroup.controllers").read_text().split())
    except OSError:
        return []
    handed = [c for c in wanted if c in available]
    parent = cgroup.parent
    chain = [*reversed([parent, *parent.parents][: len(parent.relative_to(root).parts) + 1])]
    for folder in chain:
        if handed:
            (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in handed))
    return handed


def _thaw(cgroup: Path) -> None:
    """A cgroup left frozen (a runtime killed inside its freeze window) keeps its members unkillable: v1's
    freezer.state FROZEN, v2's cgroup.freeze 1."""
    for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        state = cgroup / name
        try:
            if state.read_text().strip() != thawed:
                state.write_text(thawed)
        except OSError:
            pass


def _kill_members(cgroup: Path) -> None:
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_cgroups(parent: str, timeout: float = 10.0) -> None:
    """Kill what is left in the cgroup subtrees named `parent`, then rmdir them deepest first (a KEEP=1 cluster
    leaves hundreds of pods there: everything is killed first, then the killed get `timeout` to exit)."""
    dirs = []
    for top in cgroup_dirs(parent):
        dirs += [Path(root) for root, _, _ in os.walk(top)]
    dirs.sort(key=lambda p: len(p.parts), reverse=True)
    for d in dirs:
        _thaw(d)
        _kill_members(d)
    deadline = time.monotonic() + timeout
    for d in dirs:
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                _kill_members(d)
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

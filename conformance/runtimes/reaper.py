"""What a run leaves when it dies without its own cleanup (SIGKILL, the OOM killer, a CI job's timeout).

Everything a run starts carries its process id in a name: its state folders under the state root
(`<what>-<pid>-<hex>`, every daemon's command line names one, the namespace holders' too) and its cgroups
(`sgpconf-<what>-<pid>-<hex>`). So what a run left can be found, and told from what a live run owns:

- a watchdog (`python -m conformance.runtimes.reaper watch <pid> <state root>`), in a session of its own,
  waits on the run's process (a pidfd) and, the moment it dies, kills every process naming one of its state
  folders, the members of its cgroups, unmounts what lies under those folders and removes them all;
- the next run, and `sgp-conformance run --cleanup` on any target, do the same for every run whose process
  is gone, and touch nothing of a run still alive.

A run also changes the host in two ways no name carries: on cgroup v2 the root's `cgroup.subtree_control`
(runc and the kubelet's cgroup root enable controllers there), and on a modular kernel the loaded modules
(conformance/runtimes/kmodules.py). The watchdog records both as the run found them (`host-<pid>-<hex>.json` in
the state root); whoever reaps the run hands back the controllers enabled since and unloads the modules loaded
since that nothing uses, as the run itself does at its end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.runtimes import kmodules
from conformance.runtimes.process import (
    CGROUP_ROOT,
    cgroup_parents,
    kill_processes_mentioning,
    remove_cgroups,
    restore_subtree,
    subtree_controllers,
    unmount_under,
)

if TYPE_CHECKING:
    from conformance.core.catalogue import Catalogue
    from conformance.core.options import Options

OWNED = re.compile(r"^(?:sgpconf-)?[a-z][\w.+-]*?-(\d+)-[0-9a-f]{6,8}(?:\.json)?$")
WORKER_CONTEXT = re.compile(r"^worker-context-(\d+)\.json$")
HOST_RECORD = "host"  # <state root>/host-<pid>-<hex>.json: the v2 root's subtree_control and the modules at the start


def owner(name: str) -> int | None:
    """The pid in a state folder's or cgroup's name (None: not one of a run's)."""
    found = OWNED.match(name) or WORKER_CONTEXT.match(name)
    return int(found.group(1)) if found else None


def alive(pid: int) -> bool:
    """A process with that id runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def owned_by(state_root: Path, pid: int) -> tuple[list[Path], list[str]]:
    """The state folders (and files) and cgroup names of the run `pid`."""
    paths = sorted(p for p in state_root.iterdir() if owner(p.name) == pid) if state_root.is_dir() else []
    cgroups = sorted({c.name for top in cgroup_parents() for c in top.glob(f"sgpconf-*-{pid}-*")
                      if c.is_dir() and owner(c.name) == pid})
    return paths, cgroups


def record_host(state_root: Path, pid: int, root: Path = CGROUP_ROOT, modules: Path = kmodules.PROC_MODULES
                ) -> Path | None:
    """Write what the run `pid` finds of the host that no name of its carries: the cgroup v2 root's
    subtree_control and the loaded kernel modules (None where there is neither: cgroup v1/hybrid, no modules)."""
    controllers, loaded = subtree_controllers(root), kmodules.loaded(modules)
    if controllers is None and loaded is None:
        return None
    state_root.mkdir(parents=True, exist_ok=True)
    path = state_root / f"{HOST_RECORD}-{pid}-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps({"subtree_control": None if controllers is None else sorted(controllers),
                                "modules": None if loaded is None else sorted(loaded)}) + "\n")
    return path


def recorded(paths: list[Path], field: str) -> set[str] | None:
    """A field of the host as the run found it ("subtree_control", "modules"), from its records among `paths`
    (None: no record of it)."""
    found: set[str] | None = None
    for path in paths:
        if not path.name.startswith(f"{HOST_RECORD}-") or not path.is_file():
            continue
        try:
            value = json.loads(path.read_text())[field]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if value is not None:
            found = set(value) if found is None else found & set(value)
    return found


def reap(state_root: Path, pid: int, root: Path = CGROUP_ROOT) -> list[str]:
    """Remove everything the run `pid` left: its processes first (so nothing recreates what goes next), then
    its cgroups' members and folders, the controllers it enabled at the cgroup v2 root (those still in use
    below stay), its mounts and its state, then the kernel modules loaded since it started that nothing uses.
    What was removed, for the report."""
    paths, cgroups = owned_by(state_root, pid)
    before, modules = recorded(paths, "subtree_control"), recorded(paths, "modules")
    done = []
    for path in paths:
        if path.is_dir():
            done += [f"process {p} ({path.name})" for p in kill_processes_mentioning(str(path))]
    for name in cgroups:
        remove_cgroups(name)
        done.append(f"cgroup {name}")
    handed = restore_subtree(before, root)
    if handed:
        done.append(f"controllers {' '.join(handed)} at the cgroup root (handed back)")
    for path in paths:
        if path.is_dir():
            unmount_under(path)
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        done.append(f"state {path}")
    done += [f"kernel module {name} (loaded by the run, unused)" for name in kmodules.unload_since(modules)]
    return done


def dead_runs(state_root: Path) -> list[int]:
    """Runs that left something and whose process is gone."""
    pids = {owner(p.name) for p in state_root.iterdir()} if state_root.is_dir() else set()
    pids |= {owner(c.name) for top in cgroup_parents() for c in top.glob("sgpconf-*") if c.is_dir()}
    return sorted(p for p in pids if p is not None and p != os.getpid() and not alive(p))


def reap_dead(state_root: Path) -> list[str]:
    """Everything every dead run left under `state_root` and in the cgroups; nothing of a live run."""
    done = []
    for pid in dead_runs(state_root):
        done += reap(state_root, pid)
    return done


class Watchdog:
    """A process that outlives the run only to clean up after it: started before anything else, stopped
    (without reaping) once the run has removed everything itself."""

    def __init__(self, state_root: Path):
        self.state_root = state_root
        self.proc: subprocess.Popen | None = None
        self.record: Path | None = None

    def start(self) -> None:
        self.state_root.mkdir(parents=True, exist_ok=True)
        self.record = record_host(self.state_root, os.getpid())
        argv = [sys.executable, "-m", "conformance.runtimes.reaper", "watch", str(os.getpid()), str(self.state_root)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> list[str]:
        """End the watch once the run removed what it started; the kernel modules loaded since its start that
        nothing uses go too (the engine's, the nodes' netfilter). The modules unloaded."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None
        unloaded: list[str] = []
        if self.record is not None:
            unloaded = kmodules.unload_since(recorded([self.record], "modules"))
            self.record.unlink(missing_ok=True)
            self.record = None
        return unloaded


def watch(pid: int, state_root: Path) -> int:
    """Wait for `pid` to die, then reap what it left. SIGTERM (the run ended by itself) ends the wait quietly."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the run's process group, not this one
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = None
    if fd is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(60_000):
            pass
    time.sleep(0.2)  # the dead run's children notice their parent is gone; then nothing of it may run on
    reap(state_root, pid)
    return 0


def cleanup(state_root: Path) -> int:
    """`sgp-conformance run --cleanup` on this host: what dead runs left, removed and listed; exit 0."""
    done = reap_dead(state_root)
    for line in done:
        print(f"removed {line}")
    print(f"cleanup: {len(done)} thing(s) left by runs that are gone removed under {state_root} and the cgroups; "
          "runs still alive untouched")
    return 0


class HostLeftovers:
    """The plan and cleanup of a session class (targets/protocol.py) whose target has no plan of its own (DRY_RUN
    runs the cases) and whose --cleanup removes what dead runs left on this host: node, local and kind."""

    @classmethod
    def plan(cls, opts: Options, catalogue: Catalogue) -> str | None:
        """DRY_RUN=1: no plan (None): the run is refused."""
        return None

    @classmethod
    def cleanup(cls, opts: Options) -> int:
        """--cleanup: remove what runs that died left on this host."""
        return cleanup(opts.state_dir)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "watch":
        return watch(int(argv[1]), Path(argv[2]))
    print("usage: python -m conformance.runtimes.reaper watch <pid> <state root>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The private Docker engine's OCI runtime: runc, after three edits to what it is asked to run.

- Capabilities outside this machine's bounding set are dropped (Docker 20.10's --privileged asks for all of
  them, CAP_SYS_RESOURCE included, and runc fails with "unable to apply caps: operation not permitted").
- Host-wide kernel tunables a privileged kind node would otherwise write (systemd raises fs.file-max and
  fs.nr_open as PID 1, its sysctl service sets fs.protected_*, the kubelet sets vm.overcommit_memory and
  kernel.panic*) are made read-only in the container; the node's own entrypoint binds the values the kubelet
  expects over the kubelet's ones.
- A proc mount with nothing over it is added at VISIBLE_PROC: the kernel lets a process in a user namespace
  (a kind node's `hostUsers: false` pod) mount a fresh proc only where a proc is already fully visible, and
  the read-only tunables above are files mounted over /proc/sys ("mount 'proc' to 'proc': Operation not
  permitted"). Nothing in the node uses that path; the tunables under /proc stay read-only.
- The host's virtual consoles (/dev/ttyN, /dev/vcs*) are not given to the container: a getty or logind
  opening one allocates a console on the host.

Run as `python -m conformance.targets.kind.capfilter <runc arguments>`; the real runc is SGP_CAPFILTER_RUNC.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

# capability numbers (linux/capability.h)
NAMES = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
         "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
         "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
         "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
         "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
         "CHECKPOINT_RESTORE")
READ_ONLY = ("/proc/sys/fs/file-max", "/proc/sys/fs/nr_open", "/proc/sys/fs/protected_fifos",
             "/proc/sys/fs/protected_hardlinks", "/proc/sys/fs/protected_regular", "/proc/sys/fs/protected_symlinks",
             "/proc/sys/vm/overcommit_memory", "/proc/sys/vm/panic_on_oom", "/proc/sys/kernel/panic",
             "/proc/sys/kernel/panic_on_oops", "/proc/sys/kernel/keys/root_maxkeys",
             "/proc/sys/kernel/keys/root_maxbytes")
VISIBLE_PROC = {"destination": "/run/sgp-visible-proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"]}
HOST_CONSOLES = re.compile(r"/dev/(tty\d+|vcs.*)")
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
GLOBAL_FLAGS_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def bounding_set(status: str) -> set[str]:
    """CAP_* names in the CapBnd line of /proc/self/status."""
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapBnd:"))
    return {f"CAP_{name}" for bit, name in enumerate(NAMES) if mask >> bit & 1}


def filter_caps(caps: dict | None, allowed: set[str]) -> None:
    for key in CAP_SETS:
        if caps and caps.get(key):
            caps[key] = [c for c in caps[key] if c in allowed]


def edit_bundle(spec: dict, allowed: set[str]) -> dict:
    """A container's config.json as this machine can run it without touching the host."""
    filter_caps(spec.get("process", {}).get("capabilities"), allowed)
    linux = spec.setdefault("linux", {})
    paths = linux.setdefault("readonlyPaths", [])
    added = [p for p in READ_ONLY if p not in paths and os.path.exists(p)]
    paths += added
    mounts = spec.setdefault("mounts", [])
    if added and VISIBLE_PROC not in mounts:
        mounts.append(dict(VISIBLE_PROC))
    linux["devices"] = [d for d in linux.get("devices") or [] if not HOST_CONSOLES.fullmatch(d.get("path", ""))]
    return spec


def subcommand(args: list[str]) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in GLOBAL_FLAGS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def rewrite(path: Path, edit: Callable[[dict], object]) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    tmp = path.with_name(path.name + ".sgp-tmp")
    tmp.write_text(json.dumps(doc))
    tmp.rename(path)


def main(args: list[str]) -> None:
    allowed = bounding_set(Path("/proc/self/status").read_text())
    sub = subcommand(args)
    try:
        if sub in ("create", "run"):
            bundle = Path(option(args, "--bundle", "-b") or os.getcwd())
            rewrite(bundle / "config.json", lambda spec: edit_bundle(spec, allowed))
        elif sub == "exec" and (process := option(args, "--process", "-p")):
            rewrite(Path(process), lambda proc: filter_caps(proc.get("capabilities"), allowed))
    except (OSError, ValueError, StopIteration) as exc:
        print(f"sgp-capfilter: {exc}", file=sys.stderr)
    runc = os.environ.get("SGP_CAPFILTER_RUNC", "runc")
    os.execvp(runc, [runc, *args])  # noqa: S606 - this process becomes the real runc


if __name__ == "__main__":
    main(sys.argv[1:])

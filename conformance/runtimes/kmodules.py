"""Kernel modules a run caused to load, and handing them back.

A private Docker engine, kind's nodes and the kubelets inside them load modules into the host's kernel on
demand (on a modular kernel: `bridge`, `overlay`, netfilter's `nf_conntrack` and `nf_nat` for Docker's
resolver in a user-defined network). The run notes the loaded modules when it starts; at its end (or its
reaper's, if it died) those loaded since and used by nothing are unloaded, dependents first. One still in use
(another engine on the host took it meanwhile) stays: the kernel refuses. A kernel without loadable modules
has no /proc/modules: nothing to do.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PROC_MODULES = Path("/proc/modules")


def loaded(path: Path = PROC_MODULES) -> dict[str, int] | None:
    """Each loaded module and how many users it has; None where the kernel has no loadable modules."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    found = {}
    for line in lines:
        fields = line.split()
        if len(fields) >= 5 and fields[4] == "Live":
            found[fields[0]] = int(fields[2]) if fields[2].isdigit() else 1
    return found


def unload_since(before: set[str] | None, path: Path = PROC_MODULES, rmmod: str | None = None) -> list[str]:
    """Unload the modules loaded since `before` that nothing uses, repeating while one more comes free (a
    dependency's user goes first); the ones unloaded. Nothing when `before` is None (no record) or rmmod is
    missing."""
    rmmod = rmmod or shutil.which("rmmod") or shutil.which("rmmod", path="/usr/sbin:/sbin")
    if before is None or rmmod is None:
        return []
    done: list[str] = []
    tried: set[str] = set()
    while True:
        now = loaded(path) or {}
        free = sorted(name for name, users in now.items() if name not in before | tried and users == 0)
        if not free:
            return done
        tried.update(free)
        done += [name for name in free
                 if subprocess.run([rmmod, name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, check=False, timeout=30).returncode == 0]

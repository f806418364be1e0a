"""The leftover check: nothing the suite started may outlive it."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes.process import CGROUP_ROOT, mounts_under, own_cgroups, processes_mentioning


def sgp_cgroups(suite_pid: int) -> list[Path]:
    """cgroup dirs of runtimes started by the suite process `suite_pid` (their names carry it), at each
    hierarchy's root and below this process's own cgroup there (where dockerd nests its cgroup parent)."""
    found = []
    own = own_cgroups()
    for hierarchy in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())]:
        mine = hierarchy / own.get("" if hierarchy == CGROUP_ROOT else hierarchy.name, "/").strip("/")
        for top in {hierarchy, mine}:
            found += [p for p in top.glob(f"sgpconf-*-{suite_pid}-*") if p.is_dir()]
    return found


def leftovers(state_root: Path, suite_pid: int) -> list[str]:
    """Processes, mounts, cgroup dirs and state dirs left by a run under `state_root`."""
    problems = [f"process {pid} mentions {state_root}" for pid in processes_mentioning(str(state_root))]
    problems += [f"mount {m}" for m in mounts_under(state_root)]
    problems += [f"cgroup dir {c}" for c in sgp_cgroups(suite_pid)]
    if state_root.exists():
        problems += [f"state left: {p}" for p in state_root.iterdir()]
    return problems

"""The leftover check: nothing the suite started may outlive it."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes.process import cgroup_parents, mounts_under, processes_mentioning


def sgp_cgroups(suite_pid: int) -> list[Path]:
    """cgroup dirs of runtimes started by the suite process `suite_pid` (their names carry it), wherever a
    cgroup parent may stand (conformance.runtimes.process.cgroup_parents)."""
    return [p for top in cgroup_parents() for p in top.glob(f"sgpconf-*-{suite_pid}-*") if p.is_dir()]


def leftovers(state_root: Path, suite_pid: int) -> list[str]:
    """Processes, mounts, cgroup dirs and state dirs left by a run under `state_root`."""
    problems = [f"process {pid} mentions {state_root}" for pid in processes_mentioning(str(state_root))]
    problems += [f"mount {m}" for m in mounts_under(state_root)]
    problems += [f"cgroup dir {c}" for c in sgp_cgroups(suite_pid)]
    if state_root.exists():
        problems += [f"state left: {p}" for p in state_root.iterdir()]
    return problems

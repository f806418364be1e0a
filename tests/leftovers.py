"""The leftover check: nothing the suite started may outlive it."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes.process import CGROUP_ROOT, mounts_under, processes_mentioning


def sgp_cgroups(suite_pid: int) -> list[Path]:
    """cgroup dirs of runtimes started by the suite process `suite_pid` (their names carry it)."""
    found = []
    for hierarchy in [CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())]:
        found += [p for p in hierarchy.glob(f"sgpconf-*-{suite_pid}-*") if p.is_dir()]
    return found


def leftovers(state_root: Path, suite_pid: int) -> list[str]:
    """Processes, mounts, cgroup dirs and state dirs left by a run under `state_root`."""
    problems = [f"process {pid} mentions {state_root}" for pid in processes_mentioning(str(state_root))]
    problems += [f"mount {m}" for m in mounts_under(state_root)]
    problems += [f"cgroup dir {c}" for c in sgp_cgroups(suite_pid)]
    if state_root.exists():
        problems += [f"state left: {p}" for p in state_root.iterdir()]
    return problems


HOST_KUBERNETES_PATHS = ("/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/etc/kubernetes",
                         "/usr/libexec/kubernetes", "/var/run/kubernetes")
HOST_TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                 "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")


def host_state() -> dict[str, str]:
    """What a kubelet would change on the host: its hard-wired paths (present or not) and kernel tunables."""
    state = {path: str(Path(path).exists()) for path in HOST_KUBERNETES_PATHS}
    for name in HOST_TUNABLES:
        try:
            state[name] = Path("/proc/sys", name).read_text().strip()
        except OSError:
            state[name] = "(absent)"
    return state

"""The host snapshot: every place a runtime, a kubelet, an image tool or a Docker engine writes by default,
whatever it is told (the cgroup v2 root's subtree_control and the loaded kernel modules too), recorded before
a real run and compared after it (normally, on failure, after Ctrl-C). Used by every integration and fault
test through the autouse fixture in tests/conftest.py; a difference fails the test with the paths that
changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conformance.runtimes import kmodules

PLACES = (
    "/etc/crio", "/etc/containers", "/etc/containerd", "/etc/docker", "/etc/cni", "/etc/kubernetes",
    "/var/lib/containers", "/var/lib/containerd", "/var/lib/cni", "/var/lib/kubelet", "/var/lib/docker",
    "/var/lib/etcd", "/run/containerd", "/run/crio", "/run/containers", "/run/docker", "/run/netns", "/run/crun",
    "/run/runc", "/var/run", "/var/log/pods", "/var/log/containers", "/var/log/crio", "/usr/libexec/kubernetes",
    "/usr/share/containers/oci", "/opt/cni", "/lib/modules", "~/.kube", "/var/tmp",
)
# the suite's state folders: the run's own (the leftover check looks inside them)
STATE_FOLDERS = ("/var/tmp/sgpconf", "/var/tmp/sgpt", "/var/tmp/sgpf")  # the default, the tests', the faults'
# what the kubelet checks or sets (behaviours of a kubelet beside a private runtime), and what a Docker engine
# and kind set
TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
            "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
            "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables", "fs/inotify/max_user_watches", "fs/inotify/max_user_instances",
            "net/netfilter/nf_conntrack_max", "kernel/pid_max", "fs/file-max", "fs/nr_open",
            # what systemd in a privileged (kind node) container sets host-wide unless kept read-only
            "fs/protected_fifos", "fs/protected_hardlinks", "fs/protected_regular", "fs/protected_symlinks")
NETWORK = {
    "links": ["ip", "-j", "link", "show"],
    "addresses": ["ip", "-j", "addr", "show"],
    "routes": ["ip", "-j", "route", "show", "table", "all"],
    "routes6": ["ip", "-6", "-j", "route", "show", "table", "all"],
    "iptables": ["iptables-save"],
    "ip6tables": ["ip6tables-save"],
    "nftables": ["nft", "list", "ruleset"],
}
STABLE = {"links": ("ifname", "flags", "mtu", "link_type", "address", "master"),
          "addresses": ("ifname", "addr_info"), "routes": ("dst", "gateway", "dev", "table", "type", "protocol"),
          "routes6": ("dst", "gateway", "dev", "table", "type", "protocol")}
ADDRESS_KEYS = ("family", "local", "prefixlen")
# cgroup v2: the controllers the root hands to its children (runc and a kubelet's cgroup root enable more)
ROOT_SUBTREE = Path("/sys/fs/cgroup/cgroup.subtree_control")


@dataclass
class HostSnapshot:
    """What a run must not change on the host."""

    files: dict[str, str] = field(default_factory=dict)  # path -> kind, mode, size, mtime (dirs: kind and mode)
    tunables: dict[str, str] = field(default_factory=dict)
    network: dict[str, str] = field(default_factory=dict)
    mounts: set[str] = field(default_factory=set)


def _walk(top: Path, skip: tuple[str, ...], out: dict[str, str]) -> None:
    try:
        st = top.lstat()
    except FileNotFoundError:
        return
    if top.is_symlink():
        out[str(top)] = f"link -> {os.readlink(top)}"
        return
    if not top.is_dir():
        out[str(top)] = f"file {st.st_mode:o} {st.st_size} {st.st_mtime_ns}"
        return
    out[str(top)] = f"dir {st.st_mode:o}"
    try:
        children = sorted(top.iterdir())
    except OSError as exc:
        out[str(top)] += f" unreadable {exc.errno}"
        return
    for child in children:
        if str(child) not in skip:
            _walk(child, skip, out)


def _network() -> dict[str, str]:
    found = {}
    for name, argv in NETWORK.items():
        if not shutil.which(argv[0]):
            continue
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        text = res.stdout if res.returncode == 0 else f"(exit {res.returncode}) {res.stderr.strip()}"
        if name in STABLE and res.returncode == 0:  # one entry a line, without counters and lifetimes
            entries = []
            for entry in json.loads(text or "[]"):
                kept = {k: entry.get(k) for k in STABLE[name]}
                if "addr_info" in kept:
                    kept["addr_info"] = [{k: a.get(k) for k in ADDRESS_KEYS} for a in kept["addr_info"] or []]
                entries.append(json.dumps(kept, sort_keys=True))
            text = "\n".join(entries)
        if name.endswith("tables") and res.returncode == 0:  # no generation comments, no packet counters
            text = "\n".join(line.split(" [", 1)[0] if line.startswith(":") else line
                             for line in text.splitlines() if not line.startswith("#"))
        found[name] = text
    return found


def _mounts() -> set[str]:
    """Mount point, filesystem and source of every mount in the host's mount namespace."""
    lines = Path("/proc/1/mountinfo").read_text().splitlines()
    out = set()
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        out.add(f"{fields[4]} {tail[0] if tail else '?'} {tail[1] if len(tail) > 1 else '?'}")
    return out


def take(state_folders: tuple[str, ...] = STATE_FOLDERS) -> HostSnapshot:
    snap = HostSnapshot()
    skip = tuple(state_folders)
    for place in PLACES:
        _walk(Path(os.path.expanduser(place)), skip, snap.files)
    for name in TUNABLES:
        try:
            snap.tunables[name] = Path("/proc/sys", name).read_text().strip()
        except OSError:
            snap.tunables[name] = "(absent)"
    if ROOT_SUBTREE.exists():
        snap.files[str(ROOT_SUBTREE)] = f"controllers {' '.join(sorted(ROOT_SUBTREE.read_text().split()))}"
    for name in kmodules.loaded() or {}:  # a modular kernel: what the run loaded must be unloaded again
        snap.files[f"{kmodules.PROC_MODULES}:{name}"] = "loaded"
    snap.network = _network()
    snap.mounts = _mounts()
    return snap


def differences(before: HostSnapshot, after: HostSnapshot) -> list[str]:
    """Every change, one line each, naming the path, tunable, network table or mount."""
    changes = []
    for path in sorted(set(before.files) | set(after.files)):
        was, now = before.files.get(path), after.files.get(path)
        if was != now:
            what = "added" if was is None else "removed" if now is None else f"changed ({was} -> {now})"
            changes.append(f"{path}: {what}")
    changes += [f"/proc/sys/{name}: {before.tunables[name]} -> {after.tunables.get(name)}"
                for name in before.tunables if before.tunables[name] != after.tunables.get(name)]
    for name in sorted(set(before.network) | set(after.network)):
        if before.network.get(name) != after.network.get(name):
            was = set((before.network.get(name) or "").splitlines())
            now = set((after.network.get(name) or "").splitlines())
            detail = "; ".join([f"+{x}" for x in sorted(now - was)][:5] + [f"-{x}" for x in sorted(was - now)][:5])
            changes.append(f"network {name} changed: {detail or 'reordered'}")
    changes += [f"mount added: {m}" for m in sorted(after.mounts - before.mounts)]
    changes += [f"mount removed: {m}" for m in sorted(before.mounts - after.mounts)]
    return changes

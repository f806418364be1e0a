"""Where cgroup hierarchies are, on a cgroup v2 host and a hybrid one, read from mountinfo text; a v2 cgroup
left frozen is thawed."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes import process

V2 = """\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:9 - securityfs securityfs rw
"""
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
90 34 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
91 23 0:40 / /var/tmp/elsewhere rw,relatime - cgroup2 cgroup2 rw
"""


def test_a_cgroup_v2_host_has_one_hierarchy_whatever_its_sub_folders() -> None:
    assert process.cgroup_hierarchies(V2) == [Path("/sys/fs/cgroup")]


def test_a_hybrid_host_has_each_mounted_hierarchy_once() -> None:
    assert process.cgroup_hierarchies(HYBRID) == [Path("/sys/fs/cgroup/cpu,cpuacct"), Path("/sys/fs/cgroup/memory"),
                                                  Path("/sys/fs/cgroup/unified")]


def test_a_frozen_v2_cgroup_is_thawed(tmp_path: Path) -> None:
    (tmp_path / "cgroup.freeze").write_text("1\n")
    process._thaw(tmp_path)
    assert (tmp_path / "cgroup.freeze").read_text() == "0"


class Root:
    """A cgroup v2 root's subtree_control as the kernel keeps it: `-x` refused while x is in use below."""

    def __init__(self, path: Path, enabled: str, busy: set[str]) -> None:
        self.file = path / "cgroup.subtree_control"
        self.file.write_text(enabled)
        self.busy = busy


def test_controllers_a_run_enabled_are_handed_back(tmp_path: Path, monkeypatch) -> None:
    root = Root(tmp_path, "memory pids\n", set())
    before = process.subtree_controllers(tmp_path)
    root.file.write_text("cpuset cpu io memory pids\n")  # runc enabled them for the run's cgroups
    written: list[str] = []
    real_write = Path.write_text

    def kernel(self: Path, text: str) -> int:
        if self != root.file:
            return real_write(self, text)
        if text.lstrip("-") in root.busy:
            raise OSError(16, "Device or resource busy")
        written.append(text)
        current = set(root.file.read_text().split()) - {text.lstrip("-")}
        return real_write(self, " ".join(sorted(current)) + "\n")

    root.busy = {"io"}  # still used below: stays
    monkeypatch.setattr(Path, "write_text", kernel)
    assert process.restore_subtree(before, tmp_path) == ["cpu", "cpuset"]
    assert written == ["-cpu", "-cpuset"]
    assert process.subtree_controllers(tmp_path) == {"io", "memory", "pids"}
    assert process.restore_subtree(None, tmp_path) == []  # v1: nothing to hand back


def test_controllers_handed_down_to_a_kubelet_root_on_v2(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    kubelet_root = tmp_path / "sgpconf-x"
    kubelet_root.mkdir()
    handed = process.enable_controllers(kubelet_root, ("cpuset", "cpu", "hugetlb", "memory", "pids", "nope"),
                                        tmp_path)
    assert handed == ["cpuset", "cpu", "hugetlb", "memory", "pids"]
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpuset +cpu +hugetlb +memory +pids"
    assert not (kubelet_root / "cgroup.subtree_control").exists()  # the kubelet enables its own children's
    assert process.enable_controllers(kubelet_root, ("cpu",), tmp_path / "v1") == []

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

"""The private engine's OCI runtime filter and the freezer thaw, on plain data (no runtime here)."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes import process
from conformance.targets.kind import capfilter

STATUS = "Name:\tx\nCapBnd:\t000001fffeffffff\n"  # every capability but CAP_SYS_RESOURCE (bit 24)


def test_bounding_set_and_filtered_bundle() -> None:
    allowed = capfilter.bounding_set(STATUS)
    assert "CAP_SYS_ADMIN" in allowed and "CAP_SYS_RESOURCE" not in allowed
    spec = {"process": {"capabilities": {k: ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"] for k in capfilter.CAP_SETS}},
            "linux": {"devices": [{"path": "/dev/tty1"}, {"path": "/dev/vcsa2"}, {"path": "/dev/fuse"},
                                  {"path": "/dev/ttyS0"}]}}
    out = capfilter.edit_bundle(spec, allowed)
    assert all(caps == ["CAP_SYS_ADMIN"] for caps in out["process"]["capabilities"].values())
    assert [d["path"] for d in out["linux"]["devices"]] == ["/dev/fuse", "/dev/ttyS0"]
    assert "/proc/sys/fs/file-max" in out["linux"]["readonlyPaths"]
    again = capfilter.edit_bundle(out, allowed)
    assert again["linux"]["readonlyPaths"].count("/proc/sys/fs/file-max") == 1
    assert again["mounts"].count(capfilter.VISIBLE_PROC) == 1  # a fully visible proc, for userns pods


def test_subcommand_and_options() -> None:
    args = ["--root", "/r", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "id"]
    assert capfilter.subcommand(args) == "create" and capfilter.option(args, "--bundle", "-b") == "/b"
    assert capfilter.subcommand(["--root=/r", "exec", "--process=/p.json", "id"]) == "exec"
    assert capfilter.option(["exec", "--process=/p.json"], "--process", "-p") == "/p.json"


def test_a_frozen_cgroup_is_thawed(tmp_path: Path) -> None:
    state = tmp_path / "freezer.state"
    state.write_text("FROZEN\n")
    process._thaw(tmp_path)
    assert state.read_text() == "THAWED"
    process._thaw(tmp_path / "missing")  # not a freezer cgroup: nothing to do

"""The host snapshot itself: it sees a file, a folder, a changed file and a mount, and says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import hostsnapshot


def test_differences_name_each_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc, state = tmp_path / "etc-crio", tmp_path / "state"
    etc.mkdir()
    (etc / "crio.conf").write_text("a")
    state.mkdir()
    monkeypatch.setattr(hostsnapshot, "PLACES", (str(etc), str(tmp_path / "absent"), str(tmp_path)))
    monkeypatch.setattr(hostsnapshot, "NETWORK", {})
    before = hostsnapshot.take(state_folders=(str(state),))
    (etc / "policies").mkdir()
    (etc / "crio.conf").write_text("changed")
    (tmp_path / "absent").mkdir()
    (state / "anything").write_text("the run's own folder is not looked at")
    after = hostsnapshot.take(state_folders=(str(state),))
    after.mounts = before.mounts | {"/x/overlay /x/overlay-src ext4"}
    changes = hostsnapshot.differences(before, after)
    assert f"{etc / 'policies'}: added" in changes and f"{tmp_path / 'absent'}: added" in changes
    assert any(c.startswith(f"{etc / 'crio.conf'}: changed") for c in changes)
    assert "mount added: /x/overlay /x/overlay-src ext4" in changes
    assert not any("anything" in c for c in changes)
    assert hostsnapshot.differences(after, after) == []


def test_the_cgroup_v2_roots_controllers_are_part_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    control = tmp_path / "cgroup.subtree_control"
    control.write_text("memory pids\n")
    monkeypatch.setattr(hostsnapshot, "PLACES", ())
    monkeypatch.setattr(hostsnapshot, "NETWORK", {})
    monkeypatch.setattr(hostsnapshot, "ROOT_SUBTREE", control)
    before = hostsnapshot.take()
    control.write_text("cpu memory pids\n")  # a run enabled cpu and did not hand it back
    assert hostsnapshot.differences(before, hostsnapshot.take()) == [
        f"{control}: changed (controllers memory pids -> controllers cpu memory pids)"]

"""A package unpacked by two runs at once: the first complete folder stays (a run may be using it), the
second is dropped; a folder an older run left half made is replaced."""

from __future__ import annotations

from pathlib import Path

from conformance.runtimes import debian


def unpacked(path: Path, content: str) -> Path:
    (path / "usr/bin").mkdir(parents=True)
    (path / "usr/bin/tool").write_text(content)
    (path / ".complete").touch()
    return path


def test_the_first_complete_folder_stays(tmp_path: Path) -> None:
    dest = tmp_path / "containerd-2.1.9"
    assert debian.publish(unpacked(tmp_path / "a.partial-1", "first"), dest) == dest
    in_use = (dest / "usr/bin/tool").stat().st_ino
    assert debian.publish(unpacked(tmp_path / "a.partial-2", "second"), dest) == dest
    assert (dest / "usr/bin/tool").read_text() == "first" and (dest / "usr/bin/tool").stat().st_ino == in_use
    assert sorted(p.name for p in tmp_path.iterdir()) == ["containerd-2.1.9"]


def test_a_half_made_folder_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "containerd-2.1.9"
    (dest / "usr").mkdir(parents=True)  # no marker: an older run stopped half way
    debian.publish(unpacked(tmp_path / "a.partial-3", "whole"), dest)
    assert (dest / "usr/bin/tool").read_text() == "whole" and (dest / ".complete").exists()

"""Bin folders as users pass them: links of every kind are followed to the file, and a binary that cannot run
in the place it goes is refused in one line naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import executables
from conformance.targets.kind import nodeimage

TRUE = Path(shutil.which("true") or "/bin/true")


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build tree's output, and a folder of links into it as a packaging script lays them out."""
    out = tmp_path / "build" / "bin"
    out.mkdir(parents=True)
    shutil.copy2(TRUE, out / "crio")
    shutil.copy2(TRUE, out / "conmon")
    (out / "pinns").write_bytes(b"#!/bin/sh\nexit 0\n")
    (out / "pinns").chmod(0o755)
    links = tmp_path / "bin"
    links.mkdir()
    (links / "crio").symlink_to(out / "crio")  # absolute
    (links / "conmon").symlink_to("../build/bin/conmon")  # relative, out of the folder
    (links / "conmon-2").symlink_to("conmon")  # a link to a link
    (links / "pinns").symlink_to(out / "pinns")
    return links


def test_links_are_followed_to_the_file(build: Path) -> None:
    for name in ("crio", "conmon", "conmon-2", "pinns"):
        exe = executables.inspect(build / name, "CRIO_BIN_DIR")
        assert exe.real.is_file() and not exe.real.is_symlink(), name
    assert executables.inspect(build / "crio", "CRIO_BIN_DIR").interpreter  # /bin/true is dynamically linked


def test_a_link_is_copied_into_the_image_as_its_file(build: Path, tmp_path: Path) -> None:
    for link in (True, False):
        target = tmp_path / f"rootfs-{link}" / "usr" / "local" / "bin" / "conmon"
        nodeimage._copy(build / "conmon-2", target, link=link)
        assert not target.is_symlink() and target.read_bytes() == TRUE.read_bytes()


@pytest.mark.parametrize("problem, expected", [
    ("missing", "is missing"),
    ("dangling", "which does not exist"),
    ("not-executable", "is not executable"),
    ("other-arch", "is built for"),
    ("not-elf", "is not an executable binary"),
])
def test_a_binary_that_cannot_run_is_refused_in_one_line(build: Path, problem: str, expected: str) -> None:
    path = build / problem
    if problem == "dangling":
        path.symlink_to(build.parent / "build" / "bin" / "gone")
    elif problem == "not-executable":
        target = build.parent / "build" / "bin" / "plain"
        shutil.copy2(TRUE, target)
        target.chmod(0o644)
        path.symlink_to(target)
    elif problem == "other-arch":
        data = bytearray(TRUE.read_bytes())
        data[18:20] = (40).to_bytes(2, "little")  # EM_ARM
        path.write_bytes(bytes(data))
        path.chmod(0o755)
    elif problem == "not-elf":
        path.write_bytes(b"\x00\x01garbage")
        path.chmod(0o755)
    with pytest.raises(ProvisionError, match=expected) as err:
        executables.inspect(path, "CRIO_BIN_DIR")
    assert str(err.value).startswith("CRIO_BIN_DIR: ") and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_libraries_the_image_lacks_are_named(build: Path) -> None:
    exe = executables.inspect(build / "crio", "CRIO_BIN_DIR")
    with pytest.raises(ProvisionError, match=r"dynamically linked against .*libc\.so\.6.*which the base lacks"):
        executables.check_libraries(exe, "CRIO_BIN_DIR", {"ld-linux-x86-64.so.2"}, "the base")
    executables.check_libraries(exe, "CRIO_BIN_DIR", {Path(exe.interpreter or "").name, *exe.needed}, "the base")

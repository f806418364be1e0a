"""Extracting downloaded archives safely on every Python the project supports (3.11+).

`TarFile.extractall(filter=...)` (PEP 706) arrived in 3.11.4; Debian 12's python3 is 3.11.2 without it and
raises TypeError for the keyword. There the same refusals are made here before extracting: a member whose
path leaves the destination (absolute, or through `..`), and for the "data" filter also links that point out
of it and device or FIFO files."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

FILTERS = ("tar", "data")


def supported() -> bool:
    """This Python's tarfile takes a `filter` (PEP 706)."""
    return hasattr(tarfile, "data_filter")


def _inside(dest: Path, name: str) -> bool:
    target = os.path.normpath(dest / name.lstrip("/"))
    return target == str(dest) or target.startswith(str(dest) + os.sep)


def refusal(member: tarfile.TarInfo, dest: Path, kind: str) -> str | None:
    """Why `member` must not be extracted into `dest` under the `kind` filter, or None."""
    name = member.name
    if PurePosixPath(name).is_absolute() and kind == "data":
        return f"{name}: absolute path"
    if not _inside(dest, name):
        return f"{name}: outside the destination"
    if kind != "data":
        return None
    if member.isdev() or member.isfifo():
        return f"{name}: device or FIFO"
    if member.issym():
        if PurePosixPath(member.linkname).is_absolute():
            return f"{name}: link to an absolute path ({member.linkname})"
        if not _inside(dest, str(PurePosixPath(name).parent / member.linkname)):
            return f"{name}: link out of the destination ({member.linkname})"
    if member.islnk() and not _inside(dest, member.linkname):
        return f"{name}: hard link out of the destination ({member.linkname})"
    return None


def extract(tar: tarfile.TarFile, dest: Path, kind: str) -> None:
    """`tar.extractall(dest, filter=kind)`, or its refusals checked here where tarfile has no filters
    (tarfile.TarError naming the member)."""
    if kind not in FILTERS:
        raise ValueError(f"unknown filter {kind!r}")
    if supported():
        tar.extractall(dest, filter=kind)  # noqa: S202 - PEP 706 filter
        return
    dest = Path(os.path.realpath(dest))
    members = tar.getmembers()
    for member in members:
        why = refusal(member, dest, kind)
        if why:
            raise tarfile.TarError(f"refused: {why}")
    tar.extractall(dest, members=members)  # noqa: S202 - every member checked above

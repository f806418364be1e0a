"""Safe extraction on a Python without tarfile filters (Debian 12's 3.11.2): the refusals are made by the
project itself, and the same archives are accepted as with the filters."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from conformance.runtimes import tarsafe


def archive(tmp_path: Path, *members: tarfile.TarInfo) -> Path:
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        for member in members:
            data = b"x" if member.isfile() else None
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.fixture(params=[True, False], ids=["pep706", "without-filters"])
def filters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if not request.param:
        monkeypatch.setattr(tarsafe, "supported", lambda: False)
    elif not tarsafe.supported():
        pytest.skip("this Python has no tarfile filters")
    return request.param


def test_a_package_layout_extracts(filters: bool, tmp_path: Path) -> None:
    path = archive(tmp_path, member("./usr/bin/tool"), member("./usr/bin/alias", tarfile.SYMTYPE, "tool"),
                   member("./etc/alt", tarfile.SYMTYPE, "/etc/alternatives/alt"))
    dest = tmp_path / "out"
    dest.mkdir()
    with tarfile.open(path) as tar:
        tarsafe.extract(tar, dest, "tar")  # a .deb's absolute links are fine for the tar filter
    assert (dest / "usr/bin/tool").read_bytes() == b"x" and (dest / "usr/bin/alias").is_symlink()


@pytest.mark.parametrize("bad, kind", [
    (member("../escape"), "tar"),
    (member("a/../../escape"), "data"),
    (member("link", tarfile.SYMTYPE, "/etc/passwd"), "data"),
    (member("d/link", tarfile.SYMTYPE, "../../x"), "data"),
    (member("dev", tarfile.CHRTYPE), "data"),
])
def test_escapes_are_refused(bad: tarfile.TarInfo, kind: str, filters: bool, tmp_path: Path) -> None:
    path = archive(tmp_path, bad)
    dest = tmp_path / "out"
    dest.mkdir()
    with tarfile.open(path) as tar, pytest.raises(tarfile.TarError):
        tarsafe.extract(tar, dest, kind)
    assert not (tmp_path / "escape").exists() and not list(dest.iterdir())

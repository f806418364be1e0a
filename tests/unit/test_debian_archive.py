"""Debian's packages without apt: the archive's chain of trust (InRelease signed by a pinned Debian key,
Packages by InRelease's hash, the .deb by Packages' hash) is checked, and a break anywhere is refused naming
the file. Against the real archive, through a loopback mirror that alters what a test names."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import debian
from tests.support.mirror import tampering_mirror

REAL = debian.apt_archive()
pytestmark = pytest.mark.skipif(REAL is None, reason="needs a Debian archive to pass through")
SUITE, PACKAGE = "bookworm", "hello"


@pytest.fixture(autouse=True)
def expired(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's archive may be a frozen snapshot (past Valid-Until): allowed as apt here allows it."""
    if debian.expired_allowed():
        monkeypatch.setenv("DEBIAN_ALLOW_EXPIRED", "1")


def fetch(mirror: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEBIAN_MIRROR", mirror)
    archive = debian.Archive(cache)
    pkg = archive.versions(SUITE, PACKAGE)[0]
    return archive.fetch(pkg, cache / "runtimes" / f"{PACKAGE}-{pkg.version}")


def test_a_package_arrives_checked_and_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tampering_mirror(REAL) as mirror:
        root = fetch(mirror, tmp_path, monkeypatch)
    assert (root / "usr" / "bin" / "hello").is_file() and (root / ".complete").exists()


@pytest.mark.parametrize("path, change, refusal", [
    ("/InRelease", lambda d: d.replace(b"Codename: bookworm", b"Codename: bookwurm"), "no valid signature"),
    ("/InRelease", lambda d: d.split(b"-----BEGIN PGP SIGNATURE-----")[0], "no valid signature"),
    ("/Packages.xz", lambda d: d[:-1] + bytes([d[-1] ^ 1]), "altered"),
    ("/Packages.xz", lambda d: d[: len(d) // 2], "truncated"),
    (".deb", lambda d: d[:-100], "truncated"),
    (".deb", lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "altered"),
])
def test_a_tampered_file_is_refused_naming_it(path: str, change, refusal: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with tampering_mirror(REAL, {path: change}) as mirror, pytest.raises(ProvisionError) as err:
        fetch(mirror, tmp_path, monkeypatch)
    assert refusal in str(err.value) and path.lstrip("/") in str(err.value), str(err.value)
    assert not list((tmp_path / "runtimes").glob("*")) if (tmp_path / "runtimes").exists() else True


def test_only_pinned_keys_are_trusted() -> None:
    certs = debian.archive_certs()
    assert {c.fingerprint for c in certs} == debian.FINGERPRINTS


def test_no_mirror_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEBIAN_MIRROR", raising=False)
    monkeypatch.setattr(debian, "apt_archive", lambda: None)
    with pytest.raises(ProvisionError, match="set DEBIAN_MIRROR"):
        debian.Archive(tmp_path).versions(SUITE, PACKAGE)


def fetch_orig(mirror: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hello's .orig tarball, found through the suite's Sources index."""
    monkeypatch.setenv("DEBIAN_MIRROR", mirror)
    archive = debian.Archive(cache)
    record = archive.sources(SUITE, PACKAGE)[0]
    name = next(e["name"] for e in record["Checksums-Sha256"] if ".orig.tar." in e["name"])
    return archive.fetch_source(record, name)


def test_a_source_file_arrives_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tampering_mirror(REAL) as mirror:
        orig = fetch_orig(mirror, tmp_path, monkeypatch)
    assert orig.parent == tmp_path / "debian" / "src" and orig.name.startswith(f"{PACKAGE}_")
    assert (tmp_path / "debian" / SUITE / "Sources").is_file()


@pytest.mark.parametrize("path, change, refusal", [
    ("/Sources.xz", lambda d: d[:-1] + bytes([d[-1] ^ 1]), "altered"),
    (".orig.tar.gz", lambda d: d[:-100], "truncated"),
    (".orig.tar.gz", lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "altered"),
])
def test_a_tampered_source_file_is_refused_naming_it(path: str, change, refusal: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with tampering_mirror(REAL, {path: change}) as mirror, pytest.raises(ProvisionError) as err:
        fetch_orig(mirror, tmp_path, monkeypatch)
    assert refusal in str(err.value) and path.lstrip("/") in str(err.value), str(err.value)
    assert not (tmp_path / "debian" / "src").exists() or not any((tmp_path / "debian" / "src").iterdir())

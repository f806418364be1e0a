"""What TARGET=kind asks of the host, said in one line before anything starts; the private engine's view of
AppArmor; the wget stand-in debootstrap downloads through (its command line, and Debian's chain of trust:
a signed InRelease only)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import debian
from conformance.runtimes.process import processes_mentioning
from conformance.targets.kind import engine, nodebase, wget
from tests.support.mirror import tampering_mirror


def which_but(*missing: str):
    return lambda name: None if name in missing else f"/usr/bin/{name}"


def test_nothing_missing_says_nothing() -> None:
    assert nodebase.host_gaps(which_but()) is None
    assert engine.host_gaps(which_but()) is None


def test_debootstrap_tools_missing_in_one_line() -> None:
    line = nodebase.host_gaps(which_but("perl", "dpkg-deb", "ar"))
    assert line is not None and "\n" not in line
    assert "perl, dpkg-deb or ar" in line and "install perl-base, dpkg or binutils" in line
    assert nodebase.host_gaps(which_but("dpkg-deb")) is None  # ar will do
    assert "wget" not in (nodebase.host_gaps(which_but("wget", "gpgv", "tar")) or "")


def test_engine_tools_missing_in_one_line() -> None:
    line = engine.host_gaps(which_but("ip", "nsenter", "unshare"))
    assert line is not None and "\n" not in line
    assert "needs unshare, nsenter, ip" in line and "install util-linux, iproute2" in line
    assert "DOCKER_HOST" in line


@pytest.mark.parametrize("text, enabled", [("Y\n", True), ("N\n", False), ("", False), (None, False)])
def test_apparmor_enabled(text: str | None, enabled: bool, tmp_path: Path) -> None:
    path = tmp_path / "enabled"
    if text is not None:
        path.write_text(text)
    assert engine.apparmor_enabled(path) is enabled


class Namespace:
    def __init__(self) -> None:
        self.binds: list[tuple[Path, str]] = []

    def bind(self, source: Path, target: str) -> None:
        self.binds.append((source, target))


@pytest.mark.parametrize("kernel", ["Y\n", "N\n"])
def test_the_engine_sees_apparmor_off(kernel: str, tmp_path: Path) -> None:
    (tmp_path / "kernel").write_text(kernel)
    ns = Namespace()
    engine.hide_apparmor(ns, tmp_path, tmp_path / "kernel")  # type: ignore[arg-type]
    if kernel.startswith("Y"):
        assert ns.binds == [(tmp_path / "apparmor-enabled", str(tmp_path / "kernel"))]
        assert (tmp_path / "apparmor-enabled").read_text() == "N\n"
    else:
        assert ns.binds == []


@pytest.mark.parametrize("argv, dest, url", [
    (["-nv", "-O", "/t/Release", "http://m/dists/x/InRelease"], "/t/Release", "http://m/dists/x/InRelease"),
    (["--no-check-certificate", "--output-document=/t/p.deb", "http://m/pool/p.deb"], "/t/p.deb",
     "http://m/pool/p.deb"),
])
def test_wget_command_line(argv: list[str], dest: str, url: str) -> None:
    assert wget.parse(argv) == (Path(dest), url)


@pytest.mark.parametrize("argv", [["http://m/a"], ["-O", "/t/a"], ["-O", "/t/a", "http://m/a", "http://m/b"]])
def test_wget_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert wget.main(argv) == wget.USAGE_ERROR
    assert "wget (sgp-conformance)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["Release", "Release.gpg"])
def test_wget_refuses_an_unsigned_release(name: str) -> None:
    with pytest.raises(ProvisionError, match="only an InRelease signed"):
        wget.checked(f"http://m/dists/bookworm/{name}", b"Origin: Debian\n")
    assert wget.checked("http://m/pool/main/h/hello/hello.deb", b"x") == b"x"  # debootstrap checks its hash


def test_wget_refuses_an_inrelease_without_a_debian_signature() -> None:
    with pytest.raises(ProvisionError, match="no valid signature"):
        wget.checked("http://m/dists/bookworm/InRelease", b"Origin: Debian\nSuite: bookworm\n")


@pytest.mark.skipif(debian.apt_archive() is None, reason="needs a Debian archive to pass through")
def test_wget_writes_a_signed_inrelease_and_not_a_tampered_one(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if debian.expired_allowed():
        monkeypatch.setenv("DEBIAN_ALLOW_EXPIRED", "1")
    change = {"/InRelease": lambda d: d.replace(b"Codename: bookworm", b"Codename: bookwurm")}
    with tampering_mirror(debian.apt_archive()) as good, tampering_mirror(debian.apt_archive(), change) as bad:
        assert wget.main(["-O", str(tmp_path / "good"), f"{good}/dists/bookworm/InRelease"]) == 0
        assert wget.main(["-O", str(tmp_path / "bad"), f"{bad}/dists/bookworm/InRelease"]) == wget.SERVER_ERROR
    assert b"Codename: bookworm" in (tmp_path / "good").read_bytes()
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob("*partial"))


def test_the_engine_cgroup_parent_is_absolute_on_cgroup_v2(tmp_path: Path) -> None:
    assert engine.cgroup_parent_flag("sgpconf-docker-1-ab", tmp_path) == "sgpconf-docker-1-ab"  # v1, hybrid
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert engine.cgroup_parent_flag("sgpconf-docker-1-ab", tmp_path) == "/sgpconf-docker-1-ab"


def test_a_debootstrap_past_its_time_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    script = f"sh -c 'sleep 30; touch {marker}' & sleep 30"
    with pytest.raises(ProvisionError) as err:
        nodebase._debootstrap(["sh", "-c", script], {"PATH": "/usr/bin:/bin"}, tmp_path / "log", timeout=0.5)
    assert "within 0 s" in str(err.value) and "\n" not in str(err.value)
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously; the killed leave /proc soon after
    while processes_mentioning(str(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(marker)) == []
    assert nodebase._debootstrap(["true"], {"PATH": "/usr/bin:/bin"}, tmp_path / "log") == 0


def test_the_cache_image_store_is_one_runs_at_a_time(tmp_path: Path) -> None:
    """The private engine's data root in the cache (node images loaded once, kept between runs) is held by one
    engine at a time; another run meanwhile gets none (its engine keeps its data in its own state folder)."""
    bin_dir = tmp_path / "docker-engine" / "20.10.24-1.6.20"
    bin_dir.mkdir(parents=True)
    first = engine.take_store(bin_dir)
    assert first is not None and first[0] == bin_dir.with_name("20.10.24-1.6.20.store") and first[0].is_dir()
    assert engine.take_store(bin_dir) is None
    os.close(first[1])  # the run ended (or died: the kernel drops its lock the same way)
    again = engine.take_store(bin_dir)
    assert again is not None
    os.close(again[1])

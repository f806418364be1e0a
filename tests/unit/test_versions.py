import pytest

from conformance.core.versions import in_range, matches, parse_range
from conformance.errors import ProvisionError
from conformance.runtimes.debian import DebPackage
from conformance.runtimes.download import arch, parse_checksum
from conformance.runtimes.release import pick, urls

RELEASES = [{"tag_name": t, "prerelease": "rc" in t} for t in
            ("v2.2.0", "v2.1.5", "v2.1.4", "v2.0.7", "v1.7.29", "v1.7.28", "v1.6.39", "v2.3.0-rc.1")]


def test_matches() -> None:
    assert matches("2.1.9", "2") and matches("2.1.9", "2.x") and matches("2.1.9", "2.1")
    assert not matches("1.7.24", "2") and matches("1.7.24", "1.7") and matches("1.7.24", "1.7.24")
    assert not matches("1.7.24", "bogus")


def test_ranges() -> None:
    assert in_range("2.1.9", ">=2.0") and not in_range("1.7.24", ">=2.0")
    assert in_range("2.1.9", ">=2.0,<2.3") and not in_range("2.3.0", ">=2.0,<2.3") and in_range("1.0", "*")
    with pytest.raises(ValueError):
        parse_range("~2")


def test_debian_upstream_version() -> None:
    assert DebPackage("containerd", "2.1.9+ds1-5", "sid").upstream == "2.1.9"
    assert DebPackage("containerd", "1.7.24~ds1-6+deb13u1", "trixie").upstream == "1.7.24"
    assert DebPackage("containerd", "1:1.6.20~ds1-1", "bookworm").upstream == "1.6.20"


def test_release_resolution() -> None:
    assert pick(RELEASES, "2") == "2.2.0"
    assert pick(RELEASES, "2.1") == "2.1.5"
    assert pick(RELEASES, "1.7") == "1.7.29"
    assert pick(RELEASES, "2.1.4") == "2.1.4"
    with pytest.raises(ProvisionError):
        pick(RELEASES, "3")
    url, sums = urls("2.1.5", "x86_64")
    assert url == "https://github.com/containerd/containerd/releases/download/v2.1.5/containerd-2.1.5-linux-amd64.tar.gz"
    assert sums == url + ".sha256sum"
    assert arch("aarch64") == "arm64"


def test_checksum() -> None:
    import hashlib

    data = b"tarball"
    digest = hashlib.sha256(data).hexdigest()
    name = "containerd-2.1.5-linux-amd64.tar.gz"
    assert parse_checksum(f"{digest}  {name}\n", name) == digest
    assert parse_checksum(digest, name) == digest  # Kubernetes' .sha256: the digest alone
    with pytest.raises(ProvisionError):
        parse_checksum("garbage", "x.tar.gz")


def test_crio_bundle_resolution_urls_and_checksum(tmp_path, monkeypatch) -> None:
    import hashlib

    from conformance.runtimes import release

    assert release.crio_minor("1.34") == "1.34" and release.crio_minor("v1.34.x") == "1.34"
    assert release.crio_minor("1.34.2") is None
    with pytest.raises(ProvisionError, match=r"major\.minor"):
        release.crio_minor("1")
    assert release.crio_latest_url("1.34") == "https://storage.googleapis.com/cri-o/latest-1.34.txt"
    assert release.parse_crio_latest("v1.34.2\n", "1.34") == "1.34.2"
    with pytest.raises(ProvisionError, match=r"not a 1\.34\.z"):
        release.parse_crio_latest("v1.35.0\n", "1.34")
    url, sums = release.crio_urls("1.34.2", "x86_64")
    assert url == "https://storage.googleapis.com/cri-o/artifacts/cri-o.amd64.v1.34.2.tar.gz"
    assert sums == url + ".sha256sum"
    assert release.crio_urls("1.34.2", "aarch64")[0].endswith("/cri-o.arm64.v1.34.2.tar.gz")
    digest = hashlib.sha256(b"bundle").hexdigest()
    # CRI-O's .sha256sum names the file with its build path; only the file name counts
    assert parse_checksum(f"{digest}  /build/out/cri-o.amd64.v1.34.2.tar.gz\n",
                                  "cri-o.amd64.v1.34.2.tar.gz") == digest


def test_crio_without_folder_or_network_names_both_ways(tmp_path, monkeypatch) -> None:
    from conformance.runtimes import release
    from conformance.runtimes.crio import Crio

    def offline(url: str, timeout: float = 30) -> bytes:
        raise ProvisionError(f"cannot download {url}: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(release.download, "get", offline)
    with pytest.raises(ProvisionError) as exc:
        Crio(None, tmp_path, version="1.34", cache=tmp_path).binaries()
    text = str(exc.value)
    assert "\n" not in text and "latest-1.34.txt" in text and "CRIO_BIN_DIR=" in text and "VERSION=" in text
    with pytest.raises(ProvisionError, match="CRIO_RELEASE_URL"):  # no VERSION: the newest release, resolved
        Crio(None, tmp_path, cache=tmp_path).binaries()


@pytest.mark.parametrize(("line", "version"), [
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", "2.1.9+unknown"),  # Debian's build
    ("containerd github.com/containerd/containerd v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182", "1.7.24"),
])
def test_containerd_version_of_a_bin_dir(tmp_path, line: str, version: str) -> None:
    from conformance.runtimes.containerd import containerd_version
    from tests.support.fakes import bin as fakebin

    fakebin.tool(tmp_path / "containerd", line)
    assert containerd_version(tmp_path) == version

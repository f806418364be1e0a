"""Release downloads against a loopback server with the upstream layouts (tests/support/releases.py): versions
resolved the way each project publishes them, checksums checked, a cut or altered file refused naming it, and a
second run downloading nothing. The binaries are small scripts that say their version."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.kube import binaries
from conformance.runtimes import release
from conformance.runtimes.crio import Crio
from tests.support.releases import K8S_NAMES, Layout, serve


def _script(path: Path, says: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    made = Layout(tmp_path / "www")
    k8s = tmp_path / "k8s"
    for name in K8S_NAMES:
        _script(k8s / name, "Kubernetes v1.36.2")
    _script(k8s / "kubeadm", "registry.k8s.io/kube-apiserver:v1.36.2\nregistry.k8s.io/etcd:3.6.8-0")
    made.kubernetes("1.36.2", k8s)
    for version in ("3.6.8", "3.5.16"):
        made.etcd(version, _script(tmp_path / f"etcd-{version}" / "etcd", f"etcd Version: {version}"))
    for version in ("2.1.9", "1.7.24"):
        folder = tmp_path / f"containerd-{version}"
        for name in ("containerd", "containerd-shim-runc-v2", "ctr"):
            _script(folder / name, f"containerd github.com/containerd/containerd v{version}")
        made.containerd(version, folder, listed=("2.1.8", "2.2.0-rc.1") if version == "2.1.9" else ())
    for version in ("1.36.3", "1.37.0"):
        folder = tmp_path / f"crio-{version}"
        for name in ("crio", "pinns", "conmon", "runc"):
            _script(folder / name, f"crio version {version}")
        made.crio(version, folder)
    return made


def test_kubernetes_by_minor_then_nothing_again(layout: Layout, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    with serve(layout) as server:
        monkeypatch.setenv("K8S_RELEASE_URL", server.env()["K8S_RELEASE_URL"])
        folder, version, source = binaries.kubernetes(None, "1.36", cache)
        assert version == "v1.36.2" and source.startswith("K8S=1.36 from http://127.0.0.1:")
        assert sorted(p.name for p in folder.iterdir() if p.name != ".complete") == sorted(
            (*binaries.SERVER, "kubeadm"))
        first = server.downloads()
        assert first == 2 * 5  # five binaries and their .sha256
        binaries.kubernetes(None, "1.36.2", cache)
        assert server.downloads() == first  # a second run downloads nothing
        binaries.kubernetes(None, "1.36.2", cache, (*binaries.SERVER, "kubectl"))
        assert server.downloads() == first + 2  # only what was not there yet


@pytest.mark.parametrize("fault", ["altered", "cut"])
def test_a_bad_download_is_refused_naming_the_file(fault: str, layout: Layout, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    with serve(layout) as server:
        getattr(server, fault).add("/kubelet")
        monkeypatch.setenv("K8S_RELEASE_URL", server.env()["K8S_RELEASE_URL"])
        with pytest.raises(ProvisionError, match="kubelet: " + ("checksum mismatch" if fault == "altered"
                                                                 else "download .* was cut short")):
            binaries.kubernetes(None, "1.36.2", cache)
    folder = cache / "kubernetes" / "kubernetes-1.36.2"
    assert not (folder / "kubelet").exists() and not list(folder.glob("*.part"))
    assert "kubelet" not in (folder / ".complete").read_text() if (folder / ".complete").exists() else True


def test_etcd_the_version_kubeadm_names_or_etcd_version(layout: Layout, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    with serve(layout) as server:
        monkeypatch.setenv("K8S_RELEASE_URL", server.env()["K8S_RELEASE_URL"])
        monkeypatch.setenv("ETCD_RELEASE_URL", server.env()["ETCD_RELEASE_URL"])
        found = binaries.resolve(None, "1.36.2", None, cache)
        assert found.etcd_version == "3.6.8" and found.source.startswith("K8S=1.36.2")
        monkeypatch.setenv("ETCD_VERSION", "3.5.16")
        assert binaries.etcd(None, cache, found.folder / "kubeadm", "v1.36.2")[1] == "3.5.16"
        monkeypatch.delenv("ETCD_VERSION")
        with pytest.raises(ProvisionError, match="ETCD_VERSION"):
            binaries.etcd(None, cache)  # ETCD_RELEASE_URL alone, with no kubeadm to ask
        server.altered.add("etcd-v3.6.8-linux-amd64.tar.gz")
        with pytest.raises(ProvisionError, match=r"etcd-v3\.6\.8-linux-amd64\.tar\.gz: checksum mismatch"):
            binaries.etcd(None, tmp_path / "other-cache", found.folder / "kubeadm", "v1.36.2")


def test_containerd_resolved_through_the_release_list(layout: Layout, tmp_path: Path, monkeypatch) -> None:
    with serve(layout) as server:
        monkeypatch.setenv("CONTAINERD_RELEASE_URL", server.env()["CONTAINERD_RELEASE_URL"])
        version, root = release.fetch("2.1", tmp_path / "cache")
        assert version == "2.1.9" and (root / "bin" / "containerd").is_file()
        assert server.requests["/containerd/releases"] == 1
        assert release.fetch("1.7.24", tmp_path / "cache")[0] == "1.7.24"
        assert server.requests["/containerd/releases"] == 1  # an exact version needs no list
        before = server.downloads()
        release.fetch("2.1.9", tmp_path / "cache")
        assert server.downloads() == before
        server.cut.add(".tar.gz")
        with pytest.raises(ProvisionError, match=r"containerd-1\.7\.24-linux-amd64\.tar\.gz: download .* cut short"):
            release.fetch("1.7.24", tmp_path / "cache2")


def test_crio_newest_release_and_a_minor(layout: Layout, tmp_path: Path, monkeypatch) -> None:
    with serve(layout) as server:
        monkeypatch.setenv("CRIO_RELEASE_URL", server.env()["CRIO_RELEASE_URL"])
        assert release.newest_crio() == "1.37.0"  # 1.31-1.35 are not on this server, 1.38 not yet anywhere
        version, folder, label = Crio(None, tmp_path, None, tmp_path / "cache").binaries()
        assert (version, folder.name, label) == ("1.37.0", "bin", "the CRI-O 1.37.0 bundle")
        version, folder, _ = Crio(None, tmp_path, "1.36", tmp_path / "cache").binaries()
        assert version == "1.36.3" and (folder / "crio").is_file()
        server.altered.add("cri-o.amd64.v1.36.3.tar.gz")
        with pytest.raises(ProvisionError, match=r"cri-o\.amd64\.v1\.36\.3\.tar\.gz: checksum mismatch"):
            Crio(None, tmp_path, "1.36.3", tmp_path / "cache2").binaries()


def test_no_crio_marker_at_all_is_named(tmp_path: Path, monkeypatch) -> None:
    with serve(Layout(tmp_path / "empty")) as server:
        monkeypatch.setenv("CRIO_RELEASE_URL", server.env()["CRIO_RELEASE_URL"])
        with pytest.raises(ProvisionError, match=r"no CRI-O release marker latest-1\.31\.txt"):
            release.newest_crio()


def test_origin_names_the_download_only(tmp_path: Path) -> None:
    from conformance.runtimes import download

    released = tmp_path / "containerd-2.1.9" / "bin"
    released.mkdir(parents=True)
    download.mark_done(released.parent, "http://127.0.0.1:1/containerd/releases/download/v2.1.9/x.tar.gz")
    assert download.origin(released) == "http://127.0.0.1:1/containerd/releases/download/v2.1.9/x.tar.gz"
    debian = tmp_path / "containerd-2.1.9+ds1-5" / "usr" / "bin"
    debian.mkdir(parents=True)
    (debian.parents[1] / ".complete").write_text("")  # Debian's unpacked packages carry an empty marker
    assert download.origin(debian) is None and download.origin(tmp_path / "elsewhere") is None


def test_origin_of_a_debian_package_folder_is_none(tmp_path: Path) -> None:
    """debian.Archive.fetch marks its folders with an empty .complete: not a download, and no crash."""
    from conformance.runtimes import containerd, download

    pkg = tmp_path / "runtimes" / "containerd-2.1.9+ds1-5"
    (pkg / "usr" / "bin").mkdir(parents=True)
    (pkg / ".complete").touch()
    assert download.origin(pkg / "usr" / "bin") is None
    assert containerd.source_of(pkg / "usr" / "bin", None) == "Debian's containerd-2.1.9+ds1-5"
    download.mark_done(pkg, "http://127.0.0.1:1/c.tar.gz")
    assert download.origin(pkg / "usr" / "bin") == "http://127.0.0.1:1/c.tar.gz"

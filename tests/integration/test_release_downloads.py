"""Release downloads end to end, from a loopback server laid out as the release hosts are (tests/support/
releases.py) and filled with hand-built binaries: TARGET=local on Kubernetes and etcd from their releases, and
the node target on CRI-O's newest static bundle. They need K8S_BIN_DIR / CRIO_BIN_DIR (run by hand); the
download logic itself is in tests/unit/test_release_downloads.py, and containerd's tarballs run in CI
(test_node_containerd.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conformance.core.options import default_cache
from conformance.kube import binaries
from conformance.runtimes.crio import crio_version
from tests.support.leftovers import leftovers
from tests.support.releases import Layout, serve
from tests.support.suite import run_suite

pytestmark = pytest.mark.runtime


def _etcd() -> tuple[str, Path]:
    etcd = os.environ.get("ETCD_BIN")
    if not etcd:
        pytest.skip("needs ETCD_BIN=<an etcd binary> to lay out as etcd's release")
    return binaries.tool_version(Path(etcd)).removeprefix("v"), Path(etcd)


def test_local_from_kubernetes_and_etcd_releases(k8s_bin_dir: Path, tmp_path: Path, state_root: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    version = binaries.check_folder(k8s_bin_dir, "K8S_BIN_DIR", binaries.ALL).removeprefix("v")
    etcd_version, etcd = _etcd()
    layout = Layout(tmp_path / "www")
    layout.kubernetes(version, k8s_bin_dir)
    layout.etcd(etcd_version, etcd)
    cache = default_cache()
    shutil.rmtree(cache / "kubernetes" / f"kubernetes-{version}", ignore_errors=True)
    shutil.rmtree(cache / "runtimes" / f"etcd-{etcd_version}", ignore_errors=True)
    with serve(layout) as server:
        for name in ("K8S_RELEASE_URL", "ETCD_RELEASE_URL"):  # containerd stays Debian's
            monkeypatch.setenv(name, server.env()[name])
        monkeypatch.setenv("ETCD_VERSION", etcd_version)  # kubeadm may name a newer etcd than the one at hand
        code, out, _ = run_suite(tmp_path / "results", state_root, "--target", "local", "--k8s",
                                 version.rsplit(".", 1)[0], timeout=1800)
        assert code == 0, out[-6000:]
        assert server.requests[f"/k8s/stable-{version.rsplit('.', 1)[0]}.txt"] == 1
        assert server.downloads() == 2 * 5 + 2  # 5 binaries + .sha256 each; etcd's tarball + SHA256SUMS
        binaries.resolve(None, version, None, cache)
        assert server.downloads() == 2 * 5 + 2  # a second time: nothing downloaded
    doc = json.loads((tmp_path / "results" / "results.json").read_text())
    assert doc["summary"]["exit_code"] == 0 and "error" not in doc["summary"]["counts"]
    assert doc["kubernetes"]["kubernetes_from"].startswith(f"K8S={version.rsplit('.', 1)[0]} from http")
    assert doc["kubernetes"]["etcd"] == etcd_version
    assert leftovers(state_root, 0) == []


def test_node_target_on_the_newest_crio_bundle(crio_bin_dir: Path, tmp_path: Path, state_root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    version = crio_version(crio_bin_dir)
    layout = Layout(tmp_path / "www")
    layout.crio(version, crio_bin_dir)
    shutil.rmtree(default_cache() / "runtimes" / f"crio-{version}", ignore_errors=True)
    with serve(layout) as server:
        monkeypatch.setenv("CRIO_RELEASE_URL", server.env()["CRIO_RELEASE_URL"])
        code, out, _ = run_suite(tmp_path / "results", state_root, "--runtime", "crio",  # no VERSION: the newest
                                 "--handler", "runc")  # exactly the bundle's runc
        assert code == 0, out[-6000:]
        assert server.downloads() == 2  # the bundle and its .sha256sum
    doc = json.loads((tmp_path / "results" / "results.json").read_text())
    assert doc["runtime"]["name"] == "cri-o" and doc["runtime"]["version"] == version
    assert doc["runtime"]["oci_runtime"]["path"].startswith(str(default_cache() / "runtimes" / f"crio-{version}"))
    assert set(doc["summary"]["counts"]) <= {"pass", "unsupported", "known-failure"}
    assert leftovers(state_root, 0) == []

"""TARGET=local's own code without a cluster: Kubernetes binaries (resolution, URLs, checksums), the PKI,
the kubelet's configuration and the private paths it gets. The cluster itself runs in tests/integration."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from conformance.errors import ProvisionError
from conformance.kube import binaries
from conformance.runtimes import download
from conformance.runtimes.download import parse_checksum
from conformance.targets.local.controlplane import TUNABLES, kubelet_config
from conformance.targets.local.pki import Pki
from tests.support.fakes import bin as fakebin


def test_release_resolution_urls_and_checksums() -> None:
    assert binaries.k8s_minor("1.35") == "1.35" and binaries.k8s_minor("v1.35.x") == "1.35"
    assert binaries.k8s_minor("1.35.1") is None
    with pytest.raises(ProvisionError, match=r"major\.minor"):
        binaries.k8s_minor("latest")
    assert binaries.stable_url("1.35") == "https://dl.k8s.io/release/stable-1.35.txt"
    assert binaries.parse_stable("v1.35.1\n", "1.35") == "1.35.1"
    with pytest.raises(ProvisionError, match=r"not a 1\.35\.z"):
        binaries.parse_stable("v1.36.0", "1.35")
    url, sums = binaries.binary_url("1.35.1", "kubelet", "amd64")
    assert url == "https://dl.k8s.io/release/v1.35.1/bin/linux/amd64/kubelet" and sums == url + ".sha256"
    digest = hashlib.sha256(b"kubelet").hexdigest()
    assert parse_checksum(digest, "kubelet") == digest and parse_checksum(f"{digest}  kubelet\n", "kubelet") == digest
    with pytest.raises(ProvisionError):
        parse_checksum("<html>not found</html>", "kubelet")


def test_folder_of_binaries(tmp_path: Path) -> None:
    for name in binaries.SERVER:
        fakebin.tool(tmp_path / name, "Kubernetes v1.36.2")
    assert binaries.check_folder(tmp_path, "K8S_BIN_DIR") == "v1.36.2"
    fakebin.tool(tmp_path / "kubelet", "Kubernetes v1.35.0")
    with pytest.raises(ProvisionError, match="disagree"):
        binaries.check_folder(tmp_path, "K8S_BIN_DIR")
    (tmp_path / "kube-scheduler").unlink()
    with pytest.raises(ProvisionError, match="missing kube-scheduler"):
        binaries.check_folder(tmp_path, "K8S_BIN_DIR")


def test_no_binaries_and_no_network_name_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProvisionError, match=r"K8S_BIN_DIR=.* or K8S=") as exc:
        binaries.kubernetes(None, None, tmp_path)
    assert "\n" not in str(exc.value)

    def offline(url: str, timeout: float = 30) -> bytes:
        raise ProvisionError(f"cannot download {url}: [Errno -2] Name or service not known")

    monkeypatch.setattr(download, "get", offline)
    with pytest.raises(ProvisionError) as exc:
        binaries.kubernetes(None, "1.35", tmp_path)
    assert "\n" not in str(exc.value) and "stable-1.35.txt" in str(exc.value) and "K8S_BIN_DIR" in str(exc.value)


def test_etcd_from_etcd_bin(tmp_path: Path) -> None:
    etcd = fakebin.tool(tmp_path / "etcd", "etcd Version: 3.5.16")
    assert binaries.etcd(etcd, tmp_path) == (etcd, "3.5.16")
    with pytest.raises(ProvisionError, match="no such file"):
        binaries.etcd(tmp_path / "missing", tmp_path)


def test_pki_serving_and_client_certificates(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    server = pki.issue("apiserver", "kube-apiserver", dns=("localhost",), ips=("127.0.0.1",), server=True)
    cert = x509.load_pem_x509_certificate(server.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    client = pki.issue("kubelet", "system:node:n1", "system:nodes")
    subject = x509.load_pem_x509_certificate(client.cert.read_bytes()).subject
    assert subject.rfc4514_string() == "O=system:nodes,CN=system:node:n1"
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert oct(client.key.stat().st_mode)[-3:] == "600"
    config = yaml.safe_load(pki.kubeconfig("kubelet", "https://127.0.0.1:6443", client).read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"]["client-key"] == str(client.key)


def test_kubelet_touches_nothing_of_the_host() -> None:
    config = kubelet_config(Path("/s/pki"), (Path("/s/k.crt"), Path("/s/k.key")), "unix:///s/crio.sock", 10250,
                            "/sgpconf-crio-1")
    assert config["address"] == "127.0.0.1" and config["readOnlyPort"] == 0
    assert config["cgroupRoot"] == "/sgpconf-crio-1" and config["cgroupDriver"] == "cgroupfs"
    assert config["protectKernelDefaults"] is True  # reads the private tunables, never writes sysctls
    assert config["failCgroupV1"] is False and config["makeIPTablesUtilChains"] is False
    assert config["oomScoreAdj"] >= 0  # never lowered without CAP_SYS_RESOURCE
    assert config["containerRuntimeEndpoint"] == config["imageServiceEndpoint"] == "unix:///s/crio.sock"
    assert config["volumePluginDir"].startswith("/var/lib/kubelet/")  # the private /var/lib, not /usr/libexec
    assert TUNABLES["vm/overcommit_memory"] == 1 and TUNABLES["kernel/panic"] == 10


class DyingCluster:
    """Stands in for LocalCluster in hold(): a component exits after a few polls."""

    def __init__(self, polls: int):
        self.polls = polls

    def exited(self) -> list[str]:
        self.polls -= 1
        return ["kubelet"] if self.polls < 0 else []


def test_keep_holds_the_local_cluster_until_a_component_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.core.catalogue import PROJECT, Catalogue
    from conformance.core.options import Options
    from conformance.kube import pods
    from conformance.targets.local import session as local_session

    monkeypatch.setattr(local_session.time, "sleep", lambda s: None)
    catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    session = local_session.LocalSession(Options(target="local", keep=True), catalogue)
    kube = pods.KubeTarget(None, {}, "r1")  # type: ignore[arg-type]
    session.cluster, session.kube, session.kubeconfig = DyingCluster(3), kube, "/x/admin.kubeconfig"  # type: ignore[assignment]
    said: list[str] = []
    session.hold(said.append)
    assert said == ["KEEP=1: the cluster keeps running with the cases' pods in namespace sgp-r1: "
                    "KUBECONFIG=/x/admin.kubeconfig", "KEEP=1: Ctrl-C (or SIGTERM) stops it and removes everything",
                    "KEEP=1: kubelet exited; stopping the cluster"]
    unkept = local_session.LocalSession(Options(target="local"), catalogue)
    unkept.cluster, unkept.kube = DyingCluster(3), kube  # type: ignore[assignment]
    unkept.hold(said.append)
    assert len(said) == 3  # without KEEP nothing is held or said

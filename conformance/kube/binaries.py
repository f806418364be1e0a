"""Kubernetes binaries and etcd, for every target that runs its own Kubernetes (TARGET=local, built kind node
images).

Kubernetes: K8S_BIN_DIR, or K8S=<x.y[.z]>: the official release binaries
(`<K8S_RELEASE_URL>/v<v>/bin/linux/<arch>/<name>`, each checked against its `.sha256`; a minor resolved
through `stable-<minor>.txt`). etcd: ETCD_BIN; else, when Kubernetes comes from its releases (or
ETCD_RELEASE_URL is set), etcd's release tarball (`<ETCD_RELEASE_URL>/v<v>/etcd-v<v>-linux-<arch>.tar.gz`,
checked against `SHA256SUMS`) of the version kubeadm names, or ETCD_VERSION; else Debian's etcd-server
package fetched privately into the cache. Downloads land in the cache once per version.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conformance.core.versions import binary_version, minor_or_exact, parse_marker, version_key
from conformance.errors import ProvisionError
from conformance.runtimes import debian, download
from conformance.runtimes.download import ETCD, KUBERNETES

SERVER = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
# a built kind node image needs these too (kubeadm also names the etcd release to download)
ALL = (*SERVER, "kubeadm", "kubectl", "kube-proxy")
NO_SOURCE = ("TARGET=local needs K8S_BIN_DIR=<folder with kube-apiserver, kube-controller-manager, kube-scheduler, "
             "kubelet> or K8S=<x.y> (the official release binaries, downloaded from K8S_RELEASE_URL)")
ETCD_MIN = (3, 5)


@dataclass(frozen=True)
class Binaries:
    folder: Path  # the four Kubernetes server binaries
    version: str  # what kubelet --version says, e.g. v1.36.2
    etcd: Path
    etcd_version: str
    source: str  # K8S_BIN_DIR=..., K8S=..., for messages and results.json

    def __getitem__(self, name: str) -> Path:
        return self.etcd if name == "etcd" else self.folder / name

    def to_json(self) -> dict:
        return {"kubernetes": self.version, "kubernetes_from": self.source, "etcd": self.etcd_version,
                "etcd_path": str(self.etcd)}


def stable_url(minor: str) -> str:
    return f"{KUBERNETES.base()}/stable-{minor}.txt"


def binary_url(version: str, name: str, arch: str) -> tuple[str, str]:
    """(binary URL, its .sha256 URL) for release `version` ('1.35.1' or 'v1.35.1')."""
    url = f"{KUBERNETES.base()}/v{version.removeprefix('v')}/bin/linux/{arch}/{name}"
    return url, url + ".sha256"


def k8s_minor(wanted: str) -> str | None:
    """'1.35' → '1.35' (resolved through stable-1.35.txt); an exact '1.35.1' → None."""
    return minor_or_exact(wanted, "K8S")


def parse_stable(text: str, minor: str) -> str:
    return parse_marker(text, minor, stable_url(minor))


def tool_version(path: Path) -> str:
    """`<binary> --version` → 'v1.36.2' / '3.5.16'."""
    return binary_version(path, r"(?:Kubernetes|etcd Version:)\s+(v?\d+\.\d+\.\d+\S*)")


def check_folder(folder: Path, label: str, names: tuple[str, ...] = SERVER) -> str:
    """The Kubernetes version of a folder of binaries; ProvisionError naming what is missing."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ProvisionError(f"{label}: missing {', '.join(missing)}")
    checked = [n for n in names if n in SERVER]
    with ThreadPoolExecutor(max_workers=len(checked) or 1) as pool:  # each `--version` a Go binary's start
        versions = dict(zip(checked, pool.map(lambda n: tool_version(folder / n), checked), strict=True))
    if len(set(versions.values())) != 1:
        raise ProvisionError(f"{label}: the binaries disagree on their version: {versions}")
    return versions["kubelet"]


def download_release(version: str, dest: Path, names: tuple[str, ...] = ALL) -> Path:
    """`names` of Kubernetes release `version`, each checked against its .sha256, into dest/kubernetes-<v>/."""
    folder = dest / f"kubernetes-{version}"
    have = (folder / download.COMPLETE).read_text().split() if download.done(folder) else []
    wanted = [n for n in dict.fromkeys(names) if n not in have]
    for name in wanted:
        url, sum_url = binary_url(version, name, download.arch())
        download.verified(url, sum_url, folder / name)
        (folder / name).chmod(0o755)
    if wanted:
        download.mark_done(folder, " ".join(sorted({*have, *wanted})))
    return folder


def release_version(wanted: str) -> str:
    """K8S=1.36 → the release stable-1.36.txt names; K8S=1.36.2 → 1.36.2."""
    minor = k8s_minor(wanted)
    return parse_stable(download.get(stable_url(minor)).decode(errors="replace"), minor) if minor else \
        wanted.strip().removeprefix("v")


def kubernetes(bin_dir: Path | None, wanted: str | None, cache: Path, names: tuple[str, ...] = SERVER,
               ) -> tuple[Path, str, str]:
    """(folder, version, source) from K8S_BIN_DIR or K8S."""
    if bin_dir is not None:
        label = f"K8S_BIN_DIR={bin_dir}"
        return bin_dir, check_folder(bin_dir, label, names), label
    if not wanted:
        raise ProvisionError(NO_SOURCE)
    try:
        folder = download_release(release_version(wanted), cache / "kubernetes", (*names, "kubeadm"))
    except ProvisionError as exc:
        raise ProvisionError(f"{exc}. {NO_SOURCE}") from exc
    return folder, check_folder(folder, f"K8S={wanted}", names), f"K8S={wanted} from {KUBERNETES.base()}"


def kubeadm_etcd(kubeadm: Path, k8s_version: str) -> str:
    """The etcd release kubeadm of `k8s_version` runs ('3.6.8' from `registry.k8s.io/etcd:3.6.8-0`)."""
    argv = [str(kubeadm), "config", "images", "list", "--kubernetes-version", k8s_version]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"{kubeadm} does not run: {exc}") from exc
    return parse_kubeadm_etcd(out, kubeadm)


def parse_kubeadm_etcd(images: str, where: object) -> str:
    match = re.search(r"/etcd:v?(\d+\.\d+\.\d+)", images)
    if not match:
        raise ProvisionError(f"{where} config images list names no etcd image")
    return match.group(1)


def etcd_urls(version: str) -> tuple[str, str]:
    """(tarball URL, SHA256SUMS URL) of etcd release `version`."""
    folder = f"{ETCD.base()}/v{version}"
    return f"{folder}/etcd-v{version}-linux-{download.arch()}.tar.gz", f"{folder}/SHA256SUMS"


def etcd_release(version: str, cache: Path) -> Path:
    """etcd of release `version`, downloaded, checked and unpacked into the cache once; its binary."""
    url, sums = etcd_urls(version)
    root = download.unpacked(url, sums, cache / "runtimes" / f"etcd-{version}")
    found = sorted(root.glob("*/etcd"))
    if not found:
        raise ProvisionError(f"{url}: the tarball has no etcd-v{version}-linux-*/etcd")
    return found[0]


def etcd(etcd_bin: Path | None, cache: Path, kubeadm: Path | None = None, k8s_version: str = "") -> tuple[Path, str]:
    """(etcd binary, version): ETCD_BIN; etcd's release (ETCD_VERSION, else the one `kubeadm` names) when
    Kubernetes came from its releases or ETCD_RELEASE_URL is set; else Debian's etcd-server >= 3.5."""
    if etcd_bin is not None:
        if not etcd_bin.is_file():
            raise ProvisionError(f"ETCD_BIN={etcd_bin}: no such file")
        return etcd_bin, tool_version(etcd_bin)
    if kubeadm is not None or ETCD.overridden():
        version = os.environ.get("ETCD_VERSION", "").strip().removeprefix("v")
        if not version:
            if kubeadm is None:
                raise ProvisionError("ETCD_RELEASE_URL is set: give ETCD_VERSION=<x.y.z> (no kubeadm to ask)")
            version = kubeadm_etcd(kubeadm, k8s_version)
        binary = etcd_release(version, cache)
        return binary, tool_version(binary)
    return debian_etcd(cache)


def debian_etcd(cache: Path) -> tuple[Path, str]:
    """The newest etcd-server >= 3.5 in Debian's trixie or sid, fetched into the cache."""
    if not debian.available():
        raise ProvisionError("TARGET=local needs etcd: set ETCD_BIN=<etcd binary> (no Debian archive here to fetch "
                             "etcd-server from)")
    archive = debian.Archive(cache)
    candidates = [p for suite in ("trixie", "sid") for p in archive.versions(suite, "etcd-server")
                  if version_key(p.upstream)[:2] >= ETCD_MIN]
    if not candidates:
        raise ProvisionError("Debian's archive has no etcd-server >= 3.5; set ETCD_BIN=<etcd binary>")
    # the oldest suite's build first: it needs the oldest glibc
    best = candidates[0]
    root = archive.fetch(best, cache / "runtimes" / f"etcd-server-{best.version}")
    binary = root / "usr" / "bin" / "etcd"
    return binary, tool_version(binary)


def resolve(bin_dir: Path | None, wanted: str | None, etcd_bin: Path | None, cache: Path) -> Binaries:
    folder, version, source = kubernetes(bin_dir, wanted, cache)
    kubeadm = folder / "kubeadm" if bin_dir is None else None
    etcd_path, etcd_version = etcd(etcd_bin, cache, kubeadm, version)
    return Binaries(folder, version, etcd_path, etcd_version, source)

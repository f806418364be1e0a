"""Kubernetes server binaries and etcd for TARGET=local.

Kubernetes: K8S_BIN_DIR (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet), or K8S=<x.y[.z]>:
the official release binaries, each checked against its published .sha256 (resolution and URLs are
unit-tested; the download needs the internet). etcd: ETCD_BIN, else Debian's etcd-server package fetched
privately into the cache (never installed system-wide).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes import debian, release
from conformance.runtimes.versions import binary_version, minor_or_exact, parse_marker, version_key

SERVER = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
DL = "https://dl.k8s.io/release"
NO_SOURCE = ("TARGET=local needs K8S_BIN_DIR=<folder with kube-apiserver, kube-controller-manager, kube-scheduler, "
             "kubelet> or K8S=<x.y> (the official release binaries, downloaded)")
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
    return f"{DL}/stable-{minor}.txt"


def binary_url(version: str, name: str, arch: str) -> tuple[str, str]:
    """(binary URL, its .sha256 URL) for release `version` ('1.35.1' or 'v1.35.1')."""
    url = f"{DL}/v{version.removeprefix('v')}/bin/linux/{arch}/{name}"
    return url, url + ".sha256"


def k8s_minor(wanted: str) -> str | None:
    """'1.35' → '1.35' (resolved through stable-1.35.txt); an exact '1.35.1' → None."""
    return minor_or_exact(wanted, "K8S")


def parse_stable(text: str, minor: str) -> str:
    return parse_marker(text, minor, stable_url(minor))


def parse_sha256(text: str) -> str:
    """A .sha256 file of dl.k8s.io: the hex digest alone (or sha256sum style)."""
    parts = text.split()
    if not parts or not re.fullmatch(r"[0-9a-f]{64}", parts[0].lower()):
        raise ProvisionError(f"not a sha256 file: {text[:80]!r}")
    return parts[0].lower()


def tool_version(path: Path) -> str:
    """`<binary> --version` → 'v1.36.2' / '3.5.16'."""
    return binary_version(path, r"(?:Kubernetes|etcd Version:)\s+(v?\d+\.\d+\.\d+\S*)")


def check_folder(folder: Path, label: str) -> str:
    """The Kubernetes version of a folder of server binaries; ProvisionError naming what is missing."""
    missing = [n for n in SERVER if not (folder / n).is_file()]
    if missing:
        raise ProvisionError(f"{label}: missing {', '.join(missing)}")
    versions = {n: tool_version(folder / n) for n in SERVER}
    if len(set(versions.values())) != 1:
        raise ProvisionError(f"{label}: the binaries disagree on their version: {versions}")
    return versions["kubelet"]


def download(version: str, dest: Path) -> Path:  # pragma: no cover - needs the internet
    """The four server binaries of release `version`, each verified against its .sha256, into dest/<version>/."""
    folder = dest / f"kubernetes-{version}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in SERVER:
        url, sum_url = binary_url(version, name, release.arch())
        expected = parse_sha256(release._get(sum_url, 30).decode())
        data = release._get(url, 900)
        if hashlib.sha256(data).hexdigest() != expected:
            raise ProvisionError(f"{url}: checksum mismatch")
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o755)
    (folder / ".complete").write_text(f"{DL}/v{version}\n")
    return folder


def kubernetes(bin_dir: Path | None, wanted: str | None, cache: Path) -> tuple[Path, str, str]:
    """(folder, version, source) from K8S_BIN_DIR or K8S."""
    if bin_dir is not None:
        return bin_dir, check_folder(bin_dir, f"K8S_BIN_DIR={bin_dir}"), f"K8S_BIN_DIR={bin_dir}"
    if not wanted:
        raise ProvisionError(NO_SOURCE)
    try:
        minor = k8s_minor(wanted)
        version = parse_stable(release._get(stable_url(minor), 30).decode(), minor) if minor else \
            wanted.strip().removeprefix("v")
        folder = download(version, cache / "kubernetes")
    except ProvisionError as exc:
        raise ProvisionError(f"{exc}. {NO_SOURCE}") from exc
    return folder, check_folder(folder, f"K8S={wanted}"), f"K8S={wanted}"


def etcd(etcd_bin: Path | None, cache: Path) -> tuple[Path, str]:
    """(etcd binary, version): ETCD_BIN, else the newest etcd-server >= 3.5 in Debian's trixie or sid."""
    if etcd_bin is not None:
        if not etcd_bin.is_file():
            raise ProvisionError(f"ETCD_BIN={etcd_bin}: no such file")
        return etcd_bin, tool_version(etcd_bin)
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
    etcd_path, etcd_version = etcd(etcd_bin, cache)
    return Binaries(folder, version, etcd_path, etcd_version, source)

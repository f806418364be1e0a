"""Release downloads over HTTP(S): where each project publishes (a base URL, overridable per source), small
text files (markers, checksums, listings), and files checked against the checksum their project publishes,
written into the cache once. A download that is cut short or does not match is refused, naming the file."""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import re
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes import tarsafe

ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}
CHUNK = 1 << 20
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
COMPLETE = ".complete"


@dataclass(frozen=True)
class Source:
    """One project's release downloads: the variable that overrides its base URL, and the default."""

    variable: str
    default: str

    def base(self) -> str:
        return (os.environ.get(self.variable) or self.default).rstrip("/")

    def overridden(self) -> bool:
        return bool(os.environ.get(self.variable))


KUBERNETES = Source("K8S_RELEASE_URL", "https://dl.k8s.io/release")
ETCD = Source("ETCD_RELEASE_URL", "https://github.com/etcd-io/etcd/releases/download")
# assets below <base>/download/v<version>/; the base itself lists the releases in GitHub's API shape
CONTAINERD = Source("CONTAINERD_RELEASE_URL", "https://github.com/containerd/containerd/releases")
CONTAINERD_LISTING = "https://api.github.com/repos/containerd/containerd/releases"
CRIO = Source("CRIO_RELEASE_URL", "https://storage.googleapis.com/cri-o")


class Missing(ProvisionError):
    """The server answered that the file is not there (404, or 403 as object stores say it)."""


def arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise ProvisionError(f"no release download for architecture {machine}")
    return ARCHES[machine]


def get(url: str, timeout: float = 30) -> bytes:
    """A small file (a marker, a checksum file, a listing), read whole."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (403, 404):
            raise Missing(f"{url}: not found (HTTP {exc.code})") from exc
        raise ProvisionError(f"cannot download {url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ProvisionError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc


def parse_checksum(text: str, filename: str) -> str:
    """The sha256 for `filename` in a checksum file: the digest alone (Kubernetes' .sha256), or
    sha256sum lines ('<hex>  <name>' / '<hex> *<name>', containerd's, CRI-O's and etcd's)."""
    words = text.split()
    if len(words) == 1 and SHA256.fullmatch(words[0]):
        return words[0].lower()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and Path(parts[1].lstrip("*")).name == filename and SHA256.fullmatch(parts[0]):
            return parts[0].lower()
    raise ProvisionError(f"no sha256 for {filename} in its checksum file")


def fetch_file(url: str, target: Path, expected: str, timeout: float = 900) -> Path:
    """`url` streamed into `target`, refused (and removed) unless its length and sha256 are right."""
    name = url.rsplit("/", 1)[1]
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, partial.open("wb") as out:
            announced = resp.headers.get("Content-Length")
            while chunk := resp.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise ProvisionError(f"{name}: download from {url} failed: {getattr(exc, 'reason', exc)}") from exc
    except http.client.HTTPException as exc:  # IncompleteRead: the connection ended early
        partial.unlink(missing_ok=True)
        raise ProvisionError(f"{name}: download from {url} was cut short ({exc!r})") from exc
    if announced is not None and int(announced) != size:
        partial.unlink(missing_ok=True)
        raise ProvisionError(f"{name}: download from {url} was cut short ({size} of {announced} bytes)")
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise ProvisionError(f"{name}: checksum mismatch (expected sha256 {expected}, got {digest.hexdigest()}, "
                             f"{size} bytes from {url})")
    partial.replace(target)
    return target


def verified(url: str, sums_url: str, target: Path) -> Path:
    """`url` into `target`, checked against the sha256 its checksum file `sums_url` gives."""
    expected = parse_checksum(get(sums_url).decode(errors="replace"), url.rsplit("/", 1)[1])
    return fetch_file(url, target, expected)


def done(folder: Path) -> bool:
    """Was `folder` completed by an earlier run (so nothing is downloaded again)?"""
    return (folder / COMPLETE).is_file()


def origin(folder: Path) -> str | None:
    """The URL a release folder holding `folder` was downloaded from, None for anything else (a Debian package
    unpacked by debian.Archive.fetch has an empty marker)."""
    for parent in (folder, *folder.parents):
        if done(parent):
            words = (parent / COMPLETE).read_text().split()
            return words[0] if words and words[0].startswith(("http://", "https://")) else None
    return None


def mark_done(folder: Path, note: str) -> None:
    (folder / COMPLETE).write_text(note + "\n")


def unpack(archive: Path, target: Path) -> None:
    """A release tarball into `target` (no links or paths that leave it)."""
    try:
        with tarfile.open(archive) as tar:
            tarsafe.extract(tar, target, "data")
    except (tarfile.TarError, OSError) as exc:
        raise ProvisionError(f"{archive.name}: cannot unpack: {exc}") from exc


def unpacked(url: str, sums_url: str, target: Path) -> Path:
    """The release tarball at `url`, checked and unpacked into `target` (once: later runs download nothing)."""
    if done(target):
        return target
    name = url.rsplit("/", 1)[1]
    archive = verified(url, sums_url, target / name)
    unpack(archive, target)
    archive.unlink()
    mark_done(target, f"{url}")
    return target

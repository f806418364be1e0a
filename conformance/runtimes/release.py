"""containerd's official release tarballs: the fallback where Debian's archive is not configured
(an Ubuntu CI runner, say). Resolution is pure and unit-tested; the download is checksum-verified."""

from __future__ import annotations

import hashlib
import json
import platform
import tarfile
import urllib.request
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes.versions import matches, version_key

RELEASES_API = "https://api.github.com/repos/containerd/containerd/releases?per_page=100"
DOWNLOAD = "https://github.com/containerd/containerd/releases/download/v{v}/containerd-{v}-linux-{arch}.tar.gz"
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}


def arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise ProvisionError(f"no containerd release for architecture {machine}")
    return ARCHES[machine]


def pick(releases: list[dict], wanted: str) -> str:
    """The newest non-prerelease tag matching `wanted` ('2', '2.x', '1.7', '2.1.4')."""
    tags = [r["tag_name"].lstrip("v") for r in releases
            if not r.get("prerelease") and not r.get("draft") and r.get("tag_name", "").startswith("v")]
    candidates = [t for t in tags if matches(t, wanted)]
    if not candidates:
        raise ProvisionError(f"no containerd release matches VERSION={wanted}")
    return max(candidates, key=version_key)


def urls(version: str, machine: str | None = None) -> tuple[str, str]:
    """Tarball URL and its .sha256sum URL."""
    url = DOWNLOAD.format(v=version, arch=arch(machine))
    return url, url + ".sha256sum"


def parse_checksum(text: str, filename: str) -> str:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename and len(parts[0]) == 64:
            return parts[0].lower()
    raise ProvisionError(f"no checksum for {filename} in the .sha256sum file")


def verify(data: bytes, expected_hex: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hex:
        raise ProvisionError(f"checksum mismatch: expected {expected_hex}, got {actual}")


def fetch(wanted: str, dest: Path) -> tuple[str, Path]:  # pragma: no cover - needs the internet
    """Resolve, download, verify and unpack a release into `dest`/<version>/bin."""
    with urllib.request.urlopen(RELEASES_API, timeout=30) as resp:
        version = pick(json.load(resp), wanted)
    target = dest / f"containerd-{version}"
    if (target / ".complete").exists():
        return version, target
    url, sum_url = urls(version)
    with urllib.request.urlopen(sum_url, timeout=30) as resp:
        expected = parse_checksum(resp.read().decode(), url.rsplit("/", 1)[1])
    with urllib.request.urlopen(url, timeout=300) as resp:
        data = resp.read()
    verify(data, expected)
    target.mkdir(parents=True, exist_ok=True)
    archive = target / "release.tar.gz"
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    (target / ".complete").touch()
    return version, target

"""Official release downloads, checksum-verified: containerd's release tarballs (where Debian's archive
is not configured) and CRI-O's static bundles (CRI-O is not in Debian). Resolution, URLs and checksum
parsing are pure and unit-tested; the downloads need the internet."""

from __future__ import annotations

import hashlib
import json
import platform
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from conformance import tarsafe
from conformance.errors import ProvisionError
from conformance.runtimes.versions import matches, minor_or_exact, parse_marker, version_key

ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}

CONTAINERD_RELEASES = "https://api.github.com/repos/containerd/containerd/releases?per_page=100"
CONTAINERD_TARBALL = "https://github.com/containerd/containerd/releases/download/v{v}/containerd-{v}-linux-{arch}.tar.gz"
# CRI-O's release process writes latest-<major.minor>.txt (holding the tag) next to the bundles.
CRIO_BUCKET = "https://storage.googleapis.com/cri-o"
CRIO_LATEST = CRIO_BUCKET + "/latest-{minor}.txt"
CRIO_BUNDLE = CRIO_BUCKET + "/artifacts/cri-o.{arch}.v{v}.tar.gz"


def arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise ProvisionError(f"no release download for architecture {machine}")
    return ARCHES[machine]


def pick(releases: list[dict], wanted: str) -> str:
    """The newest non-prerelease containerd tag matching `wanted` ('2', '2.x', '1.7', '2.1.4')."""
    tags = [r["tag_name"].lstrip("v") for r in releases
            if not r.get("prerelease") and not r.get("draft") and r.get("tag_name", "").startswith("v")]
    candidates = [t for t in tags if matches(t, wanted)]
    if not candidates:
        raise ProvisionError(f"no containerd release matches VERSION={wanted}")
    return max(candidates, key=version_key)


def urls(version: str, machine: str | None = None) -> tuple[str, str]:
    """containerd: tarball URL and its .sha256sum URL."""
    url = CONTAINERD_TARBALL.format(v=version, arch=arch(machine))
    return url, url + ".sha256sum"


def crio_minor(wanted: str) -> str | None:
    """'1.34' → '1.34' (resolved through latest-1.34.txt); an exact '1.34.2' → None."""
    return minor_or_exact(wanted, "VERSION")


def crio_latest_url(minor: str) -> str:
    return CRIO_LATEST.format(minor=minor)


def parse_crio_latest(text: str, minor: str) -> str:
    return parse_marker(text, minor, crio_latest_url(minor))


def crio_urls(version: str, machine: str | None = None) -> tuple[str, str]:
    """CRI-O static bundle URL and its .sha256sum URL."""
    url = CRIO_BUNDLE.format(v=version, arch=arch(machine))
    return url, url + ".sha256sum"


def parse_checksum(text: str, filename: str) -> str:
    """The sha256 for `filename` in a sha256sum-style file ('<hex>  <name>' or '<hex> *<name>')."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and Path(parts[1].lstrip("*")).name == filename and len(parts[0]) == 64:
            return parts[0].lower()
    raise ProvisionError(f"no checksum for {filename} in the .sha256sum file")


def verify(data: bytes, expected_hex: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hex:
        raise ProvisionError(f"checksum mismatch: expected {expected_hex}, got {actual}")


def _get(url: str, timeout: float) -> bytes:  # pragma: no cover - needs the internet
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise ProvisionError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc


def download(url: str, sum_url: str, target: Path) -> Path:  # pragma: no cover - needs the internet
    """Download `url`, check it against `sum_url`, unpack it into `target` (once: marked .complete)."""
    if (target / ".complete").exists():
        return target
    expected = parse_checksum(_get(sum_url, 30).decode(), url.rsplit("/", 1)[1])
    data = _get(url, 600)
    verify(data, expected)
    target.mkdir(parents=True, exist_ok=True)
    archive = target / url.rsplit("/", 1)[1]
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        tarsafe.extract(tar, target, "data")
    (target / ".complete").write_text(f"{url} sha256 {expected}\n")
    return target


def fetch(wanted: str, dest: Path) -> tuple[str, Path]:  # pragma: no cover - needs the internet
    """containerd: resolve, download, verify and unpack a release into `dest`/containerd-<version>/."""
    version = pick(json.loads(_get(CONTAINERD_RELEASES, 30)), wanted)
    url, sum_url = urls(version)
    return version, download(url, sum_url, dest / f"containerd-{version}")


def fetch_crio(wanted: str, dest: Path) -> tuple[str, Path]:  # pragma: no cover - needs the internet
    """CRI-O: resolve, download, verify and unpack a static bundle; returns (version, its bin/ folder)."""
    minor = crio_minor(wanted)
    version = parse_crio_latest(_get(crio_latest_url(minor), 30).decode(), minor) if minor else \
        wanted.strip().removeprefix("v")
    url, sum_url = crio_urls(version)
    root = download(url, sum_url, dest / f"crio-{version}")
    bins = sorted(root.glob("*/bin/crio"))
    if not bins:
        raise ProvisionError(f"{url}: the bundle has no */bin/crio")
    return version, bins[0].parent

"""containerd's release tarballs and CRI-O's static bundles, as each project publishes them, checked against
their published checksums and unpacked into the cache once per version (conformance.runtimes.download).

containerd: `<CONTAINERD_RELEASE_URL>/download/v<v>/containerd-<v>-linux-<arch>.tar.gz` (+ `.sha256sum`);
a VERSION that is not exact is resolved through the list of releases (GitHub's API, or the overriding base
URL itself, which answers in the same shape). CRI-O: `<CRIO_RELEASE_URL>/artifacts/cri-o.<arch>.v<v>.tar.gz`
(+ `.sha256sum`); a minor is resolved through `latest-<minor>.txt`, which CRI-O's release job writes for
each tag, and no VERSION through the newest minor that has such a marker."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from conformance.core.versions import matches, minor_or_exact, parse_marker, version_key
from conformance.errors import ProvisionError
from conformance.runtimes import download
from conformance.runtimes.download import CONTAINERD, CRIO, arch

# CRI-O implements supplementalGroupsPolicy from 1.31: the newest release is looked for from there up
CRIO_FIRST_MINOR = (1, 31)


def pick(releases: list[dict], wanted: str) -> str:
    """The newest non-prerelease containerd tag matching `wanted` ('2', '2.x', '1.7', '2.1.4')."""
    tags = [r["tag_name"].lstrip("v") for r in releases
            if not r.get("prerelease") and not r.get("draft") and r.get("tag_name", "").startswith("v")]
    candidates = [t for t in tags if matches(t, wanted)]
    if not candidates:
        raise ProvisionError(f"no containerd release matches VERSION={wanted}")
    return max(candidates, key=version_key)


def listing_url() -> str:
    base = CONTAINERD.base() if CONTAINERD.overridden() else download.CONTAINERD_LISTING
    return base + "?per_page=100"


def urls(version: str, machine: str | None = None) -> tuple[str, str]:
    """containerd: tarball URL and its .sha256sum URL."""
    url = f"{CONTAINERD.base()}/download/v{version}/containerd-{version}-linux-{arch(machine)}.tar.gz"
    return url, url + ".sha256sum"


def crio_minor(wanted: str) -> str | None:
    """'1.34' → '1.34' (resolved through latest-1.34.txt); an exact '1.34.2' → None."""
    return minor_or_exact(wanted, "VERSION")


def crio_latest_url(minor: str) -> str:
    return f"{CRIO.base()}/latest-{minor}.txt"


def parse_crio_latest(text: str, minor: str) -> str:
    return parse_marker(text, minor, crio_latest_url(minor))


def crio_urls(version: str, machine: str | None = None) -> tuple[str, str]:
    """CRI-O static bundle URL and its .sha256sum URL."""
    url = f"{CRIO.base()}/artifacts/cri-o.{arch(machine)}.v{version}.tar.gz"
    return url, url + ".sha256sum"


def newest_crio(get: Callable[[str], bytes] = download.get, tries: int = 12) -> str:
    """CRI-O's newest release: the markers of the minors from 1.31 up, to the first missing one after one was
    found (a mirror may hold only newer minors: up to `tries` missing ones are passed over before any)."""
    major, minor = CRIO_FIRST_MINOR
    newest = None
    for _ in range(tries):
        name = f"{major}.{minor}"
        try:
            newest = parse_crio_latest(get(crio_latest_url(name)).decode(errors="replace"), name)
        except download.Missing:
            if newest is not None:
                return newest
        minor += 1
    if newest is None:
        raise ProvisionError(f"no CRI-O release marker latest-1.{CRIO_FIRST_MINOR[1]}.txt to latest-1.{minor - 1}.txt "
                             f"at {CRIO.base()}")
    return newest


def fetch(wanted: str, dest: Path) -> tuple[str, Path]:
    """containerd: resolve, download, verify and unpack a release into `dest`/containerd-<version>/."""
    exact = wanted.strip().removeprefix("v")
    if re.fullmatch(r"\d+\.\d+\.\d+", exact):
        version = exact
    else:
        try:
            version = pick(json.loads(download.get(listing_url())), wanted)
        except ValueError as exc:
            raise ProvisionError(f"{listing_url()}: not a list of releases ({exc})") from exc
    url, sum_url = urls(version)
    return version, download.unpacked(url, sum_url, dest / f"containerd-{version}")


def fetch_crio(wanted: str | None, dest: Path) -> tuple[str, Path]:
    """CRI-O: resolve, download, verify and unpack a static bundle; returns (version, its bin/ folder)."""
    if not wanted:
        version = newest_crio()
    else:
        minor = crio_minor(wanted)
        version = parse_crio_latest(download.get(crio_latest_url(minor)).decode(errors="replace"), minor) \
            if minor else wanted.strip().removeprefix("v")
    url, sum_url = crio_urls(version)
    root = download.unpacked(url, sum_url, dest / f"crio-{version}")
    bins = sorted(root.glob("*/bin/crio"))
    if not bins:
        raise ProvisionError(f"{url}: the bundle has no */bin/crio")
    return version, bins[0].parent

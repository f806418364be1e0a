"""Fetch runtime packages from Debian's archive into a private cache, never system-wide.

The archive URI is the one already configured on the machine; a private sources list per
suite is used with `apt-get download`, and the package is unpacked with `dpkg-deb -x`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import CommandError, ProvisionError
from conformance.runtimes.versions import matches, version_key

SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
SUITES = ("bookworm", "trixie", "sid")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LIST_MAX_AGE = 6 * 3600


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str  # Debian version, e.g. 2.1.9+ds1-5
    suite: str

    @property
    def upstream(self) -> str:
        """2.1.9+ds1-5 -> 2.1.9; 1.7.24~ds1-6+deb13u1 -> 1.7.24."""
        return re.split(r"[~+-]", self.version.split(":")[-1])[0]


def archive_uri() -> str | None:
    """The Debian archive URI configured on this machine, or None."""
    for path in SOURCES:
        if not path.exists():
            continue
        text = path.read_text()
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in match.group(1):
                return match.group(1)
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if "security" not in match.group(1) and "debian" in match.group(1):
                return match.group(1)
    return None


def available() -> bool:
    return shutil.which("apt-get") is not None and archive_uri() is not None


class Archive:
    """Private apt state for each suite under `cache/apt/<suite>`."""

    def __init__(self, cache: Path):
        self.cache = cache / "apt"

    def _opts(self, suite: str) -> list[str]:
        base = self.cache / suite
        return ["-o", f"Dir::Etc::sourcelist={base / 'debian.sources'}", "-o", "Dir::Etc::sourceparts=/dev/null",
                "-o", f"Dir::State::Lists={base / 'lists'}", "-o", f"Dir::Cache={base / 'cache'}",
                "-o", "Debug::NoLocking=1"]

    def update(self, suite: str) -> None:
        uri = archive_uri()
        if uri is None:
            raise ProvisionError("no Debian archive is configured on this machine")
        base = self.cache / suite
        stamp = base / "updated"
        if stamp.exists() and time.time() - stamp.stat().st_mtime < LIST_MAX_AGE:
            return
        (base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (base / "debian.sources").write_text(
            f"Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: main\nSigned-By: {KEYRING}\n")
        _run(["apt-get", "-q", *self._opts(suite), "update"])
        stamp.touch()

    def versions(self, suite: str, package: str) -> list[DebPackage]:
        self.update(suite)
        out = _run(["apt-cache", *self._opts(suite), "madison", package])
        found = []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 2 and parts[0] == package:
                found.append(DebPackage(package, parts[1], suite))
        return found

    def fetch(self, pkg: DebPackage, dest: Path) -> Path:
        """Download and unpack `pkg` into `dest` (cached: done once per version)."""
        marker = dest / ".complete"
        if marker.exists():
            return dest
        debs = self.cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", "-q", *self._opts(pkg.suite), "download", f"{pkg.name}={pkg.version}"], cwd=debs)
        deb = next(debs.glob(f"{pkg.name}_*{_quote_version(pkg.version)}_*.deb"), None)
        if deb is None:
            raise ProvisionError(f"apt-get download gave no .deb for {pkg.name}={pkg.version}")
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        marker.touch()
        return dest


def fetch_newest(cache: Path, package: str, wanted: str | None = None) -> tuple[DebPackage, Path] | None:
    """The newest build of `package` over all SUITES (whose version matches `wanted`, e.g. 1.7), unpacked into
    `cache/runtimes/<package>-<version>`: (package, its root); None when no suite has one."""
    archive = Archive(cache)
    found = [p for suite in SUITES for p in archive.versions(suite, package)
             if not wanted or matches(p.upstream, wanted)]
    if not found:
        return None
    best = max(found, key=lambda p: version_key(p.upstream))
    return best, archive.fetch(best, cache / "runtimes" / f"{package}-{best.version}")


def fetch_first(cache: Path, package: str, holds: str) -> Path | None:
    """The file `holds` (a path inside the package) of `package` from the first of SUITES whose build has it
    (the machine's own suite first: the oldest glibc), unpacked into `cache/runtimes/<package>-<version>`;
    None when no suite has it."""
    archive = Archive(cache)
    for suite in SUITES:
        found = archive.versions(suite, package)
        if found:
            path = archive.fetch(found[0], cache / "runtimes" / f"{package}-{found[0].version}") / holds
            if path.is_file():
                return path
    return None


def _quote_version(version: str) -> str:
    # apt writes ':' in an epoch as %3a in file names
    return version.replace(":", "%3a")


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=600)
    except FileNotFoundError as exc:
        raise ProvisionError(f"{argv[0]} not found") from exc
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout, res.stderr)
    return res.stdout

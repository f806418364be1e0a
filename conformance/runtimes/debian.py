"""Packages from Debian's archive, fetched over HTTP into a private cache and unpacked there, never installed:
no apt, no dpkg, so the same on Debian, Ubuntu and Fedora hosts.

The chain of trust is the archive's own: `dists/<suite>/InRelease` must carry a valid signature by one of
Debian's archive keys shipped with the project (keys/debian-archive.asc, their fingerprints pinned below);
`Packages.xz` must have the size and SHA-256 that InRelease gives; a `.deb` the size and SHA-256 that
Packages gives; source indexes (`main/source/Sources.xz`) likewise, and a source package's file (e.g. its
`.orig.tar.gz`) the size and SHA-256 its Sources record gives. Anything else is refused naming the file. The
mirror is DEBIAN_MIRROR, else the Debian archive this machine's apt sources name (read as a file; apt itself
is not needed)."""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import tarfile
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import pysequoia
from debian.deb822 import Packages, Release, Sources
from debian.debfile import DebFile

from conformance.core.versions import matches, version_key
from conformance.errors import ProvisionError
from conformance.runtimes import download, tarsafe

SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
APT_CONF = (Path("/etc/apt/apt.conf"), Path("/etc/apt/apt.conf.d"))
SUITES = ("bookworm", "trixie", "sid")
KEYS = Path(__file__).with_name("keys") / "debian-archive.asc"
# Debian 12 and 13: archive, security archive and stable release keys (primary keys)
FINGERPRINTS = frozenset({
    "b8b80b5b623eab6ad8775c45b7c5d7d6350947f8", "05ab90340c0c5e797f44a8c8254cf3b5aec0a8f0",
    "4d64fec119c2029067d6e791f8d2585b8783d481", "04b54c3cdca79751b16bc6b5225629df75b188bd",
    "5e04a1e3223a19a20706e20f9904613d4cce68c6", "41587f7db8c774bccf131416762f67a0b2c39de4",
})
LIST_MAX_AGE = 6 * 3600
NO_MIRROR = ("no Debian archive: set DEBIAN_MIRROR to a Debian mirror's URL (the folder holding dists/ and "
             "pool/); this machine's apt sources name none")


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str  # Debian version, e.g. 2.1.9+ds1-5
    suite: str
    filename: str = ""  # pool/... in the archive
    sha256: str = ""
    size: int = 0
    depends: str = ""  # the Depends field as the index gives it

    @property
    def upstream(self) -> str:
        """2.1.9+ds1-5 -> 2.1.9; 1.7.24~ds1-6+deb13u1 -> 1.7.24."""
        return re.split(r"[~+-]", self.version.split(":")[-1])[0]


def apt_archive() -> str | None:
    """The Debian archive this machine's apt sources name, or None."""
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


def archive_uri() -> str | None:
    """DEBIAN_MIRROR, else the archive apt is configured with, else None."""
    return (os.environ.get("DEBIAN_MIRROR") or "").rstrip("/") or apt_archive()


def available() -> bool:
    return archive_uri() is not None


def expired_allowed() -> bool:
    """A frozen snapshot mirror's Release files are past Valid-Until: allowed where apt is configured so
    (Acquire::Check-Valid-Until false) for the mirror it names, or with DEBIAN_ALLOW_EXPIRED=1."""
    if os.environ.get("DEBIAN_ALLOW_EXPIRED") in ("1", "true", "yes"):
        return True
    if os.environ.get("DEBIAN_MIRROR"):
        return False
    files = [APT_CONF[0], *(sorted(APT_CONF[1].iterdir()) if APT_CONF[1].is_dir() else [])]
    return any(re.search(r'Check-Valid-Until\s+"?(false|no|0)"?', f.read_text(errors="replace"), re.I)
               for f in files if f.is_file())


def archive_certs() -> list[pysequoia.Cert]:
    """Debian's archive keys shipped with the project; each must be one of the pinned fingerprints."""
    certs = pysequoia.Cert.split_bytes(KEYS.read_bytes())
    stray = [c.fingerprint for c in certs if c.fingerprint not in FINGERPRINTS]
    if stray or not certs:
        raise ProvisionError(f"{KEYS}: keys other than Debian's pinned archive keys: {stray}")
    return certs


def keyring_file(dest: Path) -> Path:
    """The shipped archive keys as a binary keyring (for debootstrap's gpgv), written to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(bytes(cert) for cert in archive_certs()))
    return dest


def verify_release(data: bytes, where: str) -> Release:
    """The Release fields of an InRelease file signed by a Debian archive key; ProvisionError otherwise."""
    certs = archive_certs()
    try:
        verified = pysequoia.verify(bytes=data, store=lambda _ids: certs)
    except Exception as exc:  # pysequoia raises RuntimeError for every bad or missing signature
        raise ProvisionError(f"{where}: no valid signature by a Debian archive key ({str(exc).splitlines()[0]})") \
            from None
    signers = {s.certificate for s in verified.valid_sigs}
    if not signers & FINGERPRINTS or verified.bytes is None:
        raise ProvisionError(f"{where}: no valid signature by a Debian archive key")
    fields = Release(verified.bytes.decode())
    until = fields.get("Valid-Until")
    if until and parsedate_to_datetime(until).timestamp() < time.time() and not expired_allowed():
        raise ProvisionError(f"{where}: expired (Valid-Until {until}); a frozen snapshot mirror needs "
                             "DEBIAN_ALLOW_EXPIRED=1")
    return fields


def checked(data: bytes, sha256: str, size: int, where: str) -> bytes:
    """`data` if it has the size and SHA-256 its index gives; ProvisionError naming the file otherwise."""
    if len(data) != size:
        raise ProvisionError(f"{where}: {len(data)} bytes, its index says {size} (truncated or altered)")
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ProvisionError(f"{where}: SHA-256 {got}, its index says {sha256} (altered)")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(deb: Path, dest: Path) -> None:
    """A .deb's files into `dest` (its data archive, whatever its compression; links and modes kept)."""
    with DebFile(str(deb)) as package:
        tarsafe.extract(package.data.tgz(), dest, "tar")


def _get(url: str) -> bytes:
    return download.get(url, 600)


def paragraphs(text: str | bytes, package: str) -> list[str]:
    """The paragraphs of an index (Packages or Sources) whose Package is `package`, without decoding or parsing
    the rest (an index is 50-70 MB: a byte search takes milliseconds, decoding it all seconds)."""
    data = text.encode() if isinstance(text, str) else text
    key = f"Package: {package}\n".encode()
    found = []
    at = 0 if data.startswith(key) else _line_at(data, key, 0)
    while at != -1:
        end = data.find(b"\n\n", at)
        found.append(data[at:] if end == -1 else data[at:end])
        at = _line_at(data, key, at + len(key))
    return [para.decode("utf-8", "replace") for para in found]


def _line_at(data: bytes, line: bytes, start: int) -> int:
    """Where the next line starting with `line` begins at or after `start` (-1: none)."""
    at = data.find(b"\n" + line, max(start - 1, 0))
    return -1 if at == -1 else at + 1


def source_records(text: str | bytes, package: str) -> list[Sources]:
    """`package`'s records in a Sources index."""
    return [Sources(para) for para in paragraphs(text, package)]


class Archive:
    """Verified indexes per suite under `cache/debian/<suite>`, .debs under `cache/debian/debs`."""

    def __init__(self, cache: Path):
        self.cache = cache / "debian"
        self.uri = archive_uri()
        self.arch = download.arch()

    def _index(self, suite: str) -> Path:
        """The suite's Packages file (main, this architecture)."""
        return self._list(suite, f"main/binary-{self.arch}/Packages.xz", "Packages")

    def _sources(self, suite: str) -> Path:
        """The suite's Sources file (main)."""
        return self._list(suite, "main/source/Sources.xz", "Sources")

    def _list(self, suite: str, name: str, local: str) -> Path:
        """`dists/<suite>/<name>` (an .xz index) checked against the signed InRelease, unpacked to
        `<suite>/<local>`; fetched and verified at most every LIST_MAX_AGE."""
        if self.uri is None:
            raise ProvisionError(NO_MIRROR)
        base = self.cache / suite
        path = base / local
        if path.exists() and time.time() - path.stat().st_mtime < LIST_MAX_AGE:
            return path
        base.mkdir(parents=True, exist_ok=True)
        url = f"{self.uri}/dists/{suite}/InRelease"
        fields = verify_release(_get(url), url)
        entry = next((e for e in fields.get("SHA256", []) if e["name"] == name), None)
        if entry is None:
            raise ProvisionError(f"{url}: lists no {name}")
        url = f"{self.uri}/dists/{suite}/{name}"
        data = checked(_get(url), entry["sha256"], int(entry["size"]), url)
        _replace(path, lzma.decompress(data))
        return path

    def versions(self, suite: str, package: str) -> list[DebPackage]:
        """Every build of `package` the suite lists (only its paragraphs are parsed: an index is large)."""
        text = self._index(suite).read_bytes()
        found = []
        for para in map(Packages, paragraphs(text, package)):
            found.append(DebPackage(package, para["Version"], suite, para["Filename"], para["SHA256"],
                                    int(para["Size"]), para.get("Depends", "")))
        return found

    def sources(self, suite: str, package: str) -> list[Sources]:
        """Source package `package`'s records in the suite (main), from its verified Sources index."""
        return source_records(self._sources(suite).read_bytes(), package)

    def fetch_source(self, record: Sources, name: str) -> Path:
        """File `name` of a source record (e.g. its .orig.tar.gz) in `debian/src/`, with the size and SHA-256
        the record gives (cached: fetched once)."""
        entry = next((e for e in record.get("Checksums-Sha256", []) if e["name"] == name), None)
        if entry is None:
            raise ProvisionError(f"{record.get('Package')} {record.get('Version')}: Sources lists no {name}")
        dest = self.cache / "src" / name
        if dest.exists() and dest.stat().st_size == int(entry["size"]) and _sha256(dest) == entry["sha256"]:
            return dest
        url = f"{self.uri}/{record['Directory']}/{name}"
        data = checked(_get(url), entry["sha256"], int(entry["size"]), url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        tmp.write_bytes(data)
        tmp.rename(dest)
        return dest

    def fetch(self, pkg: DebPackage, dest: Path) -> Path:
        """Download, check and unpack `pkg` into `dest` (cached: done once per version). Safe beside other runs
        fetching the same package: each unpacks into a folder of its own and `dest` appears complete at once,
        by a rename; a folder another run already uses is never replaced."""
        if (dest / ".complete").exists():
            return dest
        debs = self.cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        deb = debs / Path(pkg.filename).name
        url = f"{self.uri}/{pkg.filename}"
        if not (deb.exists() and _sha256(deb) == pkg.sha256):
            _replace(deb, checked(_get(url), pkg.sha256, pkg.size, url))
        tmp = dest.with_name(f"{dest.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            unpack(deb, tmp)
        except (tarfile.TarError, OSError, ValueError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ProvisionError(f"{deb}: cannot unpack: {exc}") from exc
        (tmp / ".complete").touch()
        return publish(tmp, dest)


def _replace(path: Path, data: bytes) -> None:
    """Write `path` atomically (a reader beside never sees it half written)."""
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def publish(tmp: Path, dest: Path) -> Path:
    """Rename the complete folder `tmp` to `dest`; when another run got there first, keep its `dest` (it may be
    in use) and drop `tmp`. A `dest` without its marker (an older run stopped half way) is replaced."""
    try:
        tmp.rename(dest)
        return dest
    except OSError:
        if (dest / ".complete").exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
    shutil.rmtree(dest, ignore_errors=True)
    try:
        tmp.rename(dest)
    except OSError:  # a third run published meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
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
    (the oldest suite first: the oldest glibc), unpacked into `cache/runtimes/<package>-<version>`; None when
    no suite has it."""
    archive = Archive(cache)
    for suite in SUITES:
        found = archive.versions(suite, package)
        if found:
            path = archive.fetch(found[0], cache / "runtimes" / f"{package}-{found[0].version}") / holds
            if path.is_file():
                return path
    return None

"""crun on this kind of machine: a build of one new enough, and a wrapper for hybrid cgroup hosts.

Bookworm's crun 1.8.1 rejects the runtime-spec versions that containerd 1.7/2.x and CRI-O write ("unknown
version specified"; crun >= 1.14.3 accepts spec 1.2.x), and trixie's/sid's crun binaries need a newer
glibc. `make crun` (`python -m conformance.runtimes.crun`) therefore builds crun once from the upstream
tarball that Debian ships as the source package's `.orig.tar.gz` (trixie first, then sid), fetched with
`apt-get source --download-only` through a private deb-src list and checked against the signed Sources
index, into `cache/crun-<version>/`, and prints that folder: give it as OCI_BIN_DIR. The suite never
swaps it in by itself (conformance/runtimes/oci.py picks the OCI runtime).

Separately, crun refuses a *hybrid* cgroup layout (v1 hierarchies under /sys/fs/cgroup plus a cgroup2 at
/sys/fs/cgroup/unified) when that cgroup2 has any controller enabled (libcrun/cgroup.c,
libcrun_cgroup_enter: "cgroups in hybrid mode not supported"). The check runs before the cgroup manager is
chosen, so `--cgroup-manager=disabled` does not avoid it. `handler_binary` then returns a wrapper that runs
crun in a private mount namespace where /sys/fs/cgroup/unified is unmounted: crun sees a plain cgroup v1
layout and uses the v1 controllers as usual; the host's mounts are not touched.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from conformance import tarsafe
from conformance.errors import CommandError, ProvisionError
from conformance.runtimes import debian
from conformance.runtimes.oci import CRUN_MIN, OCIRuntime, probe_version
from conformance.runtimes.versions import version_key

MIN_VERSION = CRUN_MIN
SOURCE_SUITES = ("trixie", "sid")
CONFIGURE_FLAGS = ("--disable-systemd", "--disable-criu", "--disable-shared", "--enable-static",
                   "--disable-dependency-tracking")
# Build-Depends we honour (crun's release tarball ships `configure` and generated files, so autotools,
# gperf, go-md2man and debhelper are not needed); anything else in Build-Depends is optional for us.
LINKED_DEPS = ("libyajl-dev", "libjson-c-dev", "libseccomp-dev", "libcap-dev", "libblake3-dev")
TOOL_DEPS = ("gcc", "make", "pkgconf")
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUILD_TIMEOUT = 1800


def crun_version(binary: Path | str) -> str | None:
    """`crun --version` → '1.21', or None when it does not run."""
    return probe_version(binary)


def new_enough(version: str | None) -> bool:
    return version is not None and version_key(version) >= version_key(MIN_VERSION)


def ensure_crun(cache: Path) -> Path:
    """A crun >= MIN_VERSION built from Debian's source into `cache` (once; later calls reuse it)."""
    cached = _cached(cache)
    if cached:
        return cached
    if not debian.available():
        raise ProvisionError(f"building crun >= {MIN_VERSION} needs Debian's archive (apt), and none is configured")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "crun.lock").open("w") as lock:  # concurrent runs share the cache: build once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cached(cache) or SourceBuild(cache).build()


def _cached(cache: Path) -> Path | None:
    """The newest complete, working crun built earlier into `cache/crun-<version>/`."""
    built = [p for p in cache.glob("crun-*/crun") if (p.parent / ".complete").exists()]
    for binary in sorted(built, key=lambda p: version_key(p.parent.name.removeprefix("crun-")), reverse=True):
        if new_enough(crun_version(binary)):
            return binary
    return None


class SourceBuild:
    """Fetch crun's source from Debian (private deb-src list) and build it on this machine."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.base = cache / "apt" / "deb-src"

    def _opts(self) -> list[str]:
        return ["-o", f"Dir::Etc::sourcelist={self.base / 'debian.sources'}", "-o", "Dir::Etc::sourceparts=/dev/null",
                "-o", f"Dir::State::Lists={self.base / 'lists'}", "-o", f"Dir::Cache={self.base / 'cache'}",
                "-o", "Debug::NoLocking=1"]

    def update(self) -> None:
        uri = debian.archive_uri()
        if uri is None:
            raise ProvisionError("no Debian archive is configured on this machine")
        (self.base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.base / "debian.sources").write_text(
            f"Types: deb-src\nURIs: {uri}\nSuites: {' '.join(SOURCE_SUITES)}\nComponents: main\n"
            f"Signed-By: {debian.keyring_file(self.base / 'debian-archive.gpg')}\n")
        _run(["apt-get", "-q", *self._opts(), "update"])

    def sources(self) -> list[dict[str, str]]:
        """crun's source records in the private deb-src lists (one per suite that has it)."""
        out = _run(["apt-cache", *self._opts(), "showsrc", "crun"])
        return parse_showsrc(out)

    def build(self) -> Path:
        self.update()
        records = sorted(self.sources(), key=lambda r: version_key(upstream(r["Version"])))
        if not records:
            raise ProvisionError(f"Debian's archive has no crun source in {', '.join(SOURCE_SUITES)}")
        # trixie's crun (yajl) builds with bookworm's libraries; newer ones may need libraries bookworm lacks,
        # so try oldest-first among versions that are new enough.
        problems = []
        for record in records:
            version = upstream(record["Version"])
            if not new_enough(version):
                continue
            try:
                return self._build_one(record)
            except (ProvisionError, CommandError) as exc:
                problems.append(f"crun {record['Version']}: {str(exc)[:600]}")
        raise ProvisionError("could not build crun from Debian source:\n" + "\n".join(problems))

    def _build_one(self, record: dict[str, str]) -> Path:
        version = upstream(record["Version"])
        dest = self.cache / f"crun-{version}"
        if (dest / ".complete").exists():
            return dest / "crun"
        tarball = self._fetch_orig(record)
        install_missing(build_deps(record.get("Build-Depends", "")))
        work = self.cache / f"crun-{version}.build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with tarfile.open(tarball) as tar:
            tarsafe.extract(tar, work, "data")
        srcdir = next((p for p in work.iterdir() if p.is_dir() and (p / "configure").exists()), None)
        if srcdir is None:
            raise ProvisionError(f"{tarball.name}: no configure script (not a crun release tarball)")
        _run(["./configure", *CONFIGURE_FLAGS], cwd=srcdir, timeout=BUILD_TIMEOUT)
        _run(["make", "-j2"], cwd=srcdir, timeout=BUILD_TIMEOUT)
        if crun_version(srcdir / "crun") is None:
            raise ProvisionError(f"the crun built in {srcdir} does not run")
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(srcdir / "crun", tmp / "crun")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        (dest / ".complete").write_text(f"{record['Version']} {tarball.name}\n")
        shutil.rmtree(work, ignore_errors=True)
        return dest / "crun"

    def _fetch_orig(self, record: dict[str, str]) -> Path:
        """The upstream tarball, checked against the sha256 in the (signed) Sources index.

        `apt-get source --download-only` fails as a whole when any file of the source package is
        missing from the archive; only the .orig tarball is needed, so that failure is tolerated
        when the tarball arrived intact.
        """
        name, digest = orig_file(record)
        srcdir = self.cache / "src"
        srcdir.mkdir(parents=True, exist_ok=True)
        tarball = srcdir / name
        if not (tarball.exists() and _sha256(tarball) == digest):
            argv = ["apt-get", "-q", *self._opts(), "source", "--download-only", f"crun={record['Version']}"]
            res = subprocess.run(argv, capture_output=True, text=True, cwd=srcdir, timeout=600, check=False)
            if not tarball.exists():
                raise CommandError(argv, res.returncode, res.stdout, res.stderr)
        if _sha256(tarball) != digest:
            tarball.unlink()
            raise ProvisionError(f"{name}: sha256 does not match Debian's Sources index")
        return tarball


def parse_showsrc(text: str) -> list[dict[str, str]]:
    """`apt-cache showsrc` output → one dict per record (continuation lines joined with newlines)."""
    records: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        record: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1].isspace() and key:
                record[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                record[key] = value.strip()
        if record.get("Package") == "crun" and "Version" in record:
            records.append(record)
    return records


def upstream(debian_version: str) -> str:
    """1.21-1 → 1.21; 1:1.2~rc1-3 → 1.2."""
    return re.split(r"[~+-]", debian_version.split(":")[-1])[0]


def orig_file(record: dict[str, str]) -> tuple[str, str]:
    """(file name, sha256) of the record's .orig tarball."""
    for line in record.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and re.search(r"\.orig\.tar\.(gz|xz|bz2)$", parts[2]):
            return parts[2], parts[0]
    raise ProvisionError(f"crun {record.get('Version')}: no .orig tarball in Debian's Sources index")


def build_deps(build_depends: str) -> list[str]:
    """The packages from Build-Depends that our configure flags need, plus the compiler tools."""
    names = {re.split(r"[\s(\[]", alt.strip())[0] for dep in build_depends.split(",") for alt in dep.split("|")}
    return [*TOOL_DEPS, *(d for d in LINKED_DEPS if d in names)]


def install_missing(packages: list[str]) -> None:
    """apt-get install (from the machine's own suite) the packages that are not installed yet."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
                             env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except FileNotFoundError as exc:
        raise ProvisionError("apt-get not found: cannot install crun's build dependencies") from exc
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout, res.stderr)


def _installed(package: str) -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True,
                         check=False)
    return res.returncode == 0 and res.stdout.startswith("ii")


def hybrid_with_controllers(root: Path = CGROUP_ROOT) -> bool:
    """The layout crun refuses: root is not cgroup2, /unified is cgroup2 and has controllers enabled."""
    if (root / "cgroup.controllers").exists():
        return False  # unified mode
    controllers = root / "unified" / "cgroup.controllers"
    try:
        return bool(controllers.read_text().strip())
    except OSError:
        return False


WRAPPER = """#!/bin/sh
# Written by sgp-conformance. crun refuses a hybrid cgroup layout whose cgroup2 (/sys/fs/cgroup/unified) has
# controllers. Run it in a private mount namespace without that mount, so it sees and uses cgroup v1 only.
# The host's mounts are unchanged.
exec {unshare} --mount --propagation private -- /bin/sh -c \\
  '{umount} -l /sys/fs/cgroup/unified || exit 125; exec "$0" "$@"' {crun} "$@"
"""


HYBRID_WHY = ("hybrid cgroup host (cgroup2 at /sys/fs/cgroup/unified has controllers, which crun refuses): "
              "crun runs in a private mount namespace without that mount")


def wrapped(runtime: OCIRuntime, folder: Path) -> OCIRuntime:
    """crun as the CRI runtime should run it: itself, or on a hybrid host behind a wrapper written into
    `folder` (`folder/crun`)."""
    if not hybrid_with_controllers():
        return runtime
    unshare, umount = shutil.which("unshare"), shutil.which("umount")
    if not unshare or not umount:
        raise ProvisionError("crun on a hybrid cgroup host needs unshare and umount (util-linux, mount)")
    wrapper = folder / "crun"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(WRAPPER.format(unshare=shlex.quote(unshare), umount=shlex.quote(umount),
                                      crun=shlex.quote(runtime.exec_path)))
    wrapper.chmod(0o755)
    return OCIRuntime(runtime.name, runtime.path, runtime.version, str(wrapper), HYBRID_WHY)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise ProvisionError(f"{argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{' '.join(argv)} took longer than {timeout:.0f}s") from exc
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout, res.stderr)
    return res.stdout


def main() -> int:
    """`make crun`: build (or find the earlier build of) crun and print its folder for OCI_BIN_DIR."""
    from conformance.options import default_cache

    try:
        binary = ensure_crun(default_cache())
    except (ProvisionError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"crun {crun_version(binary)}: {binary}")
    print(f"use it with: OCI_BIN_DIR={binary.parent} HANDLER=crun")
    return 0

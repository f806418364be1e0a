"""crun on this kind of machine: a build of one new enough, and a wrapper for hybrid cgroup hosts.

Bookworm's crun 1.8.1 rejects the runtime-spec versions that containerd 1.7/2.x and CRI-O write ("unknown
version specified"; crun >= 1.14.3 accepts spec 1.2.x), and trixie's/sid's crun binaries need a newer
glibc. `make crun` (`python -m conformance.runtimes.crun`) therefore builds crun once from the upstream
tarball that Debian ships as the source package's `.orig.tar.*` (trixie first, then sid), found in the suite's
signed Sources index and checked against the SHA-256 it gives, into `cache/crun-<version>/`, and prints that
folder: give it as OCI_BIN_DIR. No apt, no dpkg, nothing installed on the host: the libraries crun links
(yajl/json-c, libseccomp, libcap, ...) come as bookworm's -dev packages (the oldest glibc, so the result runs
on newer hosts), unpacked into a sysroot in the cache and linked statically from there, so the binary needs
only libc. Only the compiler tools (gcc, make, pkg-config, libc's headers) are the host's.
conformance/runtimes/ocidefault.py picks the build as the default OCI runtime where no HANDLER is given.

Separately, crun refuses a *hybrid* cgroup layout (v1 hierarchies under /sys/fs/cgroup plus a cgroup2 at
/sys/fs/cgroup/unified) when that cgroup2 has any controller enabled (libcrun/cgroup.c,
libcrun_cgroup_enter: "cgroups in hybrid mode not supported"). The check runs before the cgroup manager is
chosen, so `--cgroup-manager=disabled` does not avoid it. `handler_binary` then returns a wrapper that runs
crun in a private mount namespace where /sys/fs/cgroup/unified is unmounted: crun sees a plain cgroup v1
layout and uses the v1 controllers as usual; the host's mounts are not touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from debian.deb822 import Sources
from debian.debian_support import Version as DebianVersion

from conformance.core.versions import version_key
from conformance.errors import CommandError, ProvisionError
from conformance.runtimes import debian, tarsafe
from conformance.runtimes.executables import inspect
from conformance.runtimes.oci import CRUN_MIN, OCIRuntime, ask, probe_version

MIN_VERSION = CRUN_MIN
SOURCE_SUITES = ("trixie", "sid")
LIBRARY_SUITE = "bookworm"  # the oldest glibc: static archives built against it link and run on newer hosts
CONFIGURE_FLAGS = ("--disable-systemd", "--disable-criu", "--disable-shared", "--enable-static",
                   "--disable-dependency-tracking")
# Build-Depends we honour (crun's release tarball ships `configure` and generated files, so autotools,
# gperf, go-md2man and debhelper are not needed); anything else in Build-Depends is optional for us.
LINKED_DEPS = ("libyajl-dev", "libjson-c-dev", "libseccomp-dev", "libcap-dev", "libblake3-dev")
# host tools: command -> (Debian/Ubuntu package, Fedora package)
TOOLS = {"gcc": ("gcc", "gcc"), "make": ("make", "make"), "pkg-config": ("pkgconf", "pkgconf-pkg-config"),
         "libc headers": ("libc6-dev", "glibc-devel")}  # Debian's gcc only recommends libc6-dev
LIBC_HEADER = Path("/usr/include/stdio.h")
LIBC = re.compile(r"(libc|ld-linux[\w.-]*|ld64|ld)\.so\.\d+")
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUILD_TIMEOUT = 1800


def crun_version(binary: Path | str) -> str | None:
    """`crun --version` → '1.21', or None when it does not run."""
    return probe_version(binary)


def has_systemd(binary: Path | str) -> bool:
    """crun built with the systemd cgroup manager (`+SYSTEMD` in `crun --version`; the suite's build has not)."""
    try:
        res = ask(binary, "--version")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "+SYSTEMD" in res.stdout.split()


def new_enough(version: str | None) -> bool:
    return version is not None and version_key(version) >= version_key(MIN_VERSION)


def ensure_crun(cache: Path) -> Path:
    """A crun >= MIN_VERSION built from Debian's source into `cache` (once; later calls reuse it)."""
    cached = _cached(cache)
    if cached:
        return cached
    if not debian.available():
        raise ProvisionError(f"building crun >= {MIN_VERSION} needs Debian's archive: {debian.NO_MIRROR}")
    check_tools()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "crun.lock").open("w") as lock:  # concurrent runs share the cache: build once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cached(cache) or SourceBuild(cache).build()


def _cached(cache: Path) -> Path | None:
    """The newest complete, working crun built earlier into `cache/crun-<version>/`."""
    built = [p for p in cache.glob("crun-*/crun") if (p.parent / ".complete").exists()]
    for binary in sorted(built, key=lambda p: version_key(p.parent.name.removeprefix("crun-")), reverse=True):
        if _usable(binary):
            return binary
    return None


def _usable(binary: Path) -> bool:
    """New enough, runs, and needs only libc (a build from before the static recipe is made again: a kind node's
    base lacks the libraries it would need)."""
    try:
        check_static(binary)
    except (ProvisionError, CommandError):
        return False
    return new_enough(crun_version(binary))


def missing_tools(which: Callable[[str], str | None] | None = None, header: Path = LIBC_HEADER) -> list[str]:
    """The compiler tools (TOOLS) not on PATH, and the C library's headers when `header` is missing."""
    missing = [tool for tool in TOOLS if tool != "libc headers" and (which or shutil.which)(tool) is None]
    return missing + ([] if header.exists() else ["libc headers"])


def tools_message(missing: list[str]) -> str:
    """One line naming what to install for the missing compiler tools, with apt-get and dnf package names."""
    apt = " ".join(TOOLS[t][0] for t in missing)
    dnf = " ".join(TOOLS[t][1] for t in missing)
    return (f"building crun needs {', '.join(missing)} on this machine: install with `apt-get install {apt}` "
            f"(Debian/Ubuntu) or `dnf install {dnf}` (Fedora)")


def check_tools() -> None:
    """ProvisionError (one line) when a compiler tool is missing: checked before anything is fetched."""
    missing = missing_tools()
    if missing:
        raise ProvisionError(tools_message(missing))


class SourceBuild:
    """Fetch crun's source and its libraries from Debian's archive (over HTTP, verified) and build it here."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.archive = debian.Archive(cache)
        self.sysroot = cache / f"crun-sysroot-{LIBRARY_SUITE}"
        self._libraries: dict[str, debian.DebPackage | None] = {}

    def records(self) -> list[Sources]:
        """crun's source records (one per suite that has it)."""
        return [r for suite in SOURCE_SUITES for r in self.archive.sources(suite, "crun")]

    def build(self) -> Path:
        check_tools()
        records = self.records()
        if not records:
            raise ProvisionError(f"Debian's archive has no crun source in {', '.join(SOURCE_SUITES)}")
        # trixie's crun (yajl) builds with bookworm's libraries; newer ones may need libraries bookworm lacks,
        # so try oldest-first among versions that are new enough.
        problems = []
        for record in candidates(records):
            try:
                return self._build_one(record)
            except (ProvisionError, CommandError) as exc:
                problems.append(f"crun {record['Version']}: {str(exc)[:600]}")
        if not problems:
            raise ProvisionError(f"Debian's crun sources are all older than {MIN_VERSION}")
        raise ProvisionError("could not build crun from Debian source:\n" + "\n".join(problems))

    def _build_one(self, record: Sources) -> Path:
        version = upstream(record["Version"])
        dest = self.cache / f"crun-{version}"
        if (dest / ".complete").exists() and _usable(dest / "crun"):
            return dest / "crun"
        name, _ = orig_file(record)
        tarball = self.archive.fetch_source(record, name)
        self.make_sysroot(build_deps(record.get("Build-Depends", "")))
        work = self.cache / f"crun-{version}.build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with tarfile.open(tarball) as tar:
            tarsafe.extract(tar, work, "data")
        srcdir = next((p for p in work.iterdir() if p.is_dir() and (p / "configure").exists()), None)
        if srcdir is None:
            raise ProvisionError(f"{tarball.name}: no configure script (not a crun release tarball)")
        env = build_env(self.sysroot)
        log = _run(["./configure", *CONFIGURE_FLAGS], cwd=srcdir, timeout=BUILD_TIMEOUT, env=env)
        log += _run(["make", "-j2", "V=1"], cwd=srcdir, timeout=BUILD_TIMEOUT, env=env)
        check_static(srcdir / "crun")
        if crun_version(srcdir / "crun") is None:
            raise ProvisionError(f"the crun built in {srcdir} does not run")
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(srcdir / "crun", tmp / "crun")
        (tmp / "build.log").write_text(log)  # the compile and link lines: what came from the sysroot
        shutil.copy2(srcdir / "config.log", tmp / "config.log")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        (dest / ".complete").write_text(f"{record['Version']} {tarball.name}\n")
        shutil.rmtree(work, ignore_errors=True)
        return dest / "crun"

    def library(self, name: str) -> debian.DebPackage | None:
        """The newest build of package `name` in LIBRARY_SUITE (looked up once), None when it has none."""
        if name not in self._libraries:
            builds = self.archive.versions(LIBRARY_SUITE, name)
            self._libraries[name] = max(builds, key=lambda p: DebianVersion(p.version)) if builds else None
        return self._libraries[name]

    def make_sysroot(self, dev_packages: list[str]) -> Path:
        """`dev_packages` and the -dev packages they depend on, from LIBRARY_SUITE, unpacked into a fresh
        sysroot that keeps only static archives (no .so): what crun links comes from here, statically."""
        missing = [name for name in dev_packages if self.library(name) is None]
        if missing:
            raise ProvisionError(f"Debian {LIBRARY_SUITE} has no {', '.join(missing)}")
        shutil.rmtree(self.sysroot, ignore_errors=True)
        self.sysroot.mkdir(parents=True)
        for name in dev_closure(dev_packages, lambda n: (p.depends if (p := self.library(n)) else None)):
            pkg = self.library(name)
            if pkg is not None:
                root = self.archive.fetch(pkg, self.cache / "runtimes" / f"{name}-{pkg.version}")
                shutil.copytree(root, self.sysroot, symlinks=True, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".complete"))
        static_only(self.sysroot)
        return self.sysroot


def candidates(records: Iterable[Sources]) -> list[Sources]:
    """The records worth building: new enough, one per version, oldest first."""
    by_version = {r["Version"]: r for r in records if new_enough(upstream(r["Version"]))}
    return sorted(by_version.values(), key=lambda r: version_key(upstream(r["Version"])))


def upstream(debian_version: str) -> str:
    """1.21-1 → 1.21; 1:1.2~rc1-3 → 1.2."""
    return re.split(r"[~+-]", debian_version.split(":")[-1])[0]


def orig_file(record: Sources) -> tuple[str, str]:
    """(file name, sha256) of the record's .orig tarball."""
    for entry in record.get("Checksums-Sha256", []):
        if re.search(r"\.orig\.tar\.(gz|xz|bz2)$", entry["name"]):
            return entry["name"], entry["sha256"]
    raise ProvisionError(f"crun {record.get('Version')}: no .orig tarball in Debian's Sources index")


def dep_names(field: str) -> list[str]:
    """Package names in a Depends/Build-Depends field (first of each alternative; versions, arches dropped)."""
    names = [re.split(r"[\s(\[:]", dep.split("|")[0].strip())[0] for dep in field.split(",")]
    return [n for n in names if n]


def build_deps(build_depends: str) -> list[str]:
    """The libraries from Build-Depends that our configure flags need (their -dev packages)."""
    names = {re.split(r"[\s(\[:]", alt.strip())[0] for dep in build_depends.split(",") for alt in dep.split("|")}
    return [d for d in LINKED_DEPS if d in names]


def dev_closure(names: list[str], depends: Callable[[str], str | None]) -> list[str]:
    """`names` and, transitively, the -dev packages their Depends name (`depends(name)`: the field, or None
    when the suite lacks the package). Library packages are not followed: only static archives are linked."""
    seen: list[str] = []
    todo = list(names)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.append(name)
        todo += [d for d in dep_names(depends(name) or "") if d.endswith("-dev")]
    return seen


def static_only(sysroot: Path) -> None:
    """Shared objects out of the sysroot, so the linker takes the static archives; Debian's `libX_s.a`
    (yajl's static archive) also as `libX.a`, for `-lX`."""
    for path in sorted(sysroot.rglob("*")):
        if (path.is_file() or path.is_symlink()) and re.search(r"\.so(\.[\d.]+)?$", path.name):
            path.unlink()
    for archive in sorted(sysroot.rglob("lib*_s.a")):
        plain = archive.with_name(archive.name.removesuffix("_s.a") + ".a")
        if not plain.exists():
            plain.symlink_to(archive.name)


def build_env(sysroot: Path) -> dict[str, str]:
    """The environment for configure and make: headers, static libraries and .pc files from the sysroot."""
    includes = [sysroot / "usr" / "include", *sorted((sysroot / "usr" / "include").glob("*-linux-*"))]
    libdirs = sorted({p.parent for p in sysroot.rglob("*.a")})
    pcdirs = sorted({p.parent for p in sysroot.rglob("*.pc")})
    return {**os.environ, "CPPFLAGS": " ".join(f"-I{d}" for d in includes),
            "LDFLAGS": " ".join(f"-L{d}" for d in libdirs),
            "PKG_CONFIG_LIBDIR": ":".join(map(str, pcdirs)), "PKG_CONFIG_PATH": "",
            "PKG_CONFIG_SYSROOT_DIR": str(sysroot), "LC_ALL": "C"}


def foreign_libraries(needed: Iterable[str]) -> list[str]:
    """The DT_NEEDED entries that are not glibc's libc or loader."""
    return [n for n in needed if not LIBC.fullmatch(n)]


def check_static(binary: Path) -> None:
    """ProvisionError unless `binary` needs nothing but libc at run time."""
    foreign = foreign_libraries(inspect(binary, "crun").needed)
    if foreign:
        raise ProvisionError(f"{binary} links {', '.join(foreign)} dynamically (want only libc)")


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
    return replace(runtime, binary=str(wrapper), wrapper=HYBRID_WHY)


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False, env=env)
    except FileNotFoundError as exc:
        raise ProvisionError(f"{argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{' '.join(argv)} took longer than {timeout:.0f}s") from exc
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout, res.stderr)
    return res.stdout


def main() -> int:
    """`make crun`: build (or find the earlier build of) crun and print its folder for OCI_BIN_DIR."""
    from conformance.core.options import default_cache

    try:
        binary = ensure_crun(default_cache())
    except (ProvisionError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"crun {crun_version(binary)}: {binary}")
    print(f"use it with: OCI_BIN_DIR={binary.parent} HANDLER=crun")
    return 0

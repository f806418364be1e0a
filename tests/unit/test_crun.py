import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import crun, debian, executables
from conformance.runtimes.executables import Executable
from conformance.runtimes.oci import OCIRuntime
from tests.support.fakes import bin as fakebin

# A recorded excerpt of trixie's and sid's main/source/Sources (trimmed), with a neighbour package.
SOURCES = """Package: crun
Format: 3.0 (quilt)
Binary: crun
Version: 1.21-1
Build-Depends: automake, debhelper-compat (= 13), go-md2man, gperf, libcap-dev, libcriu-dev [amd64 arm64],
 libseccomp-dev, libsystemd-dev, libwasmedge-dev [amd64 arm64], libyajl-dev, pkgconf, python3
Checksums-Sha256:
 f513b39c99ca94d5e054c922c9407bb8aeee461ff8385953848a4bc2ebb6189d 2425 crun_1.21-1.dsc
 4bfb700e764a4804a4de3ecf07753f4c391005356d60356df65d80ae0914c486 1788933 crun_1.21.orig.tar.gz
 5817d5f11912ab5d68a6f41a96fac06ad26c110b877aa6785ae6c795c0393be9 484 crun_1.21.orig.tar.gz.asc
 a382dd0713c451f27987b45bc7a3aed8c23cbe9c2478ecae0f4b932bd13c5a67 19112 crun_1.21-1.debian.tar.xz
Homepage: https://github.com/containers/crun
Directory: pool/main/c/crun

Package: crun-other
Version: 9.9-1
Directory: pool/main/c/crun-other

Package: crun
Version: 1.28-1
Build-Depends: automake, gperf, libblake3-dev, libcap-dev, libjson-c-dev, libseccomp-dev, pkgconf, python3
Checksums-Sha256:
 eb8fe73ffe44d868b14bb94fa6c295bd57e8bf023de43b61579da826c07cc406 1585077 crun_1.28.orig.tar.xz
Directory: pool/main/c/crun
"""
OLD = """Package: crun
Version: 1.8.1-1+deb12u1
Directory: pool/main/c/crun
"""


def fake_crun(path: Path, version: str) -> Path:
    return fakebin.tool(path, f"crun version {version}")


def test_sources_records_and_orig_tarball() -> None:
    records = debian.source_records(SOURCES, "crun")
    assert [r["Version"] for r in records] == ["1.21-1", "1.28-1"]
    assert records[0]["Directory"] == "pool/main/c/crun"
    assert crun.orig_file(records[0]) == (
        "crun_1.21.orig.tar.gz", "4bfb700e764a4804a4de3ecf07753f4c391005356d60356df65d80ae0914c486")
    assert crun.orig_file(records[1])[0] == "crun_1.28.orig.tar.xz"


def test_candidates_new_enough_oldest_first_once() -> None:
    sid, trixie = debian.source_records(SOURCES, "crun"), debian.source_records(SOURCES + "\n" + OLD, "crun")
    picked = crun.candidates([*reversed(sid), *trixie])
    assert [r["Version"] for r in picked] == ["1.21-1", "1.28-1"]  # 1.8.1 too old, duplicates once


def test_orig_file_missing_is_a_provision_error() -> None:
    record = debian.source_records("Package: crun\nVersion: 1.0-1\nChecksums-Sha256:\n abc 1 crun_1.0-1.dsc\n",
                                   "crun")[0]
    with pytest.raises(ProvisionError, match=r"no \.orig tarball"):
        crun.orig_file(record)


def test_build_deps_keep_only_the_linked_libraries() -> None:
    records = debian.source_records(SOURCES, "crun")
    assert crun.build_deps(records[0]["Build-Depends"]) == ["libyajl-dev", "libseccomp-dev", "libcap-dev"]
    assert crun.build_deps(records[1]["Build-Depends"]) == ["libjson-c-dev", "libseccomp-dev", "libcap-dev",
                                                            "libblake3-dev"]


def test_dev_closure_follows_dev_depends_only() -> None:
    depends = {"libfoo-dev": "libfoo1 (= 1.0-1), libbar-dev (>= 2) | libbaz-dev, libc6 (>= 2.34)",
               "libbar-dev": "libbar2, libfoo-dev", "libcap-dev": None}
    assert crun.dev_closure(["libfoo-dev", "libcap-dev"], depends.get) == ["libfoo-dev", "libcap-dev",
                                                                          "libbar-dev"]
    assert crun.dep_names("libx-dev:any (>= 1) [amd64], liby | libz") == ["libx-dev", "liby"]


def test_sysroot_keeps_only_static_archives(tmp_path: Path) -> None:
    lib = tmp_path / "usr" / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libyajl_s.a", "libyajl.so.2.1.0", "libseccomp.a", "libcap.a", "libcap.a.txt"):
        (lib / name).write_text("x")
    (lib / "libyajl.so").symlink_to("libyajl.so.2")  # dangling, as a -dev package ships it
    (lib / "libseccomp.so").symlink_to("libseccomp.so.2")
    crun.static_only(tmp_path)
    assert sorted(p.name for p in lib.iterdir()) == ["libcap.a", "libcap.a.txt", "libseccomp.a", "libyajl.a",
                                                      "libyajl_s.a"]
    assert (lib / "libyajl.a").resolve() == lib / "libyajl_s.a"
    (tmp_path / "usr" / "include" / "x86_64-linux-gnu").mkdir(parents=True)
    (lib / "pkgconfig").mkdir()
    (lib / "pkgconfig" / "yajl.pc").write_text("")
    env = crun.build_env(tmp_path)
    assert env["CPPFLAGS"] == f"-I{tmp_path}/usr/include -I{tmp_path}/usr/include/x86_64-linux-gnu"
    assert env["LDFLAGS"] == f"-L{lib}" and env["PKG_CONFIG_LIBDIR"] == str(lib / "pkgconfig")
    assert env["PKG_CONFIG_SYSROOT_DIR"] == str(tmp_path) and env["PKG_CONFIG_PATH"] == ""


def test_only_libc_may_be_needed() -> None:
    assert crun.foreign_libraries(("libc.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1")) == []
    assert crun.foreign_libraries(("libc.so.6", "libyajl.so.2", "libseccomp.so.2")) == ["libyajl.so.2",
                                                                                         "libseccomp.so.2"]


def test_static_check_reads_dt_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "crun"
    needed = {"static": ("libc.so.6",), "dynamic": ("libseccomp.so.2", "libc.so.6")}
    monkeypatch.setattr(crun, "inspect", lambda path, label: Executable(path, path, "/lib64/ld-linux-x86-64.so.2",
                                                                        needed[kind]))
    kind = "static"
    crun.check_static(binary)
    kind = "dynamic"
    with pytest.raises(ProvisionError, match=r"links libseccomp\.so\.2 dynamically \(want only libc\)"):
        crun.check_static(binary)


def test_missing_tools_one_line_with_apt_and_dnf_names() -> None:
    assert crun.missing_tools(lambda tool: f"/usr/bin/{tool}") == []
    missing = crun.missing_tools(lambda tool: None if tool in ("gcc", "pkg-config") else "/usr/bin/make")
    assert missing == ["gcc", "pkg-config"]
    message = crun.tools_message(missing)
    assert "\n" not in message
    assert "apt-get install gcc pkgconf" in message and "dnf install gcc pkgconf-pkg-config" in message


def test_missing_libc_headers_named(tmp_path: Path) -> None:
    """Debian's gcc without recommends has no libc6-dev: the build would fail on stdio.h."""
    missing = crun.missing_tools(lambda tool: f"/usr/bin/{tool}", header=tmp_path / "stdio.h")
    assert missing == ["libc headers"]
    assert "apt-get install libc6-dev" in crun.tools_message(missing)
    assert "dnf install glibc-devel" in crun.tools_message(missing)


def test_missing_gcc_stops_before_anything_is_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crun.debian, "available", lambda: True)
    monkeypatch.setattr(crun.shutil, "which", lambda tool: None if tool == "gcc" else f"/usr/bin/{tool}")
    monkeypatch.setattr(crun.SourceBuild, "build", lambda self: pytest.fail("must not fetch"))
    with pytest.raises(ProvisionError, match=r"needs gcc on this machine: .*apt-get install gcc"):
        crun.ensure_crun(tmp_path)


def test_versions() -> None:
    assert crun.upstream("1.21-1") == "1.21" and crun.upstream("1:1.14.3+ds-2") == "1.14.3"
    assert not crun.new_enough("1.8.1") and not crun.new_enough("1.14.2") and not crun.new_enough(None)
    assert crun.new_enough("1.14.3") and crun.new_enough("1.21") and crun.new_enough("1.28")


def test_crun_version_reads_the_binary(tmp_path: Path) -> None:
    assert crun.crun_version(fake_crun(tmp_path / "crun", "1.21")) == "1.21"
    assert crun.crun_version(tmp_path / "missing") is None


def test_cached_build_is_reused_and_the_system_crun_ignored(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crun.SourceBuild, "build", lambda self: pytest.fail("must not build"))
    cache = tmp_path / "cache"
    built = fake_crun(cache / "crun-1.21" / "crun", "1.21")
    fake_crun(cache / "crun-1.28" / "crun", "1.28")  # incomplete: no .complete marker
    (built.parent / ".complete").touch()
    assert crun.ensure_crun(cache) == built


def test_a_dynamically_linked_cached_build_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build from before the static recipe (it links libyajl, libseccomp, ...) is not reused: a kind node's
    base lacks those libraries."""
    dynamic = Path(os.path.realpath(sys.executable))  # an ELF binary needing more than libc
    assert crun.foreign_libraries(executables.inspect(dynamic, "python").needed)
    old = tmp_path / "crun-1.21" / "crun"
    old.parent.mkdir()
    shutil.copy2(dynamic, old)
    (old.parent / ".complete").touch()
    monkeypatch.setattr(crun.debian, "available", lambda: True)
    monkeypatch.setattr(crun, "missing_tools", lambda: [])
    monkeypatch.setattr(crun.SourceBuild, "build", lambda self: self.cache / "rebuilt" / "crun")
    assert crun.ensure_crun(tmp_path) == tmp_path / "rebuilt" / "crun"


def test_builds_when_nothing_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crun.debian, "available", lambda: True)
    monkeypatch.setattr(crun, "missing_tools", lambda: [])
    monkeypatch.setattr(crun.SourceBuild, "build", lambda self: self.cache / "crun-9.9" / "crun")
    assert crun.ensure_crun(tmp_path) == tmp_path / "crun-9.9" / "crun"


def test_no_archive_is_a_provision_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crun.debian, "available", lambda: False)
    with pytest.raises(ProvisionError, match="needs Debian's archive"):
        crun.ensure_crun(tmp_path)


def test_hybrid_detection(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    assert not crun.hybrid_with_controllers(tmp_path)  # pure v1: no cgroup2 at unified
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")
    assert not crun.hybrid_with_controllers(tmp_path)  # hybrid, but cgroup2 has no controllers: crun is fine
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    assert crun.hybrid_with_controllers(tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert not crun.hybrid_with_controllers(tmp_path)  # unified mode


def test_wrapper_written_on_hybrid_host_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = OCIRuntime("crun", "/opt/crun dir/crun", "1.21")
    monkeypatch.setattr(crun, "hybrid_with_controllers", lambda: False)
    assert crun.wrapped(found, tmp_path / "bin") == found
    monkeypatch.setattr(crun, "hybrid_with_controllers", lambda: True)
    wrapped = crun.wrapped(found, tmp_path / "bin")
    wrapper = tmp_path / "bin" / "crun"
    assert wrapped.exec_path == str(wrapper) and wrapper.stat().st_mode & 0o111
    assert wrapped.path == found.path and wrapped.version == "1.21" and "hybrid" in wrapped.wrapper
    assert wrapped.to_json()["wrapper"]["path"] == str(wrapper)
    text = wrapper.read_text()
    assert "--mount --propagation private" in text and "-l /sys/fs/cgroup/unified" in text
    assert "'/opt/crun dir/crun' \"$@\"" in text
    subprocess.run(["sh", "-n", str(wrapper)], check=True)


def test_sysroot_from_bookworm_dev_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The -dev packages (and their -dev Depends) of the library suite, merged, static archives only."""
    index = {"libyajl-dev": [("2.1.0-3", "libyajl2 (= 2.1.0-3)"), ("2.1.0-3+deb12u2", "libyajl2")],
             "libfoo-dev": [("1.0-1", "libfoo1, libbar-dev")], "libbar-dev": [("2.0-1", "libc6")]}
    asked: list[str] = []

    def versions(self, suite: str, name: str) -> list[debian.DebPackage]:
        asked.append(f"{suite}/{name}")
        return [debian.DebPackage(name, v, suite, depends=d) for v, d in index.get(name, [])]

    def fetch(self, pkg: debian.DebPackage, dest: Path) -> Path:
        lib = dest / "usr" / "lib" / "x86_64-linux-gnu"
        lib.mkdir(parents=True)
        stem = pkg.name.removesuffix("-dev")
        (lib / f"{stem}.a").write_text(pkg.version)
        (lib / f"{stem}.so").symlink_to(f"{stem}.so.1")
        return dest

    monkeypatch.setattr(debian.Archive, "versions", versions)
    monkeypatch.setattr(debian.Archive, "fetch", fetch)
    build = crun.SourceBuild(tmp_path)
    root = build.make_sysroot(["libyajl-dev", "libfoo-dev"])
    lib = root / "usr" / "lib" / "x86_64-linux-gnu"
    assert sorted(p.name for p in lib.iterdir()) == ["libbar.a", "libfoo.a", "libyajl.a"]
    assert (lib / "libyajl.a").read_text() == "2.1.0-3+deb12u2"  # the newest build
    assert {a.split("/")[0] for a in asked} == {"bookworm"}
    with pytest.raises(ProvisionError, match="Debian bookworm has no libblake3-dev"):
        build.make_sysroot(["libblake3-dev"])

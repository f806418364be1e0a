"""The Debian base of a built kind node image: `debootstrap --variant=minbase` from the Debian archive this
machine is configured with (debootstrap itself fetched privately, never installed), with systemd and what
a kubelet and a runtime need around them, packed as a tarball in the cache once per package list.

debootstrap downloads through the suite's own stand-in for wget (conformance/targets/kind/wget.py), which also
checks the InRelease signature against the project's pinned Debian keys: neither wget nor gpgv is needed on the
host.
What debootstrap needs besides (host_gaps) is named in one line before anything starts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from conformance.errors import CommandError, ProvisionError
from conformance.runtimes import debian
from conformance.targets.kind import wget

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "iptables", "kmod", "procps", "util-linux", "mount",
            "conntrack", "ethtool", "socat", "ca-certificates", "libseccomp2", "runc", "skopeo",
            "containernetworking-plugins",  # also the container-network-stack skopeo's containers-common needs
            "libglib2.0-0", "libgpgme11", "libsqlite3-0")  # what a CRI-O build (crio, conmon) links against


# what debootstrap runs on the host: (any of these commands, what provides them on Debian/Ubuntu)
HOST_TOOLS = ((("perl",), "perl-base"), (("dpkg-deb", "ar"), "dpkg or binutils"), (("gunzip", "unxz"), "gzip"),
              (("sha256sum",), "coreutils"), (("chroot",), "coreutils"), (("unshare",), "util-linux"),
              (("tar",), "tar"))
DEBOOTSTRAP_TIMEOUT = 3600.0  # about 3 min here; an hour under software emulation beside a loaded host
PASSED_ON = ("DEBIAN_ALLOW_EXPIRED", "DEBIAN_MIRROR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
             "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")


def host_gaps(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """One line naming what this host lacks to make the node base with debootstrap, or None."""
    missing = [(" or ".join(names), package) for names, package in HOST_TOOLS if not any(which(n) for n in names)]
    if not missing:
        return None
    return (f"building a kind node image's Debian base (debootstrap) needs {', '.join(m for m, _ in missing)} on "
            f"this host: install {', '.join(dict.fromkeys(p for _, p in missing))}")


def key(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> str:
    return hashlib.sha256(f"{suite}\n{' '.join(sorted(packages))}".encode()).hexdigest()[:12]


def path(cache: Path, suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> Path:
    return cache / "kind" / f"base-{suite}-{key(suite, packages)}.tar"


LIB_DIRS = ("lib/", "lib64/", "usr/lib/", "usr/lib64/", "lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/",
            "lib/aarch64-linux-gnu/", "usr/lib/aarch64-linux-gnu/")


def libraries(base: Path) -> set[str]:
    """The names of the shared libraries and loaders in a base tarball (files and links in its library
    folders), read once and kept beside it."""
    index = base.with_suffix(".libs")
    if index.exists() and index.stat().st_mtime >= base.stat().st_mtime:
        return set(index.read_text().split())
    names = set()
    with tarfile.open(base) as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            folder, _, name = path.rpartition("/")
            if f"{folder}/" in LIB_DIRS and ".so" in name:
                names.add(name)
    index.write_text("\n".join(sorted(names)) + "\n")
    return names


def tarball(cache: Path, log: Path, suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> Path:
    """cache/kind/base-<key>.tar, made with debootstrap the first time (a few minutes)."""
    out = path(cache, suite, packages)
    if out.exists():
        return out
    uri = debian.archive_uri()
    script = debian.fetch_first(cache, "debootstrap", "usr/sbin/debootstrap")
    if uri is None or script is None:
        raise ProvisionError("building a kind node image offline needs Debian's archive (for debootstrap and the "
                             "base packages); none is configured here")
    gaps = host_gaps()
    if gaps:
        raise ProvisionError(gaps)
    # folders of this run's own: another run may be making the same base beside it
    root = out.with_name(f"{out.stem}.rootfs-{os.getpid()}")
    tools = out.with_name(f"{out.stem}.bin-{os.getpid()}")  # the wget stand-in, first on debootstrap's PATH
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    wget.install(tools, str(Path(__file__).resolve().parents[3]), sys.executable)
    # a private mount namespace: the proc/sys/dev mounts debootstrap makes in the target never reach the host.
    # --no-check-gpg: the stand-in refuses an InRelease without a valid signature by a pinned Debian key
    argv = ["unshare", "--mount", "--propagation", "private", "--", str(script), "--variant=minbase",
            "--no-check-gpg", f"--include={','.join(packages)}", suite, str(root), uri]
    env = {"DEBOOTSTRAP_DIR": str(script.parents[1] / "share" / "debootstrap"), "PATH":
           f"{tools}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root.parent), "TMPDIR": str(root.parent),
           "LC_ALL": "C", **{k: v for k, v in os.environ.items() if k in PASSED_ON}}
    started = time.monotonic()
    try:
        returncode = _debootstrap(argv, env, log)
        if returncode != 0:
            raise CommandError(argv, returncode, "", f"see {log}")
        _clean(root)
        tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tmp), "."], check=True,
                       capture_output=True, timeout=600)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tools, ignore_errors=True)
    with log.open("a") as sink:
        sink.write(f"sgp: base {out.name} made in {time.monotonic() - started:.0f}s\n")
    return out


def _debootstrap(argv: list[str], env: dict[str, str], log: Path, timeout: float = DEBOOTSTRAP_TIMEOUT) -> int:
    """Run debootstrap in a session of its own, output to `log`; its exit code. Past `timeout`, or when the run
    is interrupted, the whole session is killed (its perl, dpkg and wget stand-ins too)."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            raise ProvisionError(f"debootstrap did not make the kind node base within {timeout:.0f} s (a slow host "
                                 f"or mirror; see {log})") from None
        except BaseException:
            _kill_session(proc)
            raise


def _kill_session(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _clean(root: Path) -> None:
    """What a node must not carry: apt's lists and archives, the build host's resolv.conf and machine id."""
    for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for entry in (root / sub).glob("*"):
            if entry.is_file():
                entry.unlink()
    for name in ("etc/machine-id", "var/lib/dbus/machine-id", "etc/resolv.conf", "etc/hostname"):
        path = root / name
        if path.exists() or path.is_symlink():
            path.unlink()
    (root / "etc/machine-id").write_text("")

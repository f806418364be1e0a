"""The OCI runtime under the CRI runtime: the one HANDLER names, found where the user put it, checked
before anything starts, and recorded (name, path, version) in results.json.

HANDLER=runc|crun (default runc) is looked up in OCI_BIN_DIR, then the runtime's own folder
(CONTAINERD_BIN_DIR, CRIO_BIN_DIR or a CRI-O bundle), then PATH; never another OCI runtime in its
place. The OCI runtime is part of what is tested (crun#1543 broke supplemental groups in crun alone).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance.core.versions import version_key
from conformance.errors import ProvisionError
from conformance.runtimes import debian

NAMES = ("runc", "crun")
DEFAULT = "runc"
# crun checks the bundle's ociVersion: crun 1.8.1 (Debian bookworm) takes 1.0.x only and fails the others with
# "unknown version specified"; crun >= 1.14.3 takes runtime-spec 1.2.x. containerd 1.7/2.x and every CRI-O
# that implements supplementalGroupsPolicy write 1.1 or 1.2 bundles; containerd 1.6 writes 1.0.2.
CRUN_MIN = "1.14.3"
DEBIAN_RUNC = "Debian's runc package"  # where runc found nowhere else comes from (bookworm's first)
VERSION_LINE = re.compile(r"^(?:runc|crun) version (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class OCIRuntime:
    """The OCI runtime a run uses."""

    name: str  # runc | crun (the CRI handler name)
    path: str  # the binary found
    version: str
    binary: str = ""  # what the CRI runtime is configured to run: `path`, or the suite's wrapper in front of it
    wrapper: str = ""  # why a wrapper sits in front ('' = none)
    chosen: str = ""  # why this one: 'HANDLER=crun', or the default and its reason (ocidefault.py)

    @property
    def exec_path(self) -> str:
        return self.binary or self.path

    def to_json(self) -> dict:
        out = {"name": self.name, "path": self.path, "version": self.version}
        if self.wrapper:
            out["wrapper"] = {"path": self.exec_path, "why": self.wrapper}
        if self.chosen:
            out["chosen"] = self.chosen
        return out

    @classmethod
    def from_json(cls, data: dict | None) -> OCIRuntime | None:
        if not data:
            return None
        wrapper = data.get("wrapper") or {}
        return cls(data["name"], data["path"], data.get("version", ""), wrapper.get("path", ""),
                   wrapper.get("why", ""), data.get("chosen", ""))


def ask(path: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """`<runtime> <args>` with a throwaway state root (`crun --version` makes /run/crun otherwise); OSError or
    subprocess.TimeoutExpired when it does not run."""
    with tempfile.TemporaryDirectory(prefix="sgp-oci-") as root:
        return subprocess.run([str(path), "--root", root, *args], capture_output=True, text=True, timeout=30,
                              check=False)


def probe_version(path: Path | str) -> str | None:
    """`<runtime> --version` → '1.1.5+ds1' / '1.21'; None when it does not run."""
    try:
        res = ask(path, "--version")
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = VERSION_LINE.search(res.stdout)
    return match.group(1) if res.returncode == 0 and match else None


def locate(name: str, dirs: list[tuple[str, Path]], use_path: bool = True) -> tuple[Path, str] | None:
    """(binary, where it was found): the first of `dirs` (label, folder) that holds it, else PATH."""
    for label, folder in dirs:
        if (folder / name).is_file():
            return folder / name, label
    found = shutil.which(name) if use_path else None
    return (Path(found), "PATH") if found else None


def bundle_problem(name: str, version: str, runtime: str, runtime_version: str) -> str:
    """Why this OCI runtime cannot run the bundles of `runtime` `runtime_version`; '' if it can."""
    if name != "crun":
        return ""
    old_bundles = runtime == "containerd" and version_key(runtime_version)[:2] < (1, 7)
    if old_bundles or version_key(version) >= version_key(CRUN_MIN):
        return ""
    return (f"crun {version} cannot run {runtime} {runtime_version}'s bundles (their runtime-spec version needs "
            f"crun >= {CRUN_MIN}; it fails with 'unknown version specified')")


def resolve(handler: str, runtime: str, runtime_version: str, dirs: list[tuple[str, Path]],
            cache: Path | None = None, use_path: bool = True) -> OCIRuntime:
    """The OCI runtime for HANDLER=`handler` ('' = runc); ProvisionError, one line, before anything starts.
    runc found nowhere is Debian's runc package, fetched into `cache` (no host package needed). Without
    `use_path` this host's PATH is not searched (a kind node's OCI runtime: its base has Debian's runc)."""
    name = handler or DEFAULT
    if name not in NAMES:
        raise ProvisionError(f"HANDLER={handler}: must be one of {', '.join(NAMES)}")
    where = ", ".join([label for label, _ in dirs] + (["PATH"] if use_path else []))
    hit = locate(name, dirs, use_path)
    if hit is None and name == "runc" and cache is not None and debian.available():
        fetched = debian.fetch_first(cache, "runc", "usr/sbin/runc")
        hit = (fetched, DEBIAN_RUNC) if fetched is not None else None
    if hit is None:
        raise ProvisionError(f"HANDLER={name}: no {name} in {where}")
    path, label = hit
    version = probe_version(path)
    if version is None:
        raise ProvisionError(f"HANDLER={name}: {path} (from {label}) does not run (`{path} --version` failed)")
    problem = bundle_problem(name, version, runtime, runtime_version)
    if problem:
        raise ProvisionError(f"HANDLER={name}: {path} (from {label}): {problem}; put a newer {name} in OCI_BIN_DIR "
                             f"(`make crun` builds one from Debian's source and prints its folder)")
    return OCIRuntime(name, str(path), version)


def search_dirs(oci_bin_dir: Path | None, runtime_label: str, runtime_bin_dir: Path | None) -> list[tuple[str, Path]]:
    """Where to look, in order: OCI_BIN_DIR, then the runtime's own folder (PATH comes last, in locate)."""
    dirs = []
    if oci_bin_dir is not None:
        dirs.append((f"OCI_BIN_DIR={oci_bin_dir}", oci_bin_dir))
    if runtime_bin_dir is not None:
        dirs.append((f"{runtime_label}={runtime_bin_dir}" if runtime_label else str(runtime_bin_dir),
                     runtime_bin_dir))
    return dirs

"""The OCI runtime a run uses when HANDLER names none: one that gives pods user namespaces where this kernel
can, else the stock runc, with the reason recorded either way (results.json `runtime.oci_runtime.chosen`).

Pods with `hostUsers: false` need idmapped mounts: Linux >= 6.3 (tmpfs got them there; Kubernetes' user
namespaces page) and an OCI runtime whose `features` lists `mountExtensions.idmap` (runc >= 1.2, crun >= 1.9;
containerd 2.x reads exactly that entry and advertises user_namespaces=false without it). Debian bookworm's
runc 1.1.5 has no such entry, and newer suites' runc and crun binaries need a newer glibc, so the default is,
in order: the stock runc (what HANDLER=runc resolves to) if its `features` has idmap mounts; a crun that has
them in OCI_BIN_DIR, the runtime's folder or PATH; the suite's own crun, built once from Debian's source into
the cache (`make crun`; gcc, make, pkg-config and libc's headers from the host); else the stock runc, and the
reason in one line. HANDLER=runc or HANDLER=crun still gives exactly that runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

from conformance.core.versions import version_key
from conformance.errors import CommandError, ProvisionError
from conformance.runtimes import crun, oci
from conformance.runtimes.oci import OCIRuntime

KERNEL_MIN = "6.3"
MAX_USER_NAMESPACES = Path("/proc/sys/user/max_user_namespaces")


def kernel_problem(release: str | None = None, max_userns: Path = MAX_USER_NAMESPACES) -> str:
    """Why this kernel cannot give pods user namespaces ('' if it can)."""
    release = release or os.uname().release
    if version_key(release.split("-")[0]) < version_key(KERNEL_MIN):
        return f"Linux {release} (pods with hostUsers: false need idmapped mounts of tmpfs: Linux {KERNEL_MIN})"
    try:
        if int(max_userns.read_text().strip()) == 0:
            return f"user namespaces are disabled ({max_userns} is 0)"
    except (OSError, ValueError):
        pass
    return ""


def idmap_problem(runtime: OCIRuntime) -> str:
    """Why `runtime` cannot give pods idmapped mounts, in its own words ('' if its `features` lists them)."""
    label = f"{runtime.name} {runtime.version}"
    try:
        res = oci.ask(runtime.path, "features")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{label}: `{runtime.name} features` did not run ({exc})"
    if res.returncode != 0:
        said = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"{label} has no `features` command ({said})"
    try:
        idmap = (json.loads(res.stdout).get("linux", {}).get("mountExtensions", {}).get("idmap", {})
                 .get("enabled"))
    except (ValueError, AttributeError):
        return f"{label}: `{runtime.name} features` is not JSON"
    if idmap is True:
        return ""
    return f"{label}: `{runtime.name} features` has no mountExtensions.idmap (idmapped mounts)"


def chosen(runtime: OCIRuntime, why: str) -> OCIRuntime:
    return replace(runtime, chosen=why)


def _try(name: str, runtime: str, version: str, dirs: list[tuple[str, Path]],
         cache: Path | None, use_path: bool) -> tuple[OCIRuntime | None, str]:
    """(HANDLER=`name`'s runtime, '') when it has idmapped mounts, else (it or None, why not)."""
    try:
        found = oci.resolve(name, runtime, version, dirs, cache, use_path)
    except ProvisionError as exc:
        return None, str(exc)
    return found, idmap_problem(found)


def _built(cache: Path | None) -> tuple[OCIRuntime | None, str]:
    """The suite's crun (built from Debian's source once, then cached), or why there is none."""
    if cache is None:
        return None, "no cache to build crun into"
    try:
        binary = crun.ensure_crun(cache)
    except (ProvisionError, CommandError) as exc:
        return None, f"crun could not be built: {str(exc).splitlines()[0][:300]}"
    built = OCIRuntime("crun", str(binary), crun.crun_version(binary) or "")
    problem = idmap_problem(built)
    return (None, problem) if problem else (built, "")


def resolve(handler: str, runtime: str, version: str, dirs: list[tuple[str, Path]],
            cache: Path | None = None, use_path: bool = True) -> OCIRuntime:
    """HANDLER=`handler`'s OCI runtime exactly; without HANDLER, the default (module docstring). Without
    `use_path` this host's PATH is not searched (a kind node's: the stock runc is its base's, Debian's)."""
    if handler:
        return chosen(oci.resolve(handler, runtime, version, dirs, cache, use_path), f"HANDLER={handler}")
    kernel = kernel_problem()
    if kernel:
        return chosen(oci.resolve("runc", runtime, version, dirs, cache, use_path),
                      f"default: the stock runc; no OCI runtime gives pods user namespaces on {kernel}")
    stock, stock_problem = _try("runc", runtime, version, dirs, cache, use_path)
    if stock is not None and not stock_problem:
        return chosen(stock, "default: the stock runc (its `features` lists idmapped mounts)")
    found, crun_problem = _try("crun", runtime, version, dirs, cache, use_path)
    if found is not None and not crun_problem:
        return chosen(found, f"default: crun, for user namespaces ({stock_problem})")
    built, build_problem = _built(cache)
    if built is not None:
        return chosen(built, f"default: crun built by the suite from Debian's source, for user namespaces "
                             f"({stock_problem})")
    if stock is None:
        raise ProvisionError(f"no OCI runtime for the default: {stock_problem}; {build_problem}")
    return chosen(stock, f"default: the stock runc, without user namespaces ({stock_problem}; {build_problem}; "
                         "`make crun` says what it needs)")

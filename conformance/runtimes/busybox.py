"""The static busybox the test images are built from: SGP_BUSYBOX, the host's when statically linked, else
Debian's busybox-static fetched into the cache (no host package)."""

from __future__ import annotations

import os
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes import debian, executables


def find(cache: Path | None = None) -> Path:
    """The static busybox the images are built from: SGP_BUSYBOX, the host's when it is statically linked,
    else Debian's busybox-static fetched into the cache (conformance.runtimes.debian; no host package)."""
    given = os.environ.get("SGP_BUSYBOX", "")
    if given:
        if not Path(given).is_file():
            raise ProvisionError(f"SGP_BUSYBOX={given}: no such file")
        return Path(given)
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file() and _static(Path(candidate)):
            return Path(candidate)
    if not debian.available():
        raise ProvisionError("the test images need a statically linked busybox: set SGP_BUSYBOX=<path> (no Debian "
                             "archive here to fetch busybox-static from)")
    from conformance.core.options import default_cache  # options -> catalogue -> archive: imported when needed

    found = debian.fetch_first(cache or default_cache(), "busybox-static", "bin/busybox")
    if found is None:
        raise ProvisionError("Debian's archive has no busybox-static: set SGP_BUSYBOX=<a static busybox>")
    return found


def _static(path: Path) -> bool:
    """Is `path` a statically linked binary (it goes into images that have no libraries)?"""
    try:
        return executables.inspect(path, "busybox").interpreter is None
    except ProvisionError:
        return False

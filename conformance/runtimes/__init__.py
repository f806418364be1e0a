"""Runtime providers by name (the backend registry): each starts a private runtime."""

from __future__ import annotations

from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes.containerd import Containerd
from conformance.runtimes.crio import Crio

RUNTIMES = ("containerd", "crio")


def provider(name: str, version: str | None, containerd_bin_dir: Path | None, crio_bin_dir: Path | None,
             cache: Path, state_root: Path, extra_handlers: dict[str, str] | None = None,
             oci_bin_dir: Path | None = None) -> Containerd | Crio:
    """The provider for RUNTIME=`name`."""
    if name == "containerd":
        return Containerd(version, containerd_bin_dir, cache, state_root, extra_handlers, oci_bin_dir)
    if name == "crio":
        return Crio(crio_bin_dir, state_root, version, cache, oci_bin_dir, extra_handlers)
    raise ProvisionError(f"RUNTIME={name!r}: must be one of {', '.join(RUNTIMES)}")

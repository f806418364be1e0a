"""Run options, shared by the pytest plugin and the console command (one definition)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.catalogue import PROJECT


def default_cache() -> Path:
    return Path(os.environ.get("SGP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                / "sgp-conformance")


@dataclass
class Options:
    target: str = "node"
    runtime: str = "containerd"
    version: str | None = None
    containerd_bin_dir: Path | None = None
    crio_bin_dir: Path | None = None
    oci_bin_dir: Path | None = None
    cri_endpoint: str | None = None
    handler: str = ""
    image_load: str = "auto"
    crio_storage: tuple[str, str] | None = None
    results_dir: Path = Path("results")
    scenarios_dir: Path = PROJECT / "scenarios"
    images_dir: Path = PROJECT / "images"
    cache_dir: Path = field(default_factory=default_cache)
    extra_handlers: dict[str, str] = field(default_factory=dict)  # handler name -> OCI runtime binary
    state_dir: Path = Path(os.environ.get("SGP_STATE_DIR", "/var/tmp/sgpconf"))


# (option name, env var, help). The plugin adds --sgp-<name>-style flags; the Makefile passes env vars.
FLAGS: list[tuple[str, str, str]] = [
    ("target", "TARGET", "where cases run: node (CRI socket)"),
    ("runtime", "RUNTIME", "runtime to start privately: containerd or crio"),
    ("version", "VERSION", "runtime version: 2 (newest 2.x, default), 2.1, 1.7, 1.6 or exact"),
    ("containerd-bin-dir", "CONTAINERD_BIN_DIR", "folder with your containerd binaries instead of a download"),
    ("crio-bin-dir", "CRIO_BIN_DIR", "folder with crio, pinns, conmon, runc or crun"),
    ("oci-bin-dir", "OCI_BIN_DIR", "folder searched first for the OCI runtime HANDLER names (runc, crun)"),
    ("cri-endpoint", "CRI_ENDPOINT", "use an already running runtime at this CRI socket"),
    ("handler", "HANDLER", "OCI runtime for the pods: runc (default) or crun, from OCI_BIN_DIR, the runtime's "
                           "folder, then PATH"),
    ("image-load", "IMAGE_LOAD", "how images get into the runtime: auto, ctr, skopeo, registry"),
    ("crio-storage", "CRIO_STORAGE", "containers-storage root:runroot of an existing CRI-O (skopeo loading)"),
    ("results-dir", "RESULTS_DIR", "where results.json and runtime logs go (default results/)"),
    ("scenarios", "SCENARIOS", "scenario folder (default the project's scenarios/)"),
    ("images", "IMAGES", "image folder (default the project's images/)"),
]


def from_mapping(values: dict[str, str | None]) -> Options:
    """Options from flag values keyed by flag name (missing or empty = default)."""
    opts = Options()

    def get(name: str) -> str | None:
        value = values.get(name)
        return value if value not in (None, "") else None

    opts.target = get("target") or opts.target
    opts.runtime = get("runtime") or opts.runtime
    opts.version = get("version")
    if get("containerd-bin-dir"):
        opts.containerd_bin_dir = Path(get("containerd-bin-dir"))  # type: ignore[arg-type]
    if get("crio-bin-dir"):
        opts.crio_bin_dir = Path(get("crio-bin-dir"))  # type: ignore[arg-type]
    if get("oci-bin-dir"):
        opts.oci_bin_dir = Path(get("oci-bin-dir"))  # type: ignore[arg-type]
    opts.cri_endpoint = get("cri-endpoint")
    opts.handler = get("handler") or ""
    opts.image_load = get("image-load") or "auto"
    storage = get("crio-storage")
    if storage:
        root, _, runroot = storage.partition(":")
        opts.crio_storage = (root, runroot or "/run/containers/storage")
    opts.results_dir = Path(get("results-dir") or "results")
    if get("scenarios"):
        opts.scenarios_dir = Path(get("scenarios"))  # type: ignore[arg-type]
    if get("images"):
        opts.images_dir = Path(get("images"))  # type: ignore[arg-type]
    return opts

"""What every runtime provider hands to a target."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from conformance.runtimes.oci import OCIRuntime
from conformance.runtimes.process import PrivateDaemon


@dataclass
class Provisioned:
    """A runtime the suite started (daemon set) or was pointed at (daemon None)."""

    runtime: str
    version: str
    endpoint: str
    daemon: PrivateDaemon | None = None
    handlers: list[str] = field(default_factory=list)
    oci: OCIRuntime | None = None  # the OCI runtime HANDLER chose (the runtime's default)
    ctr: tuple[str, ...] = ()  # containerd's ctr with --address, for image import
    storage: tuple[str, str] | None = None  # CRI-O containers-storage (root, runroot)
    hosts_dir: Path | None = None  # containerd certs.d: lets it pull from the loopback registry over HTTP
    source: str = ""  # where its binaries came from (a folder option, Debian's archive, a release download)

    @property
    def cgroup_parent(self) -> str:
        return self.daemon.cgroup_parent if self.daemon else ""


def unique_dir(root: Path, prefix: str) -> Path:
    """A fresh, short state folder (socket paths must stay under 108 bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir()
    return path

"""The local cluster's network: none beyond the host's. Test pods use hostNetwork (process identity does not
depend on the network), and a loopback-only CNI config marks the runtime's network ready, so the node is
Ready as on a real cluster. CRI-O checks that the plugin binary exists, so Debian's `loopback` plugin
(containernetworking-plugins, fetched privately into the cache) sits beside the config; it only ever
brings up `lo` inside a pod network namespace and is never called for hostNetwork pods."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes import debian

PACKAGE = "containernetworking-plugins"
CONFIG = {"cniVersion": "1.0.0", "name": "sgp-loopback", "plugins": [{"type": "loopback"}]}


def loopback_plugin(cache: Path) -> Path:
    """Debian's `loopback` CNI plugin (the machine's own suite first), unpacked into the cache."""
    if not debian.available():
        raise ProvisionError("TARGET=local needs the CNI loopback plugin from Debian's containernetworking-plugins, "
                             "and no Debian archive is configured")
    plugin = debian.fetch_first(cache, PACKAGE, "usr/lib/cni/loopback")
    if plugin is not None:
        return plugin
    raise ProvisionError(f"Debian's archive has no {PACKAGE} with a loopback plugin")


def install(plugin: Path, conf_dir: Path, bin_dir: Path) -> None:
    """The loopback config and plugin into the runtime's private CNI folders (both runtimes watch them)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(plugin, bin_dir / "loopback")
    (conf_dir / "10-sgp-loopback.conflist").write_text(json.dumps(CONFIG) + "\n")

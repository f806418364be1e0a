"""A private containerd of a chosen version: binaries, config, start, stop."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conformance.core.versions import binary_version, version_key
from conformance.errors import ProvisionError
from conformance.runtimes import crun, debian, download, oci, ocidefault, release
from conformance.runtimes.base import Provisioned, unique_dir
from conformance.runtimes.download import CONTAINERD
from conformance.runtimes.process import PrivateDaemon

DEFAULT_VERSION = "2"

CONFIG_V3 = """version = 3
root = '{d}/root'
state = '{d}/state'
temp = '{d}/tmp'
disabled_plugins = ['io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs', 'io.containerd.differ.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']

[grpc]
  address = '{sock}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{sandbox_image}'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '{d}/certs.d'

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = '{default}'
{runtimes}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{d}/cni/bin']
    conf_dir = '{d}/cni/conf'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.internal.v1.opt']
  path = '{d}/opt'

[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = '{d}/verifier'
"""

RUNTIME_V3 = """    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{name}]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{name}.options]
        BinaryName = '{binary}'
        Root = '{d}/oci/{name}'
        SystemdCgroup = false
"""

CONFIG_V2 = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{sock}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  enable_cdi = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{default}"
{runtimes}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true
"""

RUNTIME_V2 = """    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{binary}"
        Root = "{d}/oci/{name}"
        SystemdCgroup = false
"""


def render_config(version: str, state_dir: Path, sandbox_image: str, runtimes: dict[str, str],
                  default: str = "runc") -> str:
    """The config file for `version` (format 3 for 2.x, format 2 for 1.x); `runtimes` maps handler name →
    OCI runtime binary, `default` is one of them."""
    major = version_key(version)[0]
    template, runtime = (CONFIG_V3, RUNTIME_V3) if major >= 2 else (CONFIG_V2, RUNTIME_V2)
    tables = "".join(runtime.format(name=n, binary=b, d=state_dir) for n, b in sorted(runtimes.items()))
    return template.format(d=state_dir, sock=state_dir / "containerd.sock", sandbox_image=sandbox_image,
                           runtimes=tables, default=default)


def containerd_version(bin_dir: Path) -> str:
    return binary_version(bin_dir / "containerd", r"\sv?(\d+\.\d+\.\d+\S*)")


def resolve_binaries(wanted: str | None, bin_dir: Path | None, cache: Path) -> tuple[str, Path]:
    """(version, folder with containerd, containerd-shim-runc-v2, ctr)."""
    if bin_dir is not None:
        for binary in ("containerd", "containerd-shim-runc-v2", "ctr"):
            if not (bin_dir / binary).is_file():
                raise ProvisionError(f"CONTAINERD_BIN_DIR={bin_dir}: {binary} is missing")
        return containerd_version(bin_dir), bin_dir
    wanted = wanted or DEFAULT_VERSION
    memo = cache / "resolved-containerd.json"
    known = json.loads(memo.read_text()) if memo.exists() else {}
    key = f"{wanted} from {CONTAINERD.base()}" if CONTAINERD.overridden() else wanted
    hit = known.get(key)
    if hit and Path(hit["bin_dir"]).is_dir() and time.time() - hit["at"] < debian.LIST_MAX_AGE:
        return hit["version"], Path(hit["bin_dir"])
    version, found = _resolve(wanted, cache)
    known[key] = {"version": version, "bin_dir": str(found), "at": time.time()}
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(known, indent=1))
    return version, found


def source_of(bin_dir: Path, given: Path | None) -> str:
    """Where containerd's binaries came from, in words for the header and results.json."""
    if given is not None:
        return f"CONTAINERD_BIN_DIR={given}"
    url = download.origin(bin_dir)
    return f"downloaded from {url}" if url else f"Debian's {bin_dir.parents[1].name}"


def _resolve(wanted: str, cache: Path) -> tuple[str, Path]:
    """containerd's release tarballs when CONTAINERD_RELEASE_URL is set; else the newest match in Debian's
    suites, and the release tarballs where Debian's archive cannot be reached or has no match."""
    from_debian = not CONTAINERD.overridden() and debian.available()
    if from_debian:
        found = debian.fetch_newest(cache, "containerd", wanted)
        if found is not None:
            best, root = found
            return best.upstream, root / "usr" / "bin"
    try:
        version, root = release.fetch(wanted, cache / "runtimes")
    except ProvisionError as exc:
        if not from_debian:
            raise
        raise ProvisionError(f"Debian's archive has no containerd matching VERSION={wanted} (suites: "
                             f"{', '.join(debian.SUITES)}) and its release tarballs failed: {exc}; set "
                             "CONTAINERD_BIN_DIR to your binaries") from exc
    return version, root / "bin"


class Containerd:
    """Provision and run a private containerd."""

    name = "containerd"

    def __init__(self, version: str | None, bin_dir: Path | None, cache: Path, state_root: Path,
                 extra_handlers: dict[str, str] | None = None, oci_bin_dir: Path | None = None):
        self.extra_handlers = extra_handlers or {}
        self.wanted = version
        self.bin_dir = bin_dir
        self.cache = cache
        self.state_root = state_root
        self.oci_bin_dir = oci_bin_dir

    def start(self, sandbox_image: str, handler: str = "") -> Provisioned:
        """Write the private config and return the daemon (not yet started), with the OCI runtime HANDLER
        asks for (default: ocidefault.py) as containerd's default and only OCI runtime (plus extra handlers)."""
        version, bin_dir = resolve_binaries(self.wanted, self.bin_dir, self.cache)
        chosen = ocidefault.resolve(handler, "containerd", version,
                             oci.search_dirs(self.oci_bin_dir, "CONTAINERD_BIN_DIR", self.bin_dir), self.cache)
        state = unique_dir(self.state_root, f"containerd-{version}")
        if chosen.name == "crun":
            chosen = crun.wrapped(chosen, state / "bin")
        for sub in ("root", "state", "tmp", "opt", "cni/bin", "cni/conf", "verifier", "oci", "certs.d"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        runtimes = {chosen.name: chosen.exec_path, **self.extra_handlers}
        config = state / "config.toml"
        config.write_text(render_config(version, state, sandbox_image, runtimes, chosen.name))
        env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "TMPDIR": str(state / "tmp"), "HOME": str(state)}
        daemon = PrivateDaemon("containerd", state, [str(bin_dir / "containerd"), "--config", str(config)],
                               env, cgroup_parent=f"sgpconf-{state.name}")
        sock = state / "containerd.sock"
        return Provisioned(runtime="containerd", version=version, endpoint=f"unix://{sock}", daemon=daemon,
                           source=source_of(bin_dir, self.bin_dir),
                           handlers=sorted(runtimes), oci=chosen, ctr=(str(bin_dir / "ctr"), "--address", str(sock)),
                           hosts_dir=state / "certs.d")

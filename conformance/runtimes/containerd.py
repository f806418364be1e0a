"""A private containerd of a chosen version: binaries, config, start, stop."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes import crun, debian, release
from conformance.runtimes.base import Provisioned, unique_dir
from conformance.runtimes.process import PrivateDaemon
from conformance.runtimes.versions import matches, version_key

DEFAULT_VERSION = "2"
OCI_RUNTIMES = {"runc": ("runc",), "crun": ("crun",)}

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
    default_runtime_name = 'runc'
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
    default_runtime_name = "runc"
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


def render_config(version: str, state_dir: Path, sandbox_image: str, oci: dict[str, str]) -> str:
    """The config file for `version`: format 3 for 2.x, format 2 for 1.x."""
    major = version_key(version)[0]
    template, runtime = (CONFIG_V3, RUNTIME_V3) if major >= 2 else (CONFIG_V2, RUNTIME_V2)
    runtimes = "".join(runtime.format(name=n, binary=b, d=state_dir) for n, b in sorted(oci.items()))
    return template.format(d=state_dir, sock=state_dir / "containerd.sock", sandbox_image=sandbox_image,
                           runtimes=runtimes)


def oci_runtimes(overrides: dict[str, str] | None = None, want_crun: bool = False, cache: Path | None = None,
                 state: Path | None = None) -> dict[str, str]:
    """OCI runtime handlers found on this machine (runc, crun), by name → binary path.

    With `want_crun` (and no override for it), crun is one that works with this containerd: the system
    crun if new enough, else built once from Debian source into `cache`; on a hybrid-cgroup host the
    path is a wrapper written into `state` (see conformance/runtimes/crun.py)."""
    found = {}
    for name, candidates in OCI_RUNTIMES.items():
        path = (overrides or {}).get(name) or next((shutil.which(c) for c in candidates if shutil.which(c)), None)
        if name == "crun" and want_crun and not (overrides or {}).get(name):
            if cache is None or state is None:
                raise ProvisionError("oci_runtimes(want_crun=True) needs cache and state")
            path = str(crun.handler_binary(crun.ensure_crun(cache), state))
        if path:
            found[name] = path
    return found


def binary_version(bin_dir: Path) -> str:
    out = subprocess.run([str(bin_dir / "containerd"), "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\s v?(\d+\.\d+\.\d+\S*)", out.stdout)
    if out.returncode != 0 or not match:
        raise ProvisionError(f"{bin_dir / 'containerd'} --version failed: {out.stderr or out.stdout}")
    return match.group(1)


def resolve_binaries(wanted: str | None, bin_dir: Path | None, cache: Path) -> tuple[str, Path]:
    """(version, folder with containerd, containerd-shim-runc-v2, ctr)."""
    if bin_dir is not None:
        for binary in ("containerd", "containerd-shim-runc-v2", "ctr"):
            if not (bin_dir / binary).is_file():
                raise ProvisionError(f"CONTAINERD_BIN_DIR={bin_dir}: {binary} is missing")
        return binary_version(bin_dir), bin_dir
    wanted = wanted or DEFAULT_VERSION
    memo = cache / "resolved-containerd.json"
    known = json.loads(memo.read_text()) if memo.exists() else {}
    hit = known.get(wanted)
    if hit and Path(hit["bin_dir"]).is_dir() and time.time() - hit["at"] < debian.LIST_MAX_AGE:
        return hit["version"], Path(hit["bin_dir"])
    version, found = _resolve(wanted, cache)
    known[wanted] = {"version": version, "bin_dir": str(found), "at": time.time()}
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(known, indent=1))
    return version, found


def _resolve(wanted: str, cache: Path) -> tuple[str, Path]:
    """Newest match in Debian's suites, else containerd's release tarballs."""
    if debian.available():
        archive = debian.Archive(cache)
        candidates = []
        for suite in debian.SUITES:
            candidates += [p for p in archive.versions(suite, "containerd") if matches(p.upstream, wanted)]
        if not candidates:
            raise ProvisionError(f"Debian's archive has no containerd matching VERSION={wanted} "
                                 f"(suites: {', '.join(debian.SUITES)}); set CONTAINERD_BIN_DIR to your binaries")
        best = max(candidates, key=lambda p: version_key(p.upstream))
        root = archive.fetch(best, cache / "runtimes" / f"containerd-{best.version}")
        return best.upstream, root / "usr" / "bin"
    version, root = release.fetch(wanted, cache / "runtimes")
    return version, root / "bin"


class Containerd:
    """Provision and run a private containerd."""

    name = "containerd"

    def __init__(self, version: str | None, bin_dir: Path | None, cache: Path, state_root: Path,
                 extra_handlers: dict[str, str] | None = None):
        self.extra_handlers = extra_handlers or {}
        self.wanted = version
        self.bin_dir = bin_dir
        self.cache = cache
        self.state_root = state_root

    def start(self, sandbox_image: str, want_crun: bool = False) -> Provisioned:
        version, bin_dir = resolve_binaries(self.wanted, self.bin_dir, self.cache)
        state = unique_dir(self.state_root, f"containerd-{version}")
        try:
            oci = {**oci_runtimes(self.extra_handlers, want_crun, self.cache, state), **self.extra_handlers}
            if "runc" not in oci:
                raise ProvisionError("runc is needed: apt-get install runc")
        except BaseException:
            shutil.rmtree(state, ignore_errors=True)
            raise
        for sub in ("root", "state", "tmp", "opt", "cni/bin", "cni/conf", "verifier", "oci", "certs.d"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        config = state / "config.toml"
        config.write_text(render_config(version, state, sandbox_image, oci))
        env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "TMPDIR": str(state / "tmp"), "HOME": str(state)}
        daemon = PrivateDaemon("containerd", state, [str(bin_dir / "containerd"), "--config", str(config)],
                               env, cgroup_parent=f"sgpconf-{state.name}")
        sock = state / "containerd.sock"
        return Provisioned(runtime="containerd", version=version, endpoint=f"unix://{sock}", daemon=daemon,
                           handlers=sorted(oci), ctr=(str(bin_dir / "ctr"), "--address", str(sock)),
                           hosts_dir=state / "certs.d")

"""A private CRI-O: from a folder of the user's binaries (CRIO_BIN_DIR: crio, pinns, conmon and the OCI
runtime), or from CRI-O's static bundle of a chosen VERSION (downloaded and checksum-verified).

Everything CRI-O writes is kept under the state folder: config, storage, registries and policy files,
version and clean-shutdown files, run dirs. A restart reuses the same config and state (see
PrivateDaemon), so CRI-O restores its pods and containers the way it does on a node.
"""

from __future__ import annotations

from pathlib import Path

from conformance.core.versions import binary_version
from conformance.errors import ProvisionError
from conformance.runtimes import crun, download, oci, ocidefault, release
from conformance.runtimes.base import Provisioned, unique_dir
from conformance.runtimes.process import PrivateDaemon

NEEDED = ("crio", "pinns", "conmon")
NO_SOURCE = ("RUNTIME=crio takes CRI-O's static bundle (VERSION=<x.y>, default its newest release), downloaded from "
             "CRIO_RELEASE_URL; or CRIO_BIN_DIR=<folder with crio, pinns, conmon and runc or crun>; or CRI_ENDPOINT "
             "at a running CRI-O")

CONFIG = """[crio]
root = "{d}/storage"
runroot = "{d}/runroot"
storage_driver = "overlay"
log_dir = "{d}/logs"
version_file = "{d}/version"
version_file_persist = "{d}/version-persist"
clean_shutdown_file = "{d}/clean.shutdown"

[crio.api]
listen = "{d}/crio.sock"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "{default}"
conmon = "{bin}/conmon"
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
container_exits_dir = "{d}/exits"
container_attach_socket_dir = "{d}/attach"
namespaces_dir = "{d}/ns"
pinns_path = "{bin}/pinns"
drop_infra_ctr = true
hooks_dir = []
{runtimes}
[crio.image]
pause_image = "{pause}"
pause_command = "/pause"
signature_policy = "{d}/policy.json"
signature_policy_dir = "{d}/policies"
namespaced_auth_dir = "{d}/auth"

[crio.network]
network_dir = "{d}/cni/conf"
plugin_dirs = ["{d}/cni/bin"]

[crio.nri]
enable_nri = false

[crio.metrics]
enable_metrics = false
"""

RUNTIME = """[crio.runtime.runtimes.{name}]
runtime_path = "{path}"
runtime_root = "{d}/oci/{name}"
"""


def render_config(state: Path, bin_dir: Path, pause: str, runtimes: dict[str, str], default: str) -> str:
    """crio.conf: every path under `state`; `runtimes` maps handler name → binary; `default` is one of them."""
    tables = "".join(RUNTIME.format(name=n, path=p, d=state) for n, p in sorted(runtimes.items()))
    return CONFIG.format(d=state, bin=bin_dir, pause=pause, runtimes=tables, default=default)


def crio_version(bin_dir: Path) -> str:
    return binary_version(bin_dir / "crio", r"(?i)version:?\s+v?(\d+\.\d+\.\d+\S*)")


def check_bin_dir(bin_dir: Path, label: str) -> None:
    missing = [b for b in NEEDED if not (bin_dir / b).is_file()]
    if missing:
        raise ProvisionError(f"{label}={bin_dir}: missing {', '.join(missing)}")


class Crio:
    """Provision and run a private CRI-O."""

    name = "crio"

    def __init__(self, bin_dir: Path | None, state_root: Path, version: str | None = None,
                 cache: Path | None = None, oci_bin_dir: Path | None = None,
                 extra_handlers: dict[str, str] | None = None):
        if bin_dir is not None:
            check_bin_dir(bin_dir, "CRIO_BIN_DIR")
        self.bin_dir = bin_dir
        self.wanted = version
        self.cache = cache
        self.state_root = state_root
        self.oci_bin_dir = oci_bin_dir
        self.extra_handlers = extra_handlers or {}

    def binaries(self) -> tuple[str, Path, str]:
        """(version, folder with crio/pinns/conmon/runc/crun, its label for messages)."""
        if self.bin_dir is not None:
            return crio_version(self.bin_dir), self.bin_dir, "CRIO_BIN_DIR"
        assert self.cache is not None
        try:
            version, bin_dir = release.fetch_crio(self.wanted, self.cache / "runtimes")
        except ProvisionError as exc:
            raise ProvisionError(f"{exc}. {NO_SOURCE}") from exc
        check_bin_dir(bin_dir, f"the CRI-O {version} bundle")
        return version, bin_dir, f"the CRI-O {version} bundle"

    def start(self, sandbox_image: str, handler: str = "") -> Provisioned:
        """Write the private config and return the daemon (not yet started), with the OCI runtime
        HANDLER asks for (default: ocidefault.py) as CRI-O's default and only OCI runtime."""
        version, bin_dir, label = self.binaries()
        chosen = ocidefault.resolve(handler, "crio", version, oci.search_dirs(self.oci_bin_dir, label, bin_dir),
                                    self.cache)
        state = unique_dir(self.state_root, f"crio-{version}")
        if chosen.name == "crun":
            chosen = crun.wrapped(chosen, state / "bin")
        for sub in ("storage", "runroot", "logs", "exits", "attach", "ns", "cni/conf", "cni/bin", "oci", "auth",
                    "registries.d", "tmp", "crio.conf.d"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (state / "registries.conf").write_text('unqualified-search-registries = []\n'
                                               '[[registry]]\nprefix = "localhost"\nlocation = "localhost"\n'
                                               'insecure = true\n')
        (state / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\nroot = "{state}/storage"\n'
                                            f'runroot = "{state}/runroot"\n')
        config = state / "crio.conf"
        runtimes = {chosen.name: chosen.exec_path, **self.extra_handlers}
        config.write_text(render_config(state, bin_dir, sandbox_image, runtimes, chosen.name))
        env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "TMPDIR": str(state / "tmp"), "HOME": str(state),
               "CONTAINERS_STORAGE_CONF": str(state / "storage.conf")}
        argv = [str(bin_dir / "crio"), "--config", str(config), "--config-dir", str(state / "crio.conf.d"),
                "--registries-conf", str(state / "registries.conf"),
                "--registries-conf-dir", str(state / "registries.d"), "--disable-hostport-mapping"]
        daemon = PrivateDaemon("crio", state, argv, env, cgroup_parent=f"sgpconf-{state.name}")
        url = download.origin(bin_dir) if self.bin_dir is None else None
        return Provisioned(runtime="crio", version=version, endpoint=f"unix://{state / 'crio.sock'}",
                           source=f"{label}={bin_dir}" if url is None else f"{label}, downloaded from {url}",
                           daemon=daemon, handlers=sorted(runtimes), oci=chosen,
                           storage=(str(state / "storage"), str(state / "runroot")))

"""A private CRI-O from a folder of the user's binaries (CRIO_BIN_DIR): crio, pinns, conmon, runc or crun.

CRI-O is not packaged by Debian, so the suite never downloads it. Everything CRI-O writes is
kept under the state folder: config, storage, registries and policy files, run dirs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.runtimes.base import Provisioned, unique_dir
from conformance.runtimes.process import PrivateDaemon

NEEDED = ("crio", "pinns", "conmon")

CONFIG = """[crio]
root = "{d}/storage"
runroot = "{d}/runroot"
storage_driver = "overlay"
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
{runtimes}
[crio.image]
pause_image = "{pause}"
pause_command = "/pause"
signature_policy = "{d}/policy.json"
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


def find_oci(bin_dir: Path) -> dict[str, str]:
    found = {}
    for name in ("crun", "runc"):
        path = bin_dir / name if (bin_dir / name).is_file() else shutil.which(name)
        if path:
            found[name] = str(path)
    return found


def render_config(state: Path, bin_dir: Path, pause: str, oci: dict[str, str], default: str) -> str:
    runtimes = "".join(RUNTIME.format(name=n, path=p, d=state) for n, p in sorted(oci.items()))
    return CONFIG.format(d=state, bin=bin_dir, pause=pause, runtimes=runtimes, default=default)


class Crio:
    """Run a private CRI-O from CRIO_BIN_DIR."""

    name = "crio"

    def __init__(self, bin_dir: Path | None, state_root: Path):
        if bin_dir is None:
            raise ProvisionError(
                "RUNTIME=crio needs CRIO_BIN_DIR=<folder with crio, pinns, conmon and runc or crun> "
                "(for example the bin/ folder of a CRI-O static bundle); CRI-O is not in Debian, so the suite "
                "cannot fetch it. Or point CRI_ENDPOINT=unix:///var/run/crio/crio.sock at a running CRI-O.")
        missing = [b for b in NEEDED if not (bin_dir / b).is_file()]
        if missing:
            raise ProvisionError(f"CRIO_BIN_DIR={bin_dir}: missing {', '.join(missing)}")
        if not find_oci(bin_dir):
            raise ProvisionError(f"CRIO_BIN_DIR={bin_dir}: no runc or crun there or on PATH")
        self.bin_dir = bin_dir
        self.state_root = state_root

    def version(self) -> str:
        out = subprocess.run([str(self.bin_dir / "crio"), "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"(?i)version:?\s+v?(\d+\.\d+\.\d+\S*)", out.stdout)
        return match.group(1) if match else "unknown"

    def start(self, sandbox_image: str, want_crun: bool = False) -> Provisioned:
        """Write the private config and return the daemon (not yet started). `want_crun` makes crun the
        default OCI runtime; CRIO_BIN_DIR must then hold (or PATH offer) a crun."""
        version = self.version()
        oci = find_oci(self.bin_dir)
        state = unique_dir(self.state_root, f"crio-{version}")
        for sub in ("storage", "runroot", "exits", "attach", "ns", "cni/conf", "cni/bin", "oci", "auth",
                    "registries.d", "tmp"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (state / "registries.conf").write_text('unqualified-search-registries = []\n'
                                               '[[registry]]\nprefix = "localhost"\nlocation = "localhost"\n'
                                               'insecure = true\n')
        (state / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\nroot = "{state}/storage"\n'
                                            f'runroot = "{state}/runroot"\n')
        config = state / "crio.conf"
        if want_crun and "crun" not in oci:
            raise ProvisionError(f"HANDLER=crun: no crun in CRIO_BIN_DIR={self.bin_dir} or on PATH")
        default = "crun" if "crun" in oci else "runc"
        config.write_text(render_config(state, self.bin_dir, sandbox_image, oci, default))
        env = {"PATH": f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "TMPDIR": str(state / "tmp"), "HOME": str(state),
               "CONTAINERS_STORAGE_CONF": str(state / "storage.conf")}
        argv = [str(self.bin_dir / "crio"), "--config", str(config), "--config-dir", str(state / "crio.conf.d"),
                "--registries-conf", str(state / "registries.conf"),
                "--registries-conf-dir", str(state / "registries.d"), "--disable-hostport-mapping"]
        (state / "crio.conf.d").mkdir()
        daemon = PrivateDaemon("crio", state, argv, env, cgroup_parent=f"sgpconf-{state.name}")
        return Provisioned(runtime="crio", version=version, endpoint=f"unix://{state / 'crio.sock'}",
                           daemon=daemon, handlers=sorted(oci),
                           storage=(str(state / "storage"), str(state / "runroot")))

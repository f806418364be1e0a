"""The pod network of a runtime the suite starts: a CNI plugin of the suite's own (`sgp-podnet`) that
gives a pod's network namespace `lo` up and an `eth0` with one address, and touches nothing outside that
namespace: eth0 is one end of a veth pair whose other end stays in the same namespace (no bridge, route
or tunable on the host). DEL does nothing: both ends go with the namespace. The same program is installed
as `loopback` too (containerd always adds a loopback network of that type): then it only brings `lo` up.

Pods on the host network never call it; it exists for pods that need a network namespace of their own:
hostUsers: false pods (containerd 2 refuses a user namespace on the host network: "failed to pin user
namespace", and the API forbids hostUsers: false with hostNetwork: true). It also marks the runtime's
network ready, which a kubelet's node needs to become Ready.

The runtime runs a plugin for every ADD and DEL of every pod that has a network namespace: this module is
installed as the plugin itself, run by this Python isolated and without site-packages (`-IS`: it needs the
standard library only), and sets up eth0 with one `ip -batch` in the namespace. A launcher importing the
package cost about 0.15 CPU-seconds a call, and a pod's calls more than the rest of its network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PLUGIN = "sgp-podnet"
LOOPBACK = "loopback"
CONF_NAME = "10-sgp-podnet.conflist"
CONFIG = {"cniVersion": "1.0.0", "name": "sgp-podnet", "plugins": [{"type": PLUGIN}]}
ADDRESS = "10.250.0.2/24"  # every pod the same: each is alone in its namespace
PEER = "sgp-peer0"
VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def install(cni_dir: Path) -> None:
    """The plugin (this module, run by this Python with -IS) and its config into a runtime's private CNI
    folders `cni_dir`/bin and `cni_dir`/conf."""
    bin_dir, conf_dir = cni_dir / "bin", cni_dir / "conf"
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).read_text()
    for name in (PLUGIN, LOOPBACK):
        plugin = bin_dir / name
        plugin.write_text(f"#!{sys.executable} -IS\n{source}")
        plugin.chmod(0o755)
    (conf_dir / CONF_NAME).write_text(json.dumps(CONFIG) + "\n")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=TOOL_PATH)
    if found is None:
        raise PluginError(f"{name} not found (needed to set up the pod's eth0)")
    return found


class PluginError(Exception):
    """A CNI error result."""


def _in_netns(netns: str, *commands: str) -> str:
    """Run `ip` commands (one a line, as `ip -batch` reads them) inside the pod's network namespace in one
    process; the stdout (JSON) of those that show something."""
    res = subprocess.run([_tool("nsenter"), f"--net={netns}", _tool("ip"), "-j", "-batch", "-"],
                         input="".join(f"{c}\n" for c in commands), capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        raise PluginError(f"ip {'; '.join(commands)}: {res.stderr.strip() or res.returncode}")
    return res.stdout


def add_loopback(netns: str, version: str) -> dict:
    """`lo` up; the CNI result of a loopback plugin."""
    _in_netns(netns, "link set lo up")
    ip: dict = {"address": "127.0.0.1/8", "interface": 0}
    if version.startswith("0."):
        ip["version"] = "4"
    return {"cniVersion": version, "interfaces": [{"name": "lo", "sandbox": netns}], "ips": [ip]}


def add(netns: str, ifname: str, version: str) -> dict:
    """lo up; eth0 (veth, peer in the same namespace) with ADDRESS; the CNI result."""
    shown = _in_netns(netns, "link set lo up", f"link add {ifname} type veth peer name {PEER}",
                      f"addr add {ADDRESS} dev {ifname}", f"link set {PEER} up", f"link set {ifname} up",
                      f"link show dev {ifname}")
    mac = json.loads(shown)[0].get("address", "")
    ip: dict = {"address": ADDRESS, "interface": 0}
    if version.startswith("0."):
        ip["version"] = "4"
    return {"cniVersion": version, "interfaces": [{"name": ifname, "mac": mac, "sandbox": netns}], "ips": [ip]}


def main() -> int:
    """The CNI plugin protocol: CNI_COMMAND in the environment, the network config on stdin."""
    command = os.environ.get("CNI_COMMAND", "")
    raw = sys.stdin.read() if command != "VERSION" else ""
    try:
        conf = json.loads(raw) if raw.strip() else {}
        version = str(conf.get("cniVersion") or "1.0.0")
        if command == "VERSION":
            print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": VERSIONS}))
        elif command == "ADD" and conf.get("type") == LOOPBACK:
            print(json.dumps(add_loopback(os.environ["CNI_NETNS"], version)))
        elif command == "ADD":
            print(json.dumps(add(os.environ["CNI_NETNS"], os.environ.get("CNI_IFNAME", "eth0"), version)))
        elif command not in ("DEL", "CHECK", "GC", "STATUS"):
            raise PluginError(f"unknown CNI_COMMAND {command!r}")
        return 0
    except (PluginError, KeyError, ValueError, OSError, subprocess.SubprocessError) as exc:
        print(json.dumps({"cniVersion": "1.0.0", "code": 100, "msg": f"{PLUGIN}: {exc}"}))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

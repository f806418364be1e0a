"""A private single-node Kubernetes cluster on the runtime the suite started: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and a kubelet, all on 127.0.0.1 ports that are free, with their own
PKI, state under the runtime's state folder, and every process inside the runtime's private mount namespace.

In that namespace only, private folders are bind-mounted over the paths a kubelet writes whatever its
settings (/var/lib/kubelet/device-plugins and the pod and container logs under /var/log; its flexvolume
folder is moved there too), and /etc/hosts maps the node name to 127.0.0.1 (the API server reaches the
kubelet by hostname, all on loopback). The kubelet alone runs in a child mount namespace of its own where
the kernel tunables it checks read its expected values from private files and /sys/kernel/mm/hugepages is
empty (no hugetlb limits on a host without that controller): files mounted over /proc or /sys where the
runtime lives would make the kernel refuse a fresh proc or sysfs mount in a pod's user namespace ("mount
`proc` to `proc`: Operation not permitted"). /var/lib is shared between the two namespaces, so the runtime
sees the kubelet's volumes. The host's /var/lib, /var/log, /etc and sysctls are never written.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance.kube.binaries import Binaries
from conformance.runtimes.process import (
    CGROUP_ROOT,
    MountNamespace,
    PrivateDaemon,
    cgroup_hierarchies,
    enable_controllers,
)
from conformance.targets.local.pki import Pki

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
# kernel tunables the kubelet checks (pkg/kubelet/cm setupKernelTunables) and the values it wants
TUNABLES = {"vm/overcommit_memory": 1, "vm/panic_on_oom": 0, "kernel/panic": 10, "kernel/panic_on_oops": 1,
            "kernel/keys/root_maxkeys": 1000000, "kernel/keys/root_maxbytes": 25000000}
KUBELET_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids")
READY_TIMEOUT = 300.0  # a component that exits fails at once; under software emulation the API server took 78-90+ s
# The kubelet's own mount namespace: $0 is a label, then pairs of (file, target) to bind, `--`, the kubelet's
# argv. Only paths of the run's state folder and fixed kernel paths reach this script.
KUBELET_NS = ('while [ "$1" != "--" ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@"')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def own_oom_score_adj() -> int:
    """The kubelet must not lower its oom_score_adj without CAP_SYS_RESOURCE: keep this process's value."""
    try:
        return int(Path("/proc/self/oom_score_adj").read_text().strip())
    except (OSError, ValueError):
        return 0


@dataclass
class Ports:
    etcd: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    controller_manager: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)
    kubelet: int = field(default_factory=free_port)


def kubelet_config(pki_dir: Path, serving: tuple[Path, Path], endpoint: str, port: int, cgroup_root: str) -> dict:
    """KubeletConfiguration for a kubelet beside a private runtime on a host it must not change."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": "127.0.0.1", "port": port, "readOnlyPort": 0, "healthzPort": 0,
        "authentication": {"x509": {"clientCAFile": str(pki_dir / "ca.crt")}, "webhook": {"enabled": False},
                           "anonymous": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "tlsCertFile": str(serving[0]), "tlsPrivateKeyFile": str(serving[1]),
        "containerRuntimeEndpoint": endpoint, "imageServiceEndpoint": endpoint,
        "cgroupDriver": "cgroupfs", "cgroupsPerQOS": True, "cgroupRoot": cgroup_root, "enforceNodeAllocatable": [],
        "failSwapOn": False, "failCgroupV1": False, "protectKernelDefaults": True,
        "oomScoreAdj": own_oom_score_adj(), "makeIPTablesUtilChains": False, "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%",
                         "imagefs.available": "0%"},
        "localStorageCapacityIsolation": False, "hairpinMode": "none", "resolvConf": "/etc/resolv.conf",
        "syncFrequency": "5s", "fileCheckFrequency": "0s", "nodeStatusUpdateFrequency": "2s",
        "runtimeRequestTimeout": "2m", "maxPods": 1000,  # KEEP=1 keeps every case's pod on the one node
        "volumePluginDir": "/var/lib/kubelet/volume-plugins",  # else it creates /usr/libexec/kubernetes on the host
    }


class LocalCluster:
    """Everything one local cluster owns; stop() removes all of it (the runtime is the caller's)."""

    def __init__(self, bins: Binaries, state: Path, namespace: MountNamespace, runtime_endpoint: str,
                 node_name: str, cgroup_root: str):
        self.bins = bins
        self.state = state
        self.namespace = namespace
        self.endpoint = runtime_endpoint
        self.node_name = node_name
        self.cgroup_root = cgroup_root  # the runtime's own cgroup parent: pods land under it, removed with it
        self.ports = Ports()
        self.daemons: list[PrivateDaemon] = []
        self.timings: dict[str, float] = {}
        self.kubeconfig = state / "pki" / "admin.kubeconfig"
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"

    # ------------------------------------------------------------------ set-up
    def _private_paths(self) -> None:
        """Private /var/lib (shared with the kubelet's own namespace), /var/log and /etc/hosts, in the
        namespace only."""
        for sub in ("var-lib/kubelet", "var-log/pods", "var-log/containers", "empty"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        hosts = self.state / "hosts"
        hosts.write_text(f"127.0.0.1 localhost {self.node_name}\n::1 localhost ip6-localhost\n")
        self.namespace.bind(self.state / "var-lib", "/var/lib")
        self.namespace.run(["mount", "--make-shared", "/var/lib"])  # the kubelet's mounts reach the runtime
        self.namespace.bind(self.state / "var-log", "/var/log")
        self.namespace.bind(hosts, "/etc/hosts")

    def kubelet_binds(self) -> list[tuple[Path, str]]:
        """(file, target) bound in the kubelet's own mount namespace only: the tunables it checks, with the
        values it wants, and an empty hugepages folder."""
        binds: list[tuple[Path, str]] = []
        if Path("/sys/kernel/mm/hugepages").is_dir():
            binds.append((self.state / "empty", "/sys/kernel/mm/hugepages"))
        tunables = self.state / "sysctl"
        tunables.mkdir(exist_ok=True)
        for name, value in TUNABLES.items():
            if Path("/proc/sys", name).exists():
                path = tunables / name.replace("/", ".")
                path.write_text(f"{value}\n")
                binds.append((path, f"/proc/sys/{name}"))
        return binds

    def kubelet_argv(self, argv: list[str]) -> list[str]:
        """`argv` in a child mount namespace of the runtime's (propagation unchanged: /var/lib stays shared
        with it) with kubelet_binds() in place."""
        pairs = [str(x) for source, target in self.kubelet_binds() for x in (source, target)]
        return ["unshare", "--mount", "--propagation", "unchanged", "--", "/bin/sh", "-c", KUBELET_NS,
                "sgp-kubelet-ns", *pairs, "--", *argv]

    def _pki(self) -> dict[str, Path]:
        pki = Pki(self.state / "pki")
        server = pki.issue("apiserver", "kube-apiserver", dns=("localhost", "kubernetes", "kubernetes.default",
                                                                "kubernetes.default.svc"),
                           ips=("127.0.0.1", SERVICE_IP), server=True)
        kubelet_serving = pki.issue("kubelet-serving", self.node_name, dns=(self.node_name, "localhost"),
                                    ips=("127.0.0.1",), server=True)
        to_kubelet = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
        admin = pki.issue("admin", "sgp-admin", "system:masters")
        files = {"ca": pki.ca, "sa_key": pki.sa_key, "sa_pub": pki.sa_pub, "server_crt": server.cert,
                 "server_key": server.key, "kubelet_crt": kubelet_serving.cert, "kubelet_key": kubelet_serving.key,
                 "to_kubelet_crt": to_kubelet.cert, "to_kubelet_key": to_kubelet.key,
                 "admin_crt": admin.cert, "admin_key": admin.key}
        pki.kubeconfig("admin", self.server, admin)
        for name, common, org in (("controller-manager", "system:kube-controller-manager", ""),
                                  ("scheduler", "system:kube-scheduler", ""),
                                  ("kubelet", f"system:node:{self.node_name}", "system:nodes")):
            files[f"{name}_kubeconfig"] = pki.kubeconfig(name, self.server, pki.issue(name, common, org))
        return files

    def _daemon(self, name: str, argv: list[str]) -> PrivateDaemon:
        folder = self.state / name
        folder.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(folder),
               "TMPDIR": str(folder), "KUBECACHEDIR": str(folder / "cache")}
        daemon = PrivateDaemon(name, folder, argv, env, cgroup_parent="", namespace=self.namespace)
        self.daemons.append(daemon)
        return daemon

    def _start(self, daemon: PrivateDaemon, ready: object, timeout: float = READY_TIMEOUT) -> None:
        started = time.monotonic()
        daemon.start(ready, timeout)  # type: ignore[arg-type]
        self.timings[daemon.name] = round(time.monotonic() - started, 2)

    def start(self) -> None:
        """Bring the cluster up: etcd, API server, controller-manager, scheduler, then the kubelet; wait
        until the node is registered. Fails early with the component's log when one exits."""
        begun = time.monotonic()
        self._private_paths()
        f = self._pki()
        p = self.ports
        etcd = self._daemon("etcd", [
            str(self.bins["etcd"]), "--name", "sgp", "--data-dir", str(self.state / "etcd" / "data"),
            "--listen-client-urls", f"http://127.0.0.1:{p.etcd}", "--advertise-client-urls",
            f"http://127.0.0.1:{p.etcd}", "--listen-peer-urls", f"http://127.0.0.1:{p.etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{p.etcd_peer}", "--initial-cluster",
            f"sgp=http://127.0.0.1:{p.etcd_peer}", "--unsafe-no-fsync", "--log-level", "warn"])
        self._start(etcd, lambda: _http_ok(f"http://127.0.0.1:{p.etcd}/health"))
        apiserver = self._daemon("kube-apiserver", [
            str(self.bins["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{p.etcd}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p.apiserver}",
            f"--tls-cert-file={f['server_crt']}", f"--tls-private-key-file={f['server_key']}",
            f"--client-ca-file={f['ca']}", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={f['sa_pub']}", f"--service-account-signing-key-file={f['sa_key']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={f['to_kubelet_crt']}", f"--kubelet-client-key={f['to_kubelet_key']}",
            f"--kubelet-certificate-authority={f['ca']}", "--kubelet-preferred-address-types=Hostname,InternalIP",
            "--endpoint-reconciler-type=none", f"--cert-dir={self.state / 'kube-apiserver'}", "--profiling=false"])
        self._start(apiserver, lambda: self._get("/readyz") == "ok")
        self._start(self._daemon("kube-controller-manager", [
            str(self.bins["kube-controller-manager"]), f"--kubeconfig={f['controller-manager_kubeconfig']}",
            "--bind-address=127.0.0.1", f"--secure-port={p.controller_manager}", "--leader-elect=false",
            f"--service-account-private-key-file={f['sa_key']}", f"--root-ca-file={f['ca']}",
            "--use-service-account-credentials=true",
            f"--flex-volume-plugin-dir={self.state / 'kube-controller-manager' / 'flex'}",
            f"--cert-dir={self.state / 'kube-controller-manager'}", "--profiling=false"]), lambda: True)
        self._start(self._daemon("kube-scheduler", [
            str(self.bins["kube-scheduler"]), f"--kubeconfig={f['scheduler_kubeconfig']}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={p.scheduler}", f"--cert-dir={self.state / 'kube-scheduler'}",
            "--profiling=false"]), lambda: True)
        config = self.state / "kubelet" / "config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(kubelet_config(self.state / "pki", (f["kubelet_crt"], f["kubelet_key"]),
                                                        self.endpoint, p.kubelet, "/" + self.cgroup_root)))
        for hierarchy in cgroup_hierarchies():
            (hierarchy / self.cgroup_root).mkdir(exist_ok=True)
        # cgroup v2: the kubelet refuses a cgroup root without these ("has some missing controllers")
        enable_controllers(CGROUP_ROOT / self.cgroup_root, KUBELET_CONTROLLERS)
        kubelet = self._daemon("kubelet", self.kubelet_argv([
            str(self.bins["kubelet"]), f"--config={config}", f"--kubeconfig={f['kubelet_kubeconfig']}",
            "--root-dir=/var/lib/kubelet", f"--hostname-override={self.node_name}", "--v=2"]))
        self._start(kubelet, lambda: self._get(f"/api/v1/nodes/{self.node_name}") != "")
        self.timings["cluster"] = round(time.monotonic() - begun, 2)

    # ------------------------------------------------------------------ reads
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(self.state / "pki" / "admin.crt"), str(self.state / "pki" / "admin.key"))
        return ctx

    def _get(self, path: str) -> str:
        """GET on the API server as admin: the body, or '' for 404."""
        try:
            with urllib.request.urlopen(self.server + path, context=self._ssl(), timeout=5) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return ""
            raise

    def versions(self) -> dict:
        info = json.loads(self._get("/version") or "{}")
        return {"apiserver": info.get("gitVersion"), **self.bins.to_json()}

    def exited(self) -> list[str]:
        """Components that exited (a broken cluster must not read as a pass)."""
        return [d.name for d in self.daemons if not d.alive()]

    # ------------------------------------------------------------------ tear-down
    def stop(self, keep_logs_to: Path | None = None) -> None:
        """Stop every component (kubelet first, etcd last), keep their logs, remove their state. The
        namespace mounts go with the runtime's namespace; the pods' sandboxes are the runtime's to remove."""
        for daemon in reversed(self.daemons):
            with contextlib.suppress(Exception):
                daemon.stop(timeout=10.0)
            if keep_logs_to is not None and daemon.log_path.exists():
                keep_logs_to.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(daemon.log_path, keep_logs_to / f"{daemon.name}.log")
        self.daemons.clear()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200

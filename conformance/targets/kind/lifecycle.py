"""One kind cluster per cell: node image, create (retry once), readiness, runtime check, image
loading, log export, delete. Every command is built by kindcli/nodeimage, so DRY_RUN plans show
exactly what a run executes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.archive import ImageArchive
from conformance.errors import ProvisionError, SuiteError
from conformance.kube.api import KubeApi
from conformance.kube.status import crictl_feature, node_info, node_ready
from conformance.kube.waits import NotYet, Waits
from conformance.targets.kind import config as kindconfig
from conformance.targets.kind import nodeimage
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command, CreateFailed, Docker, Kind, KindError, Runner


@dataclass
class ClusterOptions:
    results_dir: Path = Path("results")
    workers: int = 1
    keep: bool = False
    reuse: bool = False
    wait: str = "3m"
    arch: str = "amd64"


@dataclass
class Phase:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class KindCell:
    """Everything one cell's cluster owns; down() removes only what this run created."""

    cell: Cell
    opts: ClusterOptions
    runner: Runner = field(default_factory=Runner)
    kind: Kind = field(default_factory=Kind)
    docker: Docker = field(default_factory=Docker)
    waits: Waits = field(default_factory=Waits)
    created: bool = False
    reused: bool = False
    phases: list[Phase] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = nodeimage.recipe(self.cell, self.opts.arch)
        self.dir = self.opts.results_dir / self.cell.id
        self.kubeconfig = self.dir / "kubeconfig"
        self.config_path = self.dir / "kind-config.yaml"
        self.logs_dir = self.dir / "kind-logs"

    # ------------------------------------------------------------------ names and files
    @property
    def name(self) -> str:
        return self.cell.cluster_name

    def node_names(self) -> list[str]:
        """kind names nodes <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ..."""
        return [f"{self.name}-control-plane"] + [f"{self.name}-worker{'' if i == 0 else i + 1}"
                                                 for i in range(self.opts.workers)]

    def config_yaml(self) -> str:
        return kindconfig.to_yaml(kindconfig.config(self.cell, self.image.ref, self.opts.workers))

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_yaml())
        return self.config_path

    # ------------------------------------------------------------------ commands (shared with plan.py)
    def image_commands(self) -> list[Command]:
        return [nodeimage.lookup_command(self.image, self.docker), *nodeimage.build_commands(self.image, self.docker)]

    def create_command(self) -> Command:
        return self.kind.create(self.name, self.config_path, self.kubeconfig, self.opts.wait)

    def load_commands(self, archives: list[ImageArchive]) -> list[Command]:
        """containerd: kind load image-archive; CRI-O: skopeo inside each node into containers-storage
        (kind load only reaches containerd), then crictl inspecti to prove CRI-O sees the image."""
        if self.cell.runtime == "containerd":
            return [self.kind.load_image_archive(self.name, a.path) for a in archives]
        cmds = []
        for node in self.node_names():
            for a in archives:
                cmds.append(self.docker.exec(node, ["skopeo", "copy", "--quiet", "docker-archive:/dev/stdin",
                                                    f"containers-storage:{a.ref}"], stdin=a.path, phase="LoadImages"))
                cmds.append(self.docker.exec(node, ["crictl", "inspecti", a.ref], phase="LoadImages"))
        return cmds

    def crictl_info_command(self, node: str) -> Command:
        return self.docker.exec(node, ["crictl", "info"], phase="Ready")

    def failure_commands(self) -> list[Command]:
        """On failure: kind's own bundle plus the runtime's journal and config per node."""
        unit = "crio" if self.cell.runtime == "crio" else "containerd"
        dump = ["crio", "status", "config"] if self.cell.runtime == "crio" else ["containerd", "config", "dump"]
        cmds = [self.kind.export_logs(self.name, self.logs_dir)]
        for node in self.node_names():
            cmds.append(self.docker.exec(node, ["journalctl", "-u", unit, "--no-pager"], phase="DumpLogs"))
            cmds.append(self.docker.exec(node, dump, phase="DumpLogs"))
            cmds.append(self.docker.exec(node, ["crictl", "ps", "-a"], phase="DumpLogs"))
        return cmds

    def delete_command(self) -> Command:
        return self.kind.delete(self.name, self.kubeconfig)

    # ------------------------------------------------------------------ running
    def _phase(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            value = fn()
        except BaseException as exc:
            self.phases.append(Phase(name, False, time.monotonic() - started, f"{type(exc).__name__}: {exc}"))
            raise
        self.phases.append(Phase(name, True, time.monotonic() - started))
        return value

    def preflight(self) -> None:
        self._phase("Preflight", lambda: self.facts.update(kind_version=self.runner.run(self.kind.version())
                                                            .stdout.strip()))

    def ensure_image(self) -> None:
        self._phase("BuildImage", self._ensure_image)

    def _ensure_image(self) -> None:
        lookup, *build = self.image_commands()
        if self.runner.run(lookup, check=False).returncode == 0:
            build = build[-1:]  # present (same content key for derived images): only re-check the version
        out = ""
        for cmd in build:
            out = self.runner.run(cmd).stdout
        if self.cell.runtime_version not in out:
            raise ProvisionError(f"node image {self.image.ref} reports {out.strip()!r}, "
                                 f"expected {self.cell.runtime} {self.cell.runtime_version}")
        self.facts["node_image"] = self.image.ref
        self.facts["image_runtime_version"] = out.strip()
        image_id = self.runner.run(lookup, check=False)
        self.facts["node_image_id"] = image_id.stdout.strip()

    def exists(self) -> bool:
        out = self.runner.run(self.kind.get_clusters()).stdout
        return self.name in out.split()

    def up(self) -> None:
        self._phase("Up", self._up)

    def _up(self) -> None:
        self.write_config()
        if self.exists():
            if not self.opts.reuse:
                raise ProvisionError(f"kind cluster {self.name} already exists: delete it "
                                     f"(`kind delete cluster --name {self.name}`) or set REUSE=1")
            self.runner.run(self.kind.export_kubeconfig(self.name, self.kubeconfig))
            self.reused = True
            return
        try:
            self.runner.run(self.create_command())
        except CreateFailed as first:
            self.created = True  # --retain keeps the nodes: ours to delete
            self._export(self.dir / "kind-logs-attempt1")
            self.runner.run(self.delete_command(), check=False)
            self.facts["create_retry"] = first.stderr.strip()[-2000:]
            self.runner.run(self.create_command())
        self.created = True

    def wait_ready(self, api: KubeApi) -> list[dict]:
        return self._phase("Ready", lambda: self._wait_ready(api))

    def _wait_ready(self, api: KubeApi) -> list[dict]:
        want = len(self.node_names())

        def nodes_ready() -> list[dict]:
            nodes = api.list_nodes()
            ready = [n for n in nodes if node_ready(n)]
            if len(ready) < want:
                raise NotYet(f"{len(ready)}/{want} nodes Ready")
            return nodes

        def dns_ready() -> None:
            pods = api.list_pods("kube-system", "k8s-app=kube-dns")
            ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                            for c in (p.get("status") or {}).get("conditions") or [])]
            if not pods or len(ready) < len(pods):
                raise NotYet(f"kube-dns {len(ready)}/{len(pods)} Ready")

        nodes = self.waits.until(nodes_ready, self.waits.ready, "nodes Ready")
        self.waits.until(dns_ready, self.waits.ready, "kube-dns Ready")
        return nodes

    def verify_runtime(self, nodes: list[dict]) -> dict[str, bool | None]:
        """Every node runs the cell's runtime version; returns what each runtime advertises (crictl info)."""
        return self._phase("VerifyRuntime", lambda: self._verify_runtime(nodes))

    def _verify_runtime(self, nodes: list[dict]) -> dict[str, bool | None]:
        expected = self.cell.expected_runtime_version
        wrong = {n["metadata"]["name"]: node_info(n).get("containerRuntimeVersion") for n in nodes
                 if node_info(n).get("containerRuntimeVersion") != expected}
        self.facts["nodes"] = {n["metadata"]["name"]: {"containerRuntimeVersion":
                                                       node_info(n).get("containerRuntimeVersion"),
                                                       "kubeletVersion": node_info(n).get("kubeletVersion"),
                                                       "features": (n.get("status") or {}).get("features")}
                               for n in nodes}
        if wrong:
            raise ProvisionError(f"nodes run the wrong runtime (expected {expected}): {wrong}")
        advertised: dict[str, bool | None] = {}
        for node in nodes:
            name = node["metadata"]["name"]
            out = self.runner.run(self.crictl_info_command(name)).stdout
            try:
                advertised[name] = crictl_feature(json.loads(out))
            except ValueError as exc:
                raise ProvisionError(f"crictl info on {name} is not JSON: {out[:300]!r}") from exc
        self.facts["crictl_features"] = advertised
        return advertised

    def load_images(self, archives: list[ImageArchive]) -> None:
        self._phase("LoadImages", lambda: [self.runner.run(c) for c in self.load_commands(archives)])

    def _export(self, directory: Path) -> None:
        try:
            self.runner.run(self.kind.export_logs(self.name, directory), check=True)
        except (KindError, ProvisionError) as exc:
            self.facts.setdefault("export_errors", []).append(str(exc))

    def dump_logs(self) -> None:
        """kind export logs plus runtime journal/config per node into RESULTS_DIR/<cell>/."""
        started = time.monotonic()
        self._export(self.logs_dir)
        out_dir = self.dir / "node-logs"
        out_dir.mkdir(parents=True, exist_ok=True)
        for cmd in self.failure_commands()[1:]:
            try:
                proc = self.runner.run(cmd, check=False)
            except SuiteError as exc:
                proc_text = str(exc)
            else:
                proc_text = proc.stdout + proc.stderr
            name = "-".join(a.replace("/", "_") for a in cmd.argv[2:5])
            (out_dir / f"{name}.log").write_text(proc_text)
        self.phases.append(Phase("DumpLogs", True, time.monotonic() - started))

    def down(self) -> None:
        """Delete the cluster if this run created it, unless KEEP=1; never a reused one."""
        if self.opts.keep or not self.created or self.reused:
            why = "KEEP=1" if self.opts.keep else "reused" if self.reused else "not created by this run"
            self.phases.append(Phase("Down", True, 0.0, f"kept ({why})"))
            return
        self._phase("Down", lambda: self.runner.run(self.delete_command()))

    def metadata(self) -> dict:
        return {"cell": self.cell.to_json(), "cluster": self.name, "kubeconfig": str(self.kubeconfig),
                "node_image": self.image.ref, "node_image_cache_key": self.image.cache_key,
                "phases": [p.__dict__ for p in self.phases], "facts": self.facts}

"""One kind cluster per cell: node images, create (retry once), readiness, runtime check, image
loading, log export, delete. Every command is built by cli/nodeimage, so DRY_RUN plans show
exactly what a run executes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cri.client import CRIClient, CRIError
from conformance.cri.sandboxes import runtime_info
from conformance.errors import ProvisionError, SuiteError
from conformance.kube.api import KubeApi
from conformance.kube.status import node_info, node_ready
from conformance.kube.waits import NotYet, Waits
from conformance.targets.kind import config as kindconfig
from conformance.targets.kind import nodeimage
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command, CreateFailed, Docker, Kind, KindError, Runner, ToolError
from conformance.targets.kind.nodeimage import NodeImage
from conformance.targets.kind.noderuntime import NODE_RUNTIMES
from conformance.testimages.archive import ImageArchive


def crictl_feature(info: dict) -> bool | None:
    """`crictl info` JSON -> features.supplemental_groups_policy (either JSON name); None when absent."""
    features = info.get("features")
    if not isinstance(features, dict):
        return None
    for key in ("supplemental_groups_policy", "supplementalGroupsPolicy"):
        if key in features:
            return bool(features[key])
    return None


@dataclass
class ClusterOptions:
    results_dir: Path = Path("results")
    keep: bool = False
    reuse: bool = False
    wait: str = "5m"
    build_dir: Path = Path("build")  # where a built node image's build folder is assembled


@dataclass
class Phase:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


class StepFailed(ProvisionError):
    """A docker or kind step of a cell failed; carries the tool's error."""

    def __init__(self, message: str, cause: ToolError):
        super().__init__(message)
        self.cause = cause


KIND_NETWORK = "kind"  # the Docker network kind puts its nodes on
KUBEADM = re.compile(r'failed to (?:init|join) node[^"]*"docker exec (?:--privileged )?(\S+) kubeadm (\w+)'
                     r'.*?failed with error: ([^\n]+)', re.S)


def failure_summary(exc: ToolError) -> str:
    """What failed inside a kind or docker command, in one line: `kubeadm init on node X: exit status 126`, or
    the tool's own ERROR line, or its last line."""
    text = exc.stderr or exc.stdout
    found = KUBEADM.search(text)
    if found:
        node, phase, error = found.groups()
        return f"kubeadm {phase} on node {node}: {error.strip()}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error = next((line for line in lines if line.startswith(("ERROR:", "Error", "error"))), lines[-1] if lines else "")
    return f"exit {exc.returncode}: {error[:300]}"


@dataclass
class KindCell:
    """Everything one cell's cluster owns; down() removes only what this run created."""

    cell: Cell
    opts: ClusterOptions
    images: list[NodeImage] = field(default_factory=list)  # the control plane's, then each worker's
    runner: Runner = field(default_factory=Runner)
    kind: Kind = field(default_factory=Kind)
    docker: Docker = field(default_factory=Docker)
    waits: Waits = field(default_factory=Waits)
    created: bool = False
    reused: bool = False
    phases: list[Phase] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = self.images or [nodeimage.stock(self.cell)]
        self.dir = self.opts.results_dir / self.cell.id
        self.kubeconfig = self.dir / "kubeconfig"
        self.config_path = self.dir / "kind-config.yaml"
        self.logs_dir = self.dir / "kind-logs"

    # ------------------------------------------------------------------ names and files
    @property
    def name(self) -> str:
        return self.cell.cluster_name

    @property
    def built(self) -> bool:
        return not self.images[0].stock

    def node_names(self) -> list[str]:
        """kind names nodes <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ..."""
        return [f"{self.name}-control-plane"] + [f"{self.name}-worker{'' if i == 0 else i + 1}"
                                                 for i in range(len(self.images) - 1)]

    def node_runtime(self, image: NodeImage) -> tuple[str, str]:
        """(runtime, version) a node on `image` must report."""
        if image.parts is not None:
            return image.parts.runtime, image.parts.runtime_version
        return self.cell.runtime, self.cell.runtime_version

    def image_of(self, node: str) -> NodeImage:
        """The node image kind started `node` from (names in kind's order: control plane, then workers)."""
        return dict(zip(self.node_names(), self.images, strict=True))[node]

    def expected_runtime(self, node: str) -> str:
        """The containerRuntimeVersion `node` must report."""
        runtime, version = self.node_runtime(self.image_of(node))
        return NODE_RUNTIMES[runtime].reported_version(version)

    def config_yaml(self) -> str:
        nodes = [(i.ref, self.node_runtime(i)[0]) for i in self.images]
        cgroupfs = any(i.parts is not None and not i.parts.systemd_cgroups for i in self.images)
        return kindconfig.to_yaml(kindconfig.config(self.cell, nodes, self.built, cgroupfs))

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_yaml())
        return self.config_path

    # ------------------------------------------------------------------ commands (shared with plan.py)
    def unique_images(self) -> list[NodeImage]:
        return list({i.ref: i for i in self.images}.values())

    def build_folder(self, image: NodeImage) -> Path:
        return self.opts.build_dir / image.cache_key[:12]

    def image_commands(self) -> list[Command]:
        out = []
        for image in self.unique_images():
            out.append(nodeimage.lookup_command(image, self.docker))
            if image.saved is not None:
                out.append(self.docker.load(image.saved))
            out += nodeimage.build_commands(image, self.docker, self.build_folder(image))
            out.append(nodeimage.version_command(image, self.docker))
        return out

    def create_command(self) -> Command:
        return self.kind.create(self.name, self.config_path, self.kubeconfig, self.opts.wait)

    def load_commands(self, archives: list[ImageArchive]) -> list[Command]:
        """containerd: kind load image-archive; CRI-O: skopeo inside each node into containers-storage
        (kind load only reaches containerd), then crictl inspecti to prove CRI-O sees the image."""
        if self.built:
            return []  # built node images carry the test images and load them at first boot
        if NODE_RUNTIMES[self.cell.runtime].loaded_by_kind:
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
        cmds = [self.kind.export_logs(self.name, self.logs_dir)]
        for node in self.node_names():
            runtime = NODE_RUNTIMES[self.node_runtime(self.image_of(node))[0]]
            cmds.append(self.docker.exec(node, ["journalctl", "-u", runtime.unit, "-u", "kubelet", "-u",
                                                "sgp-preload", "--no-pager"], phase="DumpLogs"))
            cmds.append(self.docker.exec(node, list(runtime.config_dump), phase="DumpLogs"))
            if not self.built:  # a built node has no crictl; its runtime's journal says what ran
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

    def ensure_images(self, cache: Path) -> None:
        self._phase("BuildImage", lambda: [self._ensure(image, cache) for image in self.unique_images()])

    def _ensure(self, image: NodeImage, cache: Path) -> None:
        """Present (same content key) > saved in the cache > built (or pulled, for a stock image)."""
        started = time.monotonic()
        lookup = nodeimage.lookup_command(image, self.docker)
        how = "present"
        if self.runner.run(lookup, check=False).returncode != 0:
            if image.saved is not None and image.saved.exists():
                self.runner.run(self.docker.load(image.saved))
                how = "loaded from the cache"
            elif image.stock:
                self.runner.run(self.docker.pull(image.base))
                how = "pulled"
            else:
                folder = nodeimage.context(image, cache, self.build_folder(image))
                base, build, save = nodeimage.build_commands(image, self.docker, folder)
                if self.runner.run(self.docker.image_id(image.base_ref), check=False).returncode != 0:
                    self._step(f"importing the Debian base {image.base_ref}", base)
                self._step(f"building node image {image.ref} (docker build of {folder})", build)
                self._step(f"saving node image {image.ref} to the cache", save)
                shutil.rmtree(folder, ignore_errors=True)
                how = "built"
        out = self._step(f"asking node image {image.ref} for its runtime version",
                         nodeimage.version_command(image, self.docker)).stdout.strip()
        runtime, version = self.node_runtime(image)
        if version not in out:
            raise ProvisionError(f"node image {image.ref} reports {out!r}, expected {runtime} {version}")
        self.facts.setdefault("node_images", {})[image.ref] = {
            "how": how, "seconds": round(time.monotonic() - started, 1), "runtime": out,
            "id": self.runner.run(lookup, check=False).stdout.strip(),
            **({"parts": image.parts.to_json()} if image.parts else {})}

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
        self.created = True  # the name was free: whatever kind makes under it (--retain, Ctrl-C) is ours to delete
        # kind makes its `kind` network on first use and never removes it: on an engine the suite did not start,
        # one this run made goes at Down (one that was there stays)
        self.made_network = KIND_NETWORK not in self.runner.run(self.docker.networks()).stdout.split()
        try:
            self.runner.run(self.create_command())
        except CreateFailed as first:
            self._export(self.dir / "kind-logs-attempt1")
            self.runner.run(self.delete_command(), check=False)
            self.facts["create_retry"] = first.stderr.strip()[-2000:]
            self._step(f"creating kind cluster {self.name} (second attempt; the first one's node logs are in "
                       f"{self.dir / 'kind-logs-attempt1'})", self.create_command())
        self.created = True

    def _step(self, what: str, cmd: Command) -> subprocess.CompletedProcess[str]:
        """Run one docker/kind step; its failure names the step in a person's words, what failed inside it
        (which node, which kubeadm phase) and the file with the command's whole output."""
        try:
            return self.runner.run(cmd)
        except ToolError as exc:
            self.dir.mkdir(parents=True, exist_ok=True)
            log = self.dir / f"failed-step-{len(self.phases) + 1}.log"
            log.write_text(f"step: {what}\ncommand: {' '.join(exc.argv)}\nexit: {exc.returncode}\n"
                           f"--- stdout\n{exc.stdout}\n--- stderr\n{exc.stderr}\n")
            where = f"; the nodes' logs go to {self.logs_dir}" if isinstance(exc, CreateFailed) else ""
            raise StepFailed(f"kind cell {self.cell.id}: {what} failed: {failure_summary(exc)}; the command's "
                             f"whole output is in {log}{where}", exc) from None


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
        if not self.built:  # a built node image has no CoreDNS (not in Debian): nothing waits for it
            self.waits.until(dns_ready, self.waits.ready, "kube-dns Ready")
        return nodes

    def verify_runtime(self, nodes: list[dict]) -> dict[str, bool | None]:
        """Every node runs the cell's runtime version; returns what each runtime advertises (crictl info)."""
        return self._phase("VerifyRuntime", lambda: self._verify_runtime(nodes))

    def _verify_runtime(self, nodes: list[dict]) -> dict[str, bool | None]:
        self.facts["nodes"] = {n["metadata"]["name"]: {"containerRuntimeVersion":
                                                       node_info(n).get("containerRuntimeVersion"),
                                                       "kubeletVersion": node_info(n).get("kubeletVersion"),
                                                       "features": (n.get("status") or {}).get("features")}
                               for n in nodes}
        wrong = {}
        for node in nodes:
            name = node["metadata"]["name"]
            expected = self.expected_runtime(name) if name in self.node_names() else "?"
            reported = node_info(node).get("containerRuntimeVersion") or ""
            if reported != expected and not reported.startswith(expected + "+"):  # Debian's: 2.1.9+unknown
                wrong[name] = f"{reported} (expected {expected})"
        if wrong:
            raise ProvisionError(f"nodes run the wrong runtime: {wrong}")
        advertised = {n["metadata"]["name"]: self._advertised(n["metadata"]["name"]) for n in nodes}
        self.facts["crictl_features"] = advertised
        return advertised

    def _advertised(self, node: str) -> bool | None:
        """The node runtime's own Status().features: asked through its CRI socket (a built node has no
        crictl) or with crictl inside a stock node."""
        if not self.built:
            out = self.runner.run(self.crictl_info_command(node)).stdout
            try:
                return crictl_feature(json.loads(out))
            except ValueError as exc:
                raise ProvisionError(f"crictl info on {node} is not JSON: {out[:300]!r}") from exc
        pid = self.runner.run(self.docker.pid(node)).stdout.strip()
        runtime = NODE_RUNTIMES[self.node_runtime(self.image_of(node))[0]]
        client = CRIClient(f"unix:///proc/{pid}/root/{runtime.socket}")
        try:
            info = runtime_info(client)
        except CRIError as exc:
            raise ProvisionError(f"the runtime of node {node} does not answer on its CRI socket: {exc}") from exc
        finally:
            client.close()
        return None if info.features is None else info.features.get("supplemental_groups_policy")

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
        if getattr(self, "made_network", False):  # refused while another cluster's nodes use it: then it stays
            self.runner.run(self.docker.remove_network(KIND_NETWORK), check=False)

    def metadata(self) -> dict:
        return {"cell": self.cell.to_json(), "cluster": self.name, "kubeconfig": str(self.kubeconfig),
                "node_images": [i.ref for i in self.images],
                "phases": [p.__dict__ for p in self.phases], "facts": self.facts}

"""Run options, shared by the pytest plugin and the console command (one definition)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import InputError
from conformance.paths import IMAGES, SCENARIOS


def default_cache() -> Path:
    return Path(os.environ.get("SGP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                / "sgp-conformance")


@dataclass
class Options:
    target: str = "node"
    runtime: str = "containerd"
    version: str | None = None
    containerd_bin_dir: Path | None = None
    crio_bin_dir: Path | None = None
    oci_bin_dir: Path | None = None
    cri_endpoint: str | None = None
    handler: str = ""
    image_load: str = "auto"
    crio_storage: tuple[str, str] | None = None
    results_dir: Path = Path("results")
    scenarios_dir: Path = SCENARIOS
    images_dir: Path = IMAGES
    cache_dir: Path = field(default_factory=default_cache)
    extra_handlers: dict[str, str] = field(default_factory=dict)  # handler name -> OCI runtime binary
    state_dir: Path = Path(os.environ.get("SGP_STATE_DIR", "/var/tmp/sgpconf"))
    # Kubernetes targets (local, cluster, kind)
    k8s: str | None = None
    k8s_bin_dir: Path | None = None
    etcd_bin: Path | None = None
    kubeconfig: str | None = None
    context: str | None = None
    nodes: str | None = None
    variants: tuple[str, ...] = ("container", "init", "sidecar", "ephemeral")
    image_registry: str | None = None
    image_registry_insecure: bool = False
    image_push: bool = True
    host_network: bool = False
    parallel: int = 8
    keep: bool = False
    reuse: bool = False
    kind_bin: Path | None = None
    worker: str | None = None  # kind: runtime[:version] of a worker beside the control plane


# (option name, env var, help). The plugin adds --sgp-<name>-style flags; the Makefile passes env vars.
FLAGS: list[tuple[str, str, str]] = [
    ("target", "TARGET", "where cases run: node (CRI), local (a private kubelet and API server on the private "
                         "runtime), cluster (KUBECONFIG), kind (a cluster per cell of versions.yaml)"),
    ("runtime", "RUNTIME", "runtime to start privately: containerd or crio"),
    ("version", "VERSION", "runtime version: 2 (newest 2.x, default), 2.1, 1.7, 1.6 or exact"),
    ("containerd-bin-dir", "CONTAINERD_BIN_DIR", "folder with your containerd binaries instead of a download"),
    ("crio-bin-dir", "CRIO_BIN_DIR", "folder with crio, pinns, conmon, runc or crun"),
    ("oci-bin-dir", "OCI_BIN_DIR", "folder searched first for the OCI runtime HANDLER names (runc, crun)"),
    ("cri-endpoint", "CRI_ENDPOINT", "use an already running runtime at this CRI socket"),
    ("handler", "HANDLER", "OCI runtime for the pods: runc (default) or crun, from OCI_BIN_DIR, the runtime's "
                           "folder, then PATH"),
    ("image-load", "IMAGE_LOAD", "how images get into the runtime: auto, ctr, skopeo, registry"),
    ("crio-storage", "CRIO_STORAGE", "containers-storage root:runroot of an existing CRI-O (skopeo loading)"),
    ("results-dir", "RESULTS_DIR", "where results.json and runtime logs go (default results/)"),
    ("scenarios", "SCENARIOS", "scenario folder (default the project's scenarios/)"),
    ("images", "IMAGES", "image folder (default the project's images/)"),
    ("k8s", "K8S", "local: Kubernetes release to download (1.35 or exact); kind: the cell's Kubernetes version"),
    ("k8s-bin-dir", "K8S_BIN_DIR", "local: folder with kube-apiserver, kube-controller-manager, kube-scheduler, "
                                   "kubelet"),
    ("etcd-bin", "ETCD_BIN", "local: an etcd binary (default: Debian's etcd-server, fetched privately)"),
    ("kubeconfig", "KUBECONFIG", "cluster: kubeconfig file"),
    ("context", "CONTEXT", "cluster: kubeconfig context"),
    ("nodes", "NODES", "cluster: 'all' runs every case on every Linux node; a node name pins the cases to it"),
    ("variants", "VARIANTS", "Kubernetes targets: container kinds (container,init,sidecar,ephemeral)"),
    ("image-registry", "IMAGE_REGISTRY", "cluster: registry[/prefix] the nodes pull the test images from "
                                         "(IfNotPresent); the suite pushes the missing ones there first"),
    ("image-registry-insecure", "IMAGE_REGISTRY_INSECURE", "cluster: IMAGE_REGISTRY speaks plain HTTP or has a "
                                                           "certificate not trusted here (1)"),
    ("image-push", "IMAGE_PUSH", "cluster: 0 = the images are in IMAGE_REGISTRY already (`images push`); "
                                 "default 1 pushes the missing ones"),
    ("host-network", "HOST_NETWORK", "cluster: test pods with hostNetwork, for a cluster without a pod network (1)"),
    ("parallel", "PARALLEL", "Kubernetes targets: pods run at once (default 8)"),
    ("keep", "KEEP", "keep the cases' pods (1): local holds its cluster until Ctrl-C, cluster keeps the run's "
                     "namespace, kind keeps the cluster"),
    ("reuse", "REUSE", "kind: reuse an existing cluster of the same cell (1)"),
    ("kind-bin", "KIND_BIN", "kind: the kind binary (default: kind on PATH, else Debian's kind, fetched privately)"),
    ("worker", "WORKER", "kind: add a worker node running runtime[:version] (e.g. containerd:1.7) beside the "
                         "control plane: a cluster mid-upgrade"),
]


def switch(value: str | None) -> bool:
    """An on/off option (KEEP=1, DRY_RUN=true, ...): off when empty, 0, false or no."""
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def from_mapping(values: dict[str, str | None]) -> Options:
    """Options from flag values keyed by flag name (missing or empty = default)."""
    opts = Options()

    def get(name: str) -> str | None:
        value = values.get(name)
        return value if value not in (None, "") else None

    opts.target = get("target") or opts.target
    opts.runtime = get("runtime") or opts.runtime
    opts.version = get("version")
    if get("containerd-bin-dir"):
        opts.containerd_bin_dir = Path(get("containerd-bin-dir")).absolute()  # type: ignore[arg-type]  # daemons run elsewhere
    if get("crio-bin-dir"):
        opts.crio_bin_dir = Path(get("crio-bin-dir")).absolute()  # type: ignore[arg-type]  # daemons run elsewhere
    if get("oci-bin-dir"):
        opts.oci_bin_dir = Path(get("oci-bin-dir")).absolute()  # type: ignore[arg-type]  # daemons run elsewhere
    opts.cri_endpoint = get("cri-endpoint")
    opts.handler = get("handler") or ""
    opts.image_load = get("image-load") or "auto"
    storage = get("crio-storage")
    if storage:
        root, _, runroot = storage.partition(":")
        opts.crio_storage = (root, runroot or "/run/containers/storage")
    opts.results_dir = Path(get("results-dir") or "results")
    if get("scenarios"):
        opts.scenarios_dir = Path(get("scenarios"))  # type: ignore[arg-type]
    if get("images"):
        opts.images_dir = Path(get("images"))  # type: ignore[arg-type]
    opts.k8s = get("k8s")
    opts.k8s_bin_dir = Path(get("k8s-bin-dir")).absolute() if get("k8s-bin-dir") else None  # type: ignore[arg-type]
    opts.etcd_bin = Path(get("etcd-bin")).absolute() if get("etcd-bin") else None  # type: ignore[arg-type]
    opts.kubeconfig, opts.context, opts.nodes = get("kubeconfig"), get("context"), get("nodes")
    opts.image_registry = get("image-registry")
    opts.image_registry_insecure = switch(get("image-registry-insecure"))
    opts.image_push = get("image-push") is None or switch(get("image-push"))
    if get("variants"):
        opts.variants = tuple(v for v in (get("variants") or "").split(",") if v)
    if get("parallel"):
        try:
            opts.parallel = max(1, int(get("parallel") or "8"))
        except ValueError:
            raise InputError("PARALLEL", "PARALLEL", f"{get('parallel')!r}: must be a number") from None
    opts.host_network, opts.keep, opts.reuse = (switch(get(n)) for n in ("host-network", "keep", "reuse"))
    opts.kind_bin = Path(get("kind-bin")).absolute() if get("kind-bin") else None  # type: ignore[arg-type]
    opts.worker = get("worker")
    return opts

"""Run options, shared by the pytest plugin and the console command (one definition)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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


class Option(NamedTuple):
    """One run option: its flag (`--<name>`), the environment/make variable, which targets take it, its help."""

    name: str
    env: str
    targets: tuple[str, ...]
    help: str


ALL_TARGETS = ("node", "local", "cluster", "kind")


def _option(name: str, env: str, targets: str, text: str) -> Option:
    return Option(name, env, ALL_TARGETS if targets == "all" else tuple(targets.split()), text)


# The one table of run options: the CLI's flags, the plugin's --sgp-<name> options, the variables `make` and
# --options-from-env pass, and docs/options.md's reference (`python -m conformance.core.options`, checked by a test).
FLAGS: list[Option] = [
    _option("target", "TARGET", "all",
            "where cases run: node (CRI), local (a private kubelet and API server on the private runtime), cluster "
            "(KUBECONFIG), kind (a cluster per cell of versions.yaml)"),
    _option("runtime", "RUNTIME", "node local kind", "runtime to start privately: containerd or crio"),
    _option("version", "VERSION", "node local kind",
            "containerd: 2 (newest 2.x, default), 2.1, 1.7, 1.6 or exact; crio: 1.37 or exact (default: its newest "
            "release)"),
    _option("containerd-bin-dir", "CONTAINERD_BIN_DIR", "node local kind",
            "folder with your containerd binaries instead of a download"),
    _option("crio-bin-dir", "CRIO_BIN_DIR", "node local kind", "folder with crio, pinns, conmon, runc or crun"),
    _option("oci-bin-dir", "OCI_BIN_DIR", "node local kind",
            "folder searched first for the OCI runtime HANDLER names (runc, crun), or for the default"),
    _option("cri-endpoint", "CRI_ENDPOINT", "node local", "use an already running runtime at this CRI socket"),
    _option("handler", "HANDLER", "node local kind",
            "OCI runtime for the pods: runc (the stock one) or crun, exactly, from OCI_BIN_DIR, the runtime's folder, "
            "then PATH; default: one with user namespaces (the suite's crun build where runc lacks idmap mounts)"),
    _option("image-load", "IMAGE_LOAD", "node local", "how images get into the runtime: auto, ctr, skopeo, registry"),
    _option("crio-storage", "CRIO_STORAGE", "node local",
            "containers-storage root:runroot of an existing CRI-O (skopeo loading)"),
    _option("results-dir", "RESULTS_DIR", "all", "where results.json and runtime logs go (default results/)"),
    _option("scenarios", "SCENARIOS", "all", "scenario folder (default the project's scenarios/)"),
    _option("images", "IMAGES", "all", "image folder (default the project's images/)"),
    _option("k8s", "K8S", "local kind",
            "Kubernetes release (1.36, or exact 1.36.2), downloaded: TARGET=local's, and a built kind node's"),
    _option("k8s-bin-dir", "K8S_BIN_DIR", "local kind",
            "folder with your Kubernetes binaries instead (local: the four server binaries; kind: kubeadm and kubectl"
            " too)"),
    _option("etcd-bin", "ETCD_BIN", "local kind",
            "an etcd binary (default: etcd's release beside released Kubernetes, else Debian's etcd-server)"),
    _option("kubeconfig", "KUBECONFIG", "cluster", "cluster: kubeconfig file"),
    _option("context", "CONTEXT", "cluster", "cluster: kubeconfig context"),
    _option("nodes", "NODES", "cluster kind",
            "cluster: 'all' runs every case on every Linux node; a node name pins the cases to it"),
    _option("variants", "VARIANTS", "local cluster kind",
            "Kubernetes targets: container kinds (container,init,sidecar,ephemeral)"),
    _option("image-registry", "IMAGE_REGISTRY", "cluster",
            "cluster: registry[/prefix] the nodes pull the test images from (IfNotPresent); the suite pushes the "
            "missing ones there first"),
    _option("image-registry-insecure", "IMAGE_REGISTRY_INSECURE", "cluster",
            "cluster: IMAGE_REGISTRY speaks plain HTTP or has a certificate not trusted here (1)"),
    _option("image-push", "IMAGE_PUSH", "cluster",
            "cluster: 0 = the images are in IMAGE_REGISTRY already (`images push`); default 1 pushes the missing ones"),
    _option("host-network", "HOST_NETWORK", "cluster",
            "cluster: test pods with hostNetwork, for a cluster without a pod network (1)"),
    _option("parallel", "PARALLEL", "local cluster kind", "Kubernetes targets: pods run at once (default 8)"),
    _option("keep", "KEEP", "local cluster kind",
            "keep the cases' pods (1): local holds its cluster until Ctrl-C, cluster keeps the run's namespace, kind "
            "keeps the cluster"),
    _option("reuse", "REUSE", "kind", "kind: reuse an existing cluster of the same cell (1)"),
    _option("kind-bin", "KIND_BIN", "kind",
            "kind: the kind binary (default: kind on PATH, else Debian's kind, fetched privately)"),
    _option("worker", "WORKER", "kind",
            "kind: add a worker node running runtime[:version] (e.g. containerd:1.7) beside the control plane: a "
            "cluster mid-upgrade"),
]


ENV_FLAG = "--options-from-env"


def from_environment(argv: list[str]) -> list[str]:
    """With ENV_FLAG in `argv` (as `make` passes it): `argv` without it, plus `--<name> <value>` for every option
    whose variable is set in the environment and whose flag `argv` does not give; else `argv` as it is. How
    `make conformance VAR=value` reaches the run without the Makefile listing flags."""
    if ENV_FLAG not in argv:
        return argv
    argv = [a for a in argv if a != ENV_FLAG]
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    extra = []
    for option in FLAGS:
        value = os.environ.get(option.env, "")
        if value and f"--{option.name}" not in given:
            extra += [f"--{option.name}", value]
    return [*argv, *extra]


def reference() -> str:
    """The options table of docs/options.md, made from FLAGS."""
    rows = ["| make variable | flag | targets | meaning |", "|---|---|---|---|"]
    for option in FLAGS:
        targets = "all" if option.targets == ALL_TARGETS else ", ".join(option.targets)
        rows.append(f"| `{option.env}` | `--{option.name}` | {targets} | {option.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


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


if __name__ == "__main__":
    print(reference(), end="")

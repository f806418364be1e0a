"""The CRI runtimes a kind node can carry, each described once: where it listens in the node, how it is asked
its version and config, how images reach it, what its built node image holds. The rest of the kind target reads
these fields instead of asking which runtime it has. Standard library only (cells.py imports it)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.errors import InputError


@dataclass(frozen=True)
class NodeRuntime:
    """One CRI runtime as a kind node runs it."""

    name: str  # as RUNTIME and versions.yaml name it
    title: str  # as people write it
    reported: str  # its name in the kubelet's status.nodeInfo.containerRuntimeVersion
    first_supported: tuple[int, int]  # the first minor that supports supplementalGroupsPolicy (catalogue facts)
    in_stock_images: bool  # kindest/node carries it (else its cells are built)
    loaded_by_kind: bool  # `kind load image-archive` reaches its image store
    unit: str  # its systemd unit in a node
    socket: str  # its CRI socket inside a node, without the leading /
    kubeadm_socket: str  # the criSocket kubeadm is told ("": kubeadm finds it)
    binaries: tuple[str, ...]  # from its folder into /usr/local/bin of a built node image, the daemon first
    stock_version: tuple[str, ...]  # asks a stock node image its version
    config_dump: tuple[str, ...]  # prints its effective config in a node
    config_path: str  # its drop-in config in a built node image
    config_file: str  # template of that config (images/kind/node/)
    handler_file: str  # template of one OCI runtime's table in it
    handler_from_folder: bool  # the default runc comes from its folder (else the node base's /usr/sbin/runc)
    handler_wrapped: bool  # each OCI runtime behind the oom-restrict wrapper (no restrict_oom_score_adj of its own)
    preload_at_build: bool  # its images go into a built node image at build (else at first boot, sgp-preload)
    extra_files: tuple[tuple[str, str], ...] = ()  # (path in the node, node file) it also needs

    @property
    def built_version(self) -> tuple[str, ...]:
        """Asks a built node image its version."""
        return (f"/usr/local/bin/{self.binaries[0]}", "--version")

    def reported_version(self, version: str) -> str:
        """What the kubelet reports for `version`: containerd://2.1.9, cri-o://1.37.0."""
        return f"{self.reported}://{version}"


CONTAINERD = NodeRuntime(
    name="containerd", title="containerd", reported="containerd", first_supported=(2, 0), in_stock_images=True,
    loaded_by_kind=True, unit="containerd", socket="run/containerd/containerd.sock", kubeadm_socket="",
    binaries=("containerd", "containerd-shim-runc-v2", "ctr"), stock_version=("containerd", "--version"),
    config_dump=("containerd", "config", "dump"), config_path="etc/containerd/config.toml",
    config_file="containerd.toml", handler_file="containerd-runtime.toml", handler_from_folder=False,
    handler_wrapped=False, preload_at_build=True)

CRIO = NodeRuntime(
    name="crio", title="CRI-O", reported="cri-o", first_supported=(1, 31), in_stock_images=False,
    loaded_by_kind=False, unit="crio", socket="run/crio/crio.sock", kubeadm_socket="unix:///var/run/crio/crio.sock",
    binaries=("crio", "pinns", "conmon"), stock_version=("crio", "version"), config_dump=("crio", "status", "config"),
    config_path="etc/crio/crio.conf.d/10-sgp.conf", config_file="crio.conf", handler_file="crio-runtime.conf",
    handler_from_folder=True, handler_wrapped=True, preload_at_build=False,
    extra_files=(("etc/crio/policy.json", "policy.json"),))

NODE_RUNTIMES = {r.name: r for r in (CONTAINERD, CRIO)}
NAMES = tuple(NODE_RUNTIMES)


def canonical(name: str) -> str:
    """RUNTIME as the suite names it: `cri-o` is crio."""
    return next((r.name for r in NODE_RUNTIMES.values() if name in (r.name, r.reported)), name)


def of(name: str, where: str = "RUNTIME") -> NodeRuntime:
    """The runtime called `name` (or its reported name)."""
    found = NODE_RUNTIMES.get(canonical(name))
    if found is None:
        raise InputError(where, where, f"{name!r}: must be one of {', '.join(NAMES)}")
    return found

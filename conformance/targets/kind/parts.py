"""Where each part of a built node image comes from: the runtime (containerd from Debian's archive, a
release or CONTAINERD_BIN_DIR; CRI-O from CRIO_BIN_DIR or its bundle), the OCI runtime HANDLER names,
Kubernetes (K8S_BIN_DIR, which also holds kubeadm and kubectl, or the release binaries), etcd (ETCD_BIN, its
release beside released Kubernetes, or Debian's) and the Debian base (nodebase.py, which carries the CNI
plugins too). Nothing is built here."""

from __future__ import annotations

from pathlib import Path

from conformance.core.options import Options
from conformance.errors import ProvisionError
from conformance.kube import binaries
from conformance.runtimes import containerd, oci
from conformance.runtimes.crio import Crio
from conformance.targets.kind import nodebase, nodeimage
from conformance.targets.kind.nodeimage import CONTROL_PLANE, KUBE_BINARIES, Parts
from conformance.testimages.archive import ImageArchive

K8S_NEEDED = (*KUBE_BINARIES, *CONTROL_PLANE)


def kubernetes(opts: Options, version: str) -> tuple[Path, str, Path | None]:
    """(folder, version, the downloaded release's kubeadm or None): K8S_BIN_DIR (which must also hold kubeadm
    and kubectl), else the official release binaries of `version` (K8S, or the cell's)."""
    folder, found, _ = binaries.kubernetes(opts.k8s_bin_dir, version, opts.cache_dir, K8S_NEEDED)
    return folder, found, folder / "kubeadm" if opts.k8s_bin_dir is None else None


def _runtime(opts: Options, runtime: str, version: str | None, own_bins: bool) -> tuple[str, Path]:
    """(version, folder) of the runtime's binaries; the *_BIN_DIR options apply to the control plane's node."""
    cache = opts.cache_dir
    if runtime == "containerd":
        return containerd.resolve_binaries(version, opts.containerd_bin_dir if own_bins else None, cache)
    found_version, folder, _ = Crio(opts.crio_bin_dir if own_bins else None, opts.state_dir, version,
                                    cache).binaries()
    return found_version, folder


def _handlers(opts: Options, runtime: str, folder: Path) -> tuple[dict[str, str], str]:
    """OCI runtime name -> binary to copy ("" = the base's own runc), and the default name."""
    name = opts.handler or "runc"
    found = oci.locate(name, oci.search_dirs(opts.oci_bin_dir, "the runtime's folder", folder))
    if found is None and name != "runc":
        raise ProvisionError(f"HANDLER={name}: no {name} in OCI_BIN_DIR or the runtime's folder")
    path = str(found[0]) if found is not None and (runtime == "crio" or opts.oci_bin_dir) else ""
    return {name: path}, name


def resolve(opts: Options, runtime: str, version: str | None, k8s: str | None, tests: list[ImageArchive],
            log: Path, own_bins: bool = True, make_base: bool = True) -> Parts:
    """Every part of one node image (the base is made with debootstrap the first time, unless a plan only
    names it); Kubernetes `k8s` comes from its releases unless K8S_BIN_DIR is set."""
    k8s_dir, k8s_version, kubeadm = kubernetes(opts, k8s or "")
    runtime_version, folder = _runtime(opts, runtime, version, own_bins)
    handlers, default = _handlers(opts, runtime, folder)
    etcd, etcd_version = binaries.etcd(opts.etcd_bin, opts.cache_dir, kubeadm, k8s_version)
    parts = Parts(runtime=runtime, runtime_version=runtime_version, runtime_dir=folder, handlers=handlers,
                 handler=default, k8s_version=k8s_version, k8s_dir=k8s_dir, etcd=etcd, etcd_version=etcd_version,
                 base=nodebase.tarball(opts.cache_dir, log) if make_base else nodebase.path(opts.cache_dir),
                 tests=tuple(tests))
    if make_base:
        nodeimage.check(parts)
    return parts

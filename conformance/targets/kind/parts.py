"""Where each part of a built node image comes from: the runtime (containerd from Debian's archive, a
release or CONTAINERD_BIN_DIR; CRI-O from CRIO_BIN_DIR or its bundle), the OCI runtime HANDLER names,
Kubernetes (K8S_BIN_DIR, which also holds kubeadm and kubectl), etcd (ETCD_BIN or Debian's) and the Debian
base (nodebase.py, which carries the CNI plugins too). Nothing is built here."""

from __future__ import annotations

from pathlib import Path

from conformance.archive import ImageArchive
from conformance.errors import InputError, ProvisionError
from conformance.options import Options
from conformance.runtimes import containerd, oci
from conformance.runtimes.crio import Crio
from conformance.targets.kind import cells, nodebase, nodeimage
from conformance.targets.kind.nodeimage import CONTROL_PLANE, KUBE_BINARIES, Parts
from conformance.targets.local import binaries

K8S_NEEDED = (*KUBE_BINARIES, *CONTROL_PLANE)
NO_K8S = ("a kind node image built here needs K8S_BIN_DIR=<folder with kubelet, kubeadm, kubectl, kube-apiserver, "
          "kube-controller-manager, kube-scheduler> (stock kindest/node images need a registry)")


def runtime_of(spec: str, where: str) -> tuple[str, str | None]:
    """`containerd:1.7` -> ("containerd", "1.7"); `crio` -> ("crio", None)."""
    name, _, version = spec.partition(":")
    runtime = cells.runtime_name(name)
    if runtime not in ("containerd", "crio"):
        raise InputError(where, where, f"{spec!r}: runtime must be containerd or crio (optionally :version)")
    return runtime, version or None


def kubernetes(opts: Options) -> tuple[Path, str]:
    if opts.k8s_bin_dir is None:
        raise ProvisionError(NO_K8S)
    missing = [n for n in K8S_NEEDED if not (opts.k8s_bin_dir / n).is_file()]
    if missing:
        raise ProvisionError(f"K8S_BIN_DIR={opts.k8s_bin_dir}: missing {', '.join(missing)} ({NO_K8S})")
    return opts.k8s_bin_dir, binaries.check_folder(opts.k8s_bin_dir, f"K8S_BIN_DIR={opts.k8s_bin_dir}")


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


def resolve(opts: Options, runtime: str, version: str | None, tests: list[ImageArchive], log: Path,
            own_bins: bool = True, make_base: bool = True) -> Parts:
    """Every part of one node image (the base is made with debootstrap the first time, unless a plan only
    names it)."""
    k8s_dir, k8s_version = kubernetes(opts)
    runtime_version, folder = _runtime(opts, runtime, version, own_bins)
    handlers, default = _handlers(opts, runtime, folder)
    etcd, etcd_version = binaries.etcd(opts.etcd_bin, opts.cache_dir)
    parts = Parts(runtime=runtime, runtime_version=runtime_version, runtime_dir=folder, handlers=handlers,
                 handler=default, k8s_version=k8s_version, k8s_dir=k8s_dir, etcd=etcd, etcd_version=etcd_version,
                 base=nodebase.tarball(opts.cache_dir, log) if make_base else nodebase.path(opts.cache_dir),
                 tests=tuple(tests))
    if make_base:
        nodeimage.check(parts)
    return parts

"""Where each part of a built node image comes from: the runtime (containerd from Debian's archive, a
release or CONTAINERD_BIN_DIR; CRI-O from CRIO_BIN_DIR or its bundle), the OCI runtime HANDLER names,
Kubernetes (K8S_BIN_DIR, which also holds kubeadm and kubectl, or the release binaries), etcd (ETCD_BIN, its
release beside released Kubernetes, or Debian's) and the Debian base (nodebase.py, which carries the CNI
plugins too). Nothing is built here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conformance.core.options import Options
from conformance.errors import InputError, ProvisionError
from conformance.kube import binaries
from conformance.runtimes import containerd, crun, oci, ocidefault
from conformance.runtimes.crio import Crio
from conformance.targets.kind import cells, nodebase, nodeimage, noderuntime
from conformance.targets.kind.nodeimage import CONTROL_PLANE, KUBE_BINARIES, Parts
from conformance.testimages.archive import ImageArchive

K8S_NEEDED = (*KUBE_BINARIES, *CONTROL_PLANE)


def runtime_of(spec: str, where: str) -> tuple[str, str | None]:
    """`containerd:1.7` -> ("containerd", "1.7"); `crio` -> ("crio", None)."""
    name, _, version = spec.partition(":")
    runtime = noderuntime.canonical(name)
    if runtime not in noderuntime.NAMES:
        raise InputError(where, where, f"{spec!r}: runtime must be one of {', '.join(noderuntime.NAMES)} "
                         "(optionally :version)")
    return runtime, version or None


def kubernetes(opts: Options, version: str) -> tuple[Path, str, Path | None]:
    """(folder, version, the downloaded release's kubeadm or None): K8S_BIN_DIR (which must also hold kubeadm
    and kubectl), else the official release binaries of `version` (K8S, or the cell's)."""
    folder, found, _ = binaries.kubernetes(opts.k8s_bin_dir, version, opts.cache_dir, K8S_NEEDED)
    return folder, found, folder / "kubeadm" if opts.k8s_bin_dir is None else None


def _runtime(opts: Options, runtime: str, version: str | None, own_bins: bool) -> tuple[str, Path]:
    """(version, folder) of the runtime's binaries; the *_BIN_DIR options apply to the control plane's node."""
    cache = opts.cache_dir
    if runtime == noderuntime.CRIO.name:
        found_version, folder, _ = Crio(opts.crio_bin_dir if own_bins else None, opts.state_dir, version,
                                        cache).binaries()
        return found_version, folder
    return containerd.resolve_binaries(version, opts.containerd_bin_dir if own_bins else None, cache)


PLANNED = ("default, chosen when the cell runs (a plan fetches and builds nothing): a runc or crun with idmapped "
           "mounts from OCI_BIN_DIR or the runtime's folder, else the suite's crun build, else the base's runc")


def systemd_cgroups(handlers: dict[str, str]) -> bool:
    """Whether the node's OCI runtimes all have the systemd cgroup driver (a crun built without it has not; ''
    for crun: the suite's build, planned)."""
    return all(name != "crun" or (path and crun.has_systemd(path)) for name, path in handlers.items())


def _handlers(opts: Options, runtime: str, version: str, folder: Path,
              plan: bool = False) -> tuple[dict[str, str], str, str]:
    """OCI runtime name -> binary to copy ("" = the base's own runc; for crun in a plan, the suite's build), the
    default name, and why it (HANDLER, or ocidefault's choice for a node: the base's runc, the runtime's folder,
    OCI_BIN_DIR or the suite's crun)."""
    own = noderuntime.of(runtime).handler_from_folder
    if not opts.handler and plan:
        return {"crun": ""}, "crun", PLANNED
    if not opts.handler:
        dirs = oci.search_dirs(opts.oci_bin_dir, "the runtime's folder", folder if own else None)
        chosen = ocidefault.resolve("", runtime, version, dirs, opts.cache_dir, use_path=False)
        copied = chosen.name != "runc" or any(Path(chosen.path).parent == d for _, d in dirs)
        return {chosen.name: chosen.path if copied else ""}, chosen.name, chosen.chosen
    name = opts.handler
    found = oci.locate(name, oci.search_dirs(opts.oci_bin_dir, "the runtime's folder", folder))
    if found is None and name != "runc":
        raise ProvisionError(f"HANDLER={name}: no {name} in OCI_BIN_DIR or the runtime's folder")
    path = str(found[0]) if found is not None and (own or opts.oci_bin_dir or name != "runc") else ""
    return {name: path}, name, f"HANDLER={name}"


def resolve(opts: Options, runtime: str, version: str | None, k8s: str | None, tests: list[ImageArchive],
            log: Path, own_bins: bool = True, make_base: bool = True) -> Parts:
    """Every part of one node image (the base is made with debootstrap the first time, unless a plan only
    names it); Kubernetes `k8s` comes from its releases unless K8S_BIN_DIR is set."""
    k8s_dir, k8s_version, kubeadm = kubernetes(opts, k8s or "")
    runtime_version, folder = _runtime(opts, runtime, version, own_bins)
    handlers, default, why = _handlers(opts, runtime, runtime_version, folder, plan=not make_base)
    etcd, etcd_version = binaries.etcd(opts.etcd_bin, opts.cache_dir, kubeadm, k8s_version)
    parts = Parts(runtime=runtime, runtime_version=runtime_version, runtime_dir=folder, handlers=handlers,
                 handler=default, handler_chosen=why, systemd_cgroups=systemd_cgroups(handlers),
                 k8s_version=k8s_version, k8s_dir=k8s_dir, etcd=etcd, etcd_version=etcd_version,
                 base=nodebase.tarball(opts.cache_dir, log) if make_base else nodebase.path(opts.cache_dir),
                 tests=tuple(tests))
    if make_base:
        nodeimage.check(parts)
    return parts


def cell_and_images(opts: Options, archives: list[ImageArchive], make_base: bool = True,
                    ) -> tuple[cells.Cell, list[nodeimage.NodeImage]]:
    """The cell and one node image per node (control plane first): the stock image of the versions.yaml cell
    for RUNTIME/VERSION/K8S where that cell is stock; else built here from K8S_BIN_DIR, or from the release
    downloads of Kubernetes (K8S, else the cell's) and the runtime (VERSION, else the cell's)."""
    two_nodes = opts.nodes == "all" or bool(opts.worker)
    row = None if opts.k8s_bin_dir is not None else cells.find(cells.load(), opts.runtime, opts.version, opts.k8s)
    if row is not None and row.node_image == "stock" and not opts.worker:
        return row, [nodeimage.stock(row)] * (2 if two_nodes else 1)
    k8s = opts.k8s or (row.k8s if row is not None else None)
    if opts.k8s_bin_dir is None and not k8s:
        raise ProvisionError(f"no cell in versions.yaml for RUNTIME={opts.runtime} VERSION={opts.version or '*'}: "
                             "give K8S=<x.y[.z]> (Kubernetes release binaries, downloaded) or K8S_BIN_DIR")
    version = opts.version or (row.runtime_version if row is not None else None)
    log = opts.results_dir / "kind-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    main = resolve(opts, opts.runtime, version, k8s, archives, log, make_base=make_base)
    images = [nodeimage.built(main, opts.cache_dir)]
    cell = cells.built(main.runtime, main.runtime_version, main.k8s_version)
    if opts.worker:
        runtime, version = runtime_of(opts.worker, "WORKER")
        other = resolve(opts, runtime, version, k8s, archives, log, own_bins=runtime != main.runtime,
                              make_base=make_base)
        images.append(nodeimage.built(other, opts.cache_dir))
        # short: kind's node names are host names (63 characters at most)
        cell = dataclasses.replace(cell, id=f"{main.runtime}-{main.runtime_version}-{other.runtime}-"
                                            f"{other.runtime_version}".replace("+", "-").replace("~", "-"))
    elif two_nodes:
        images.append(images[0])
    return cell, images

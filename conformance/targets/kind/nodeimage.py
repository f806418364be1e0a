"""Node images: a stock kindest/node pinned by digest (pulled), or one the suite builds offline.

A built node image is the Debian base (nodebase.py) plus one layer of the project's own node files
(images/kind/node/: entrypoint, units, runtime configs, the preload), the cell's runtime binaries and OCI
runtime, kubelet/kubeadm/kubectl, and the images a node needs: control plane and etcd made from the given
binaries under the names kubeadm asks for, pause, and the suite's test images. containerd's are loaded into
its store while the image is built (a stage of the build that runs sgp-preload; the node boots with them in
place); CRI-O's go in as a bundle its node loads at first boot. Its tag ends with a content key over all of
that; the image is saved in the cache once built and loaded from there into an engine that lacks it (the
private engine keeps its images in the cache's image store, engine.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ProvisionError
from conformance.paths import IMAGES
from conformance.runtimes import executables, oci
from conformance.runtimes.busybox import find as find_busybox
from conformance.targets.kind import nodebase
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command, Docker
from conformance.targets.kind.noderuntime import NODE_RUNTIMES
from conformance.testimages import archive
from conformance.testimages.archive import ImageArchive

NODE_FILES = IMAGES / "kind" / "node"
REPO = "localhost/sgp-node"
BASE_REPO = "localhost/sgp-node-base"
KEY_LABEL = "sgp.conformance/recipe"
KUBE_BINARIES = ("kubelet", "kubeadm", "kubectl")
HYBRID = "/usr/local/lib/sgp-hybrid"  # crun behind images/kind/node/crun-hybrid
RESTRICT = "/usr/local/lib/sgp-oom-restrict"  # wrapped OCI runtimes (NodeRuntime.handler_wrapped), oom-restrict
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
LIB = re.compile(r"(/\S+\.so[.\d]*)")


@dataclass(frozen=True)
class Parts:
    """Everything a built node image is made of (resolved by the session before anything is built)."""

    runtime: str  # containerd | crio
    runtime_version: str
    runtime_dir: Path
    handlers: dict[str, str]  # OCI runtime name -> binary on the host (runc "": the base's /usr/sbin/runc)
    handler: str  # the runtime's default
    k8s_version: str  # v1.36.2
    k8s_dir: Path
    etcd: Path
    etcd_version: str
    base: Path  # the Debian base tarball
    tests: tuple[ImageArchive, ...] = ()
    handler_chosen: str = ""  # why that OCI runtime: HANDLER=..., or the default and its reason (ocidefault.py)
    systemd_cgroups: bool = True  # the node's cgroup driver is systemd (else cgroupfs: an OCI runtime without it)

    def to_json(self) -> dict:
        return {"runtime": self.runtime, "runtime_version": self.runtime_version, "runtime_dir": str(self.runtime_dir),
                "handlers": self.handlers, "handler": self.handler, "handler_chosen": self.handler_chosen,
                "systemd_cgroups": self.systemd_cgroups,
                "kubernetes": self.k8s_version,
                "k8s_dir": str(self.k8s_dir), "etcd": self.etcd_version,
                "base": self.base.name}


@dataclass(frozen=True)
class NodeImage:
    """How a node image comes to exist: pulled (stock) or built from Parts."""

    ref: str
    stock: bool
    base: str = ""
    parts: Parts | None = None
    cache_key: str = ""
    version_check: tuple[str, ...] = ()
    saved: Path | None = None  # the built image, `docker save`d in the cache

    @property
    def base_ref(self) -> str:
        return _base_ref(self.parts) if self.parts else ""


def _base_ref(parts: Parts) -> str:
    return f"{BASE_REPO}:{parts.base.stem.removeprefix('base-')}"


def stock(cell: Cell) -> NodeImage:
    return NodeImage(ref=cell.base_node_image, stock=True, base=cell.base_node_image,
                     version_check=NODE_RUNTIMES[cell.runtime].stock_version)


def built(parts: Parts, cache: Path) -> NodeImage:
    key = _digest(parts)
    tag = f"{parts.runtime}-{parts.runtime_version}-k8s-{parts.k8s_version}-{key[:12]}".replace("+", "_")
    return NodeImage(ref=f"{REPO}:{tag}", stock=False, parts=parts, cache_key=key,
                     version_check=NODE_RUNTIMES[parts.runtime].built_version,
                     saved=cache / "kind" / f"node-{key[:24]}.tar")


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path}:{stat.st_size}:{int(stat.st_mtime)}"


def _digest(parts: Parts) -> str:
    """The content key: the recipe, the node files, every binary (path, size, mtime), the base and the test
    images."""
    digest = hashlib.sha256(json.dumps(parts.to_json(), sort_keys=True).encode())
    digest.update(_dockerfile(parts, "").encode())
    for path in sorted(NODE_FILES.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for path in _binaries(parts).values():
        digest.update(_file_key(path).encode())
    digest.update((_file_key(parts.base) if parts.base.exists() else parts.base.name).encode())
    for test in parts.tests:
        digest.update(test.ref.encode())
    return digest.hexdigest()


def _named_binaries(parts: Parts) -> dict[str, tuple[Path, str]]:
    """Path in the node -> (the path given, the option it came from)."""
    out = {f"usr/local/bin/{n}": (parts.runtime_dir / n, f"{parts.runtime} folder") for n in
           NODE_RUNTIMES[parts.runtime].binaries}
    out.update({f"usr/bin/{n}": (parts.k8s_dir / n, "K8S_BIN_DIR") for n in KUBE_BINARIES})
    out.update({f"usr/local/sbin/{n}": (Path(p), f"HANDLER={n}") for n, p in parts.handlers.items() if p})
    return out


def _binaries(parts: Parts) -> dict[str, Path]:
    """Path in the node -> the file on the host (behind any links: the image gets the file, not a link)."""
    return {inside: executables.real_file(path, label) for inside, (path, label) in _named_binaries(parts).items()}


def check(parts: Parts) -> None:
    """Every binary a node image would carry, before anything is built: present, executable, for this machine,
    and (those that run on the node itself) linked only against what the base has."""
    present = nodebase.libraries(parts.base)
    for path, label in _named_binaries(parts).values():
        executables.check_libraries(executables.inspect(path, label), label, present,
                                    f"the node image's Debian {nodebase.SUITE} base")
    for name in CONTROL_PLANE:  # these and etcd take their libraries into their images with them
        executables.inspect(parts.k8s_dir / name, "K8S_BIN_DIR")
    executables.inspect(parts.etcd, "ETCD_BIN")


def _handler_path(parts: Parts, name: str) -> str:
    """Where OCI runtime `name` is in the node (crun: behind images/kind/node/crun-hybrid)."""
    if name == "crun":
        return f"{HYBRID}/{name}"
    return f"/usr/local/sbin/{name}" if parts.handlers.get(name) else "/usr/sbin/runc"


def oci_runtime(parts: Parts) -> dict:
    """results.json's runtime.oci_runtime for a built node: the default OCI runtime, its path in the node, its
    version ('' for the base's own runc) and why it."""
    host = parts.handlers.get(parts.handler, "")
    return {"name": parts.handler, "path": _handler_path(parts, parts.handler),
            "version": (oci.probe_version(host) or "") if host else "", "chosen": parts.handler_chosen}


def _configured_path(parts: Parts, name: str) -> str:
    """The path the runtime's config names for OCI runtime `name`: itself, or its oom-restrict wrapper."""
    return f"{RESTRICT}/{name}" if NODE_RUNTIMES[parts.runtime].handler_wrapped else _handler_path(parts, name)


def _fill(name: str, values: dict[str, str]) -> str:
    text = (NODE_FILES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def cgroup_driver(parts: Parts) -> str:
    """The node's cgroup driver (kubelet and runtime): systemd, or cgroupfs for an OCI runtime built without it."""
    return "systemd" if parts.systemd_cgroups else "cgroupfs"


def runtime_config(parts: Parts, pause: str) -> tuple[str, str]:
    """(path in the node, text) of the runtime's config."""
    runtime = NODE_RUNTIMES[parts.runtime]
    systemd = "true" if parts.systemd_cgroups else "false"
    tables = "".join(_fill(runtime.handler_file, {"NAME": n, "PATH": _configured_path(parts, n), "SYSTEMD": systemd})
                     for n in sorted(parts.handlers))
    return runtime.config_path, _fill(runtime.config_file, {"PAUSE": pause, "HANDLER": parts.handler,
                                                            "CGROUP_MANAGER": cgroup_driver(parts),
                                                            "RUNTIMES": tables.rstrip("\n")})


def kubeadm_images(parts: Parts) -> dict[str, str]:
    """Image name -> reference, as `kubeadm config images list` asks for them."""
    proc = subprocess.run([str(parts.k8s_dir / "kubeadm"), "config", "images", "list", "--kubernetes-version",
                           parts.k8s_version], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise ProvisionError(f"kubeadm config images list failed: {proc.stderr.strip()[-500:]}")
    refs = {}
    for ref in proc.stdout.split():
        refs[ref.rsplit("/", 1)[-1].split(":")[0]] = ref
    return refs


def _libraries(binary: Path) -> dict[str, tuple[bytes, int]]:
    """The shared libraries a dynamically linked binary loads (from `ldd`), at the same paths."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30, check=False)
    out = {}
    for path in LIB.findall(proc.stdout):
        real = Path(path).resolve()
        out[path.lstrip("/")] = (real.read_bytes(), 0o755)
    return out


def control_plane_archives(parts: Parts, out_dir: Path) -> list[ImageArchive]:
    """kube-apiserver, -controller-manager, -scheduler, etcd and pause images under kubeadm's names."""
    refs = kubeadm_images(parts)
    busybox = find_busybox().read_bytes()
    made = []
    for name in CONTROL_PLANE:  # a dynamically linked build takes its libraries along, as etcd does
        binary = parts.k8s_dir / name
        layer = archive.files_layer({f"usr/local/bin/{name}": (binary.read_bytes(), 0o755), **_libraries(binary)})
        made.append(_one(name, refs[name], layer, {"Env": ["PATH=/usr/local/bin:/bin"]}, out_dir))
    files = {"usr/local/bin/etcd-real": (parts.etcd.read_bytes(), 0o755), "bin/busybox": (busybox, 0o755),
             **_libraries(parts.etcd)}
    links = {"bin/sh": "busybox"}
    if parts.etcd_version.startswith(("3.5.", "v3.5.")):
        files["usr/local/bin/etcd"] = ((NODE_FILES / "etcd-3.5").read_bytes(), 0o755)
    else:
        links["usr/local/bin/etcd"] = "etcd-real"
    made.append(_one("etcd", refs["etcd"], archive.files_layer(files, links), {"Env": ["PATH=/usr/local/bin:/bin"]},
                     out_dir))
    pause = archive.files_layer({"bin/busybox": (busybox, 0o755), "pause": (archive.PAUSE_SCRIPT, 0o755)},
                                {"bin/sh": "busybox", "bin/sleep": "busybox"})
    made.append(_one("pause", refs["pause"], pause, {"Env": ["PATH=/bin"], "Entrypoint": ["/pause"]}, out_dir))
    return made


def _one(name: str, ref: str, layer: bytes, config: dict, out_dir: Path) -> ImageArchive:
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    blob = archive.image_config(config, layer_digest, f"sgpconf kind node image part {name}")
    return archive.write(name, out_dir / f"{name}-{hashlib.sha256(blob).hexdigest()[:12]}.tar", ref, layer, blob)


def context(image: NodeImage, cache: Path, folder: Path) -> Path:
    """The build folder: Dockerfile and rootfs/ (the project's node files, binaries, the image bundle)."""
    parts = image.parts
    assert parts is not None
    shutil.rmtree(folder, ignore_errors=True)
    root = folder / "rootfs"
    images = control_plane_archives(parts, cache / "kind" / "parts")
    pause = next(a.ref for a in images if a.name == "pause")
    put = {"usr/local/bin/entrypoint": "entrypoint", "usr/local/bin/sgp-preload": "sgp-preload",
           "etc/systemd/system/kubelet.service": "kubelet.service", "etc/systemd/system/kubelet.slice": "kubelet.slice",
           "etc/systemd/system/sgp-preload.service": "sgp-preload.service",
           "kind/manifests/default-storage.yaml": "default-storage.yaml"}
    runtime = NODE_RUNTIMES[parts.runtime]
    unit = f"{runtime.unit}.service"
    put[f"etc/systemd/system/{unit}"] = unit
    put.update(runtime.extra_files)
    for name in parts.handlers:
        if _handler_path(parts, name).startswith(HYBRID):
            _wrapper(root, HYBRID, name, "crun-hybrid", f"/usr/local/sbin/{name}")
        if runtime.handler_wrapped:
            _wrapper(root, RESTRICT, name, "oom-restrict", _handler_path(parts, name))
    for inside, name in put.items():
        _copy(NODE_FILES / name, root / inside)
    path, text = runtime_config(parts, pause)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    for inside, source in _binaries(parts).items():
        _copy(source, root / inside, link=True)
    (root / "kind").mkdir(parents=True, exist_ok=True)
    (root / "kind" / "version").write_text(parts.k8s_version)
    bundle_dir = folder / "images"  # beside rootfs/: the Dockerfile puts it in /kind/images/ (dockerfile())
    bundle_dir.mkdir(parents=True, exist_ok=True)
    everything = [*images, *parts.tests]
    _copy(archive.bundle(everything, cache / "kind" / "parts"), bundle_dir / "bundle.tar", link=True)
    (bundle_dir / "refs").write_text("\n".join(a.ref for a in everything) + "\n")
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for name in (unit, "kubelet.service", "sgp-preload.service"):
        (wants / name).symlink_to(f"/etc/systemd/system/{name}")
    masked = root / "etc" / "systemd" / "system"
    for name in ("getty.target", "console-getty.service", "systemd-sysctl.service", "systemd-udevd.service",
                 "systemd-modules-load.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount"):
        (masked / name).symlink_to("/dev/null")
    (folder / "Dockerfile").write_text(dockerfile(image))
    return folder


def _wrapper(root: Path, folder: str, name: str, template: str, real: str) -> None:
    """An OCI runtime's wrapper script in the node, `folder`/`name`, from a node file that execs `real`."""
    path = root / folder.lstrip("/") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_fill(template, {"REAL": real}))
    path.chmod(0o755)


def dockerfile(image: NodeImage) -> str:
    """The node layer over the base: the build folder's rootfs/, systemd as PID 1 behind the entrypoint."""
    assert image.parts is not None
    return _dockerfile(image.parts, image.cache_key)


def _dockerfile(parts: Parts, key: str) -> str:
    """dockerfile() for `parts` with content key `key` ("" inside the key itself). A runtime that takes its
    images at build gets them in a first stage (sgp-preload build) whose store alone the node layer copies (not
    the bundle); otherwise the bundle goes in for the first boot."""
    base = _base_ref(parts)
    tail = (f"ENV container=docker\nSTOPSIGNAL SIGRTMIN+3\n"
            f'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\nLABEL {KEY_LABEL}={key}\n')
    if not NODE_RUNTIMES[parts.runtime].preload_at_build:
        return f"FROM {base}\nCOPY rootfs/ /\nCOPY images/ /kind/images/\n{tail}"
    return (f"FROM {base} AS preload\nCOPY rootfs/ /\nCOPY images/ /kind/images/\n"
            f'RUN ["/usr/local/bin/sgp-preload", "build"]\n\n'
            f"FROM {base}\nCOPY rootfs/ /\nCOPY --from=preload /var/lib/containerd/ /var/lib/containerd/\n"
            f"COPY --from=preload /var/lib/sgp-preload.done /var/lib/sgp-preload.done\n{tail}")


def _copy(source: Path, target: Path, link: bool = False) -> None:
    """Into the build folder: a hard link where the file system allows it (binaries are large), else a copy;
    always of the file behind any symbolic link (a link would dangle in the image)."""
    source = Path(os.path.realpath(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            target.hardlink_to(source)
            return
        except OSError:
            pass
    shutil.copy2(source, target)


def lookup_command(image: NodeImage, docker: Docker) -> Command:
    """`docker image inspect`: succeeds when the image (same content key) is present."""
    return docker.image_id(image.ref)


def build_commands(image: NodeImage, docker: Docker, folder: Path) -> list[Command]:
    """Stock: pull by digest. Built: import the base (unless present), build the node layer, save it."""
    if image.stock:
        return [docker.pull(image.base)]
    assert image.parts is not None and image.saved is not None
    return [docker.import_image(image.parts.base, image.base_ref), docker.build(folder, folder / "Dockerfile",
                                                                                 image.ref, {}, {}),
            docker.save(image.ref, image.saved)]


def version_command(image: NodeImage, docker: Docker) -> Command:
    return docker.run_version(image.ref, image.version_check[0], *image.version_check[1:])

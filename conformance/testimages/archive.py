"""Build test images offline and deterministically into docker-archive tarballs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from conformance.core.catalogue import Catalogue
from conformance.core.image import ImageDef
from conformance.runtimes import busybox

REPO = "localhost/sgpconf"
APPLETS = ("sh", "id", "cat", "grep", "sleep", "echo", "ls", "true", "false", "env", "head")
PAUSE_SCRIPT = b"#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait $!; done\n"


@dataclass(frozen=True)
class ImageArchive:
    """A built image: tarball path, reference and content digests."""

    name: str
    path: Path
    ref: str  # repository:tag, tag derived from the config digest
    config_digest: str
    layer_digest: str


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = mode
    info.type = kind
    info.linkname = link
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def layer_bytes(image: ImageDef, busybox: bytes) -> bytes:
    """The single layer: busybox, its applets, /pause and the image's /etc files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "root", "sys"):
            _add(tar, d + "/", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "tmp/", kind=tarfile.DIRTYPE, mode=0o1777)
        _add(tar, "bin/busybox", data=busybox, mode=0o755)
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "pause", data=PAUSE_SCRIPT, mode=0o755)
        for path in sorted(image.files):
            _add(tar, path, data=image.files[path], mode=0o644)
    return buf.getvalue()


def config_bytes(image: ImageDef, layer_digest: str) -> bytes:
    config: dict = {"Env": ["PATH=/bin"], "Cmd": list(image.cmd), "WorkingDir": "/"}
    if image.user is not None:
        config["User"] = image.user
    return image_config(config, layer_digest, f"sgpconf image {image.name}")


def image_config(config: dict, layer_digest: str, created_by: str) -> bytes:
    """An OCI image config of one layer, canonical JSON (same input, same digest)."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": created_by}],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def build(image: ImageDef, out_dir: Path, busybox: Path) -> ImageArchive:
    """Write <out_dir>/<name>-<tag>.tar from the static `busybox` (runtimes.busybox.find); same input gives the
    same bytes and digest."""
    bb = busybox.read_bytes()
    layer = layer_bytes(image, bb)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = config_bytes(image, layer_digest)
    config_hex = hashlib.sha256(config).hexdigest()
    ref = f"{REPO}/{image.name}:{config_hex[:12]}"
    return write(image.name, out_dir / f"{image.name}-{config_hex[:12]}.tar", ref, layer, config)


def write(name: str, path: Path, ref: str, layer: bytes, config: bytes) -> ImageArchive:
    """A docker-archive of one layer at `path` (kept when it exists: its name carries the content)."""
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_hex = hashlib.sha256(config).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        manifest = [{"Config": f"{config_hex}.json", "RepoTags": [ref],
                     "Layers": [f"{layer_digest[7:]}/layer.tar"]}]
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # cells running side by side share the cache
        with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _add(tar, f"{layer_digest[7:]}/", kind=tarfile.DIRTYPE, mode=0o755)
            _add(tar, f"{layer_digest[7:]}/layer.tar", data=layer)
            _add(tar, f"{config_hex}.json", data=config)
            _add(tar, "manifest.json", data=json.dumps(manifest, sort_keys=True).encode())
        shutil.move(tmp, path)
    return ImageArchive(name, path, ref, "sha256:" + config_hex, layer_digest)


def files_layer(files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None) -> bytes:
    """A layer tarball of `files` (path -> (bytes, mode)) and symlinks, parent folders included."""
    buf = io.BytesIO()
    folders = sorted({str(Path(p).parent) for p in [*files, *(links or {})]} - {"."})
    made: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for folder in folders:
            parts = Path(folder).parts
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in made:
                    made.add(sub)
                    _add(tar, sub + "/", kind=tarfile.DIRTYPE, mode=0o755)
        for path, (data, mode) in sorted(files.items()):
            _add(tar, path, data=data, mode=mode)
        for path, target in sorted((links or {}).items()):
            _add(tar, path, kind=tarfile.SYMTYPE, link=target, mode=0o777)
    return buf.getvalue()


def bundle(archives: list[ImageArchive], out_dir: Path) -> Path:
    """One docker-archive holding every image, so a runtime imports them in a single call."""
    key = hashlib.sha256("\n".join(sorted(a.ref for a in archives)).encode()).hexdigest()[:12]
    path = out_dir / f"bundle-{key}.tar"
    if path.exists():
        return path
    manifest, seen = [], set()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as out:
        for archive in sorted(archives, key=lambda a: a.ref):
            with tarfile.open(archive.path) as tar:
                entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
                manifest.append(entry)
                for member in tar.getmembers():
                    if member.name == "manifest.json" or member.name in seen:
                        continue
                    seen.add(member.name)
                    out.addfile(member, tar.extractfile(member) if member.isfile() else None)
        _add(out, "manifest.json", data=json.dumps(manifest, sort_keys=True).encode())
    shutil.move(tmp, path)
    return path


def catalogue_archives(catalogue: Catalogue, cache: Path) -> list[ImageArchive]:
    """Every image the catalogue uses, built from the static busybox (once: cached under `cache`/images)."""
    static = busybox.find(cache)
    return [build(catalogue.images[name], cache / "images", static) for name in catalogue.image_names()]

"""A read-only OCI distribution registry on loopback, serving the suite's image archives.

It lets any CRI runtime (containerd, CRI-O, ...) get the test images with CRI PullImage.
Layers are served uncompressed as OCI layers; manifests are OCI image manifests.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conformance.testimages.archive import ImageArchive

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
NAMESPACE = "sgpconf"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """Serve `archives` at 127.0.0.1:<port>/sgpconf/<name>:<tag> until stop()."""

    def __init__(self, archives: list[ImageArchive], host: str = "127.0.0.1", name: str = "localhost"):
        self.name = name
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        for archive in archives:
            self._add(archive)
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                found = registry.lookup(self.path)
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    payload = b'{"errors":[{"code":"NAME_UNKNOWN","message":"not found"}]}'
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if body:
                        self.wfile.write(payload)
                    return
                content_type, data = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _digest(data))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="sgp-registry", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        port = self.server.server_address[1]
        return f"{self.name}:{port}"

    def ref(self, archive: ImageArchive) -> str:
        return f"{self.address}/{NAMESPACE}/{archive.name}:{archive.ref.rsplit(':', 1)[1]}"

    def _add(self, archive: ImageArchive) -> None:
        with tarfile.open(archive.path) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            config = tar.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
            layer = tar.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
        self.blobs[_digest(config)] = config
        self.blobs[_digest(layer)] = layer
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": _digest(layer), "size": len(layer)}],
        }
        data = json.dumps(doc, sort_keys=True).encode()
        tag = archive.ref.rsplit(":", 1)[1]
        self.manifests[(f"{NAMESPACE}/{archive.name}", tag)] = data
        self.manifests[(f"{NAMESPACE}/{archive.name}", _digest(data))] = data

    def lookup(self, path: str) -> tuple[str, bytes] | None:
        path = path.split("?", 1)[0]
        if path in ("/v2", "/v2/"):
            return "application/json", b"{}"
        match = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", path)
        if not match:
            return None
        name, kind, ref = match.groups()
        if kind == "manifests":
            data = self.manifests.get((name, ref))
            return (MANIFEST, data) if data is not None else None
        data = self.blobs.get(ref)
        return ("application/octet-stream", data) if data is not None else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

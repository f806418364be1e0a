"""Release download layouts on loopback, built from binaries at hand: Kubernetes (`stable-<minor>.txt`,
`v<v>/bin/linux/<arch>/<name>` + `.sha256`), etcd (`v<v>/etcd-v<v>-linux-<arch>.tar.gz` + `SHA256SUMS`),
containerd (a GitHub-shaped release list, `download/v<v>/containerd-<v>-linux-<arch>.tar.gz` + `.sha256sum`)
and CRI-O (`latest-<minor>.txt`, `artifacts/cri-o.<arch>.v<v>.tar.gz` + `.sha256sum`).

The server counts requests per path and can cut a file short or serve it altered, to show that the suite
refuses both. By hand: `python -m tests.support.releases --k8s-bin-dir ... --k8s 1.36.2 ...` serves until
interrupted and prints the *_RELEASE_URL variables to use."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ARCH = "amd64"
K8S_NAMES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubeadm", "kubectl",
             "kube-proxy")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _tarball(target: Path, members: dict[str, Path]) -> Path:
    """A .tar.gz at `target` holding each file (links followed) under its member name, mode 0755."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz", compresslevel=1) as tar:
        for name, source in members.items():
            info = tar.gettarinfo(str(source.resolve()), arcname=name)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "root", "root"
            with source.resolve().open("rb") as f:
                tar.addfile(info, f)
    return target


def _sums(target: Path, *files: Path) -> None:
    target.write_text("".join(f"{_sha256(f)}  {f.name}\n" for f in files))


@dataclass
class Layout:
    """A folder laid out as the release hosts are, one subfolder per source."""

    root: Path

    def kubernetes(self, version: str, bin_dir: Path, names: tuple[str, ...] = K8S_NAMES) -> None:
        base = self.root / "k8s"
        folder = base / f"v{version}" / "bin" / "linux" / ARCH
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).symlink_to((bin_dir / name).resolve())
            (folder / f"{name}.sha256").write_text(_sha256(bin_dir / name))  # the digest alone, as upstream
        (base / f"stable-{version.rsplit('.', 1)[0]}.txt").write_text(f"v{version}\n")

    def etcd(self, version: str, etcd: Path, etcdctl: Path | None = None) -> None:
        folder = self.root / "etcd" / f"v{version}"
        top = f"etcd-v{version}-linux-{ARCH}"
        members = {f"{top}/etcd": etcd, **({f"{top}/etcdctl": etcdctl} if etcdctl else {})}
        _sums(folder / "SHA256SUMS", _tarball(folder / f"{top}.tar.gz", members))

    def containerd(self, version: str, bin_dir: Path, listed: tuple[str, ...] = ()) -> None:
        base = self.root / "containerd"
        name = f"containerd-{version}-linux-{ARCH}.tar.gz"
        folder = base / "download" / f"v{version}"
        tarball = _tarball(folder / name, {f"bin/{b}": bin_dir / b for b in
                                           ("containerd", "containerd-shim-runc-v2", "ctr")})
        (folder / f"{name}.sha256sum").write_text(f"{_sha256(tarball)}  {name}\n")
        listing = base / "index.json"
        known = json.loads(listing.read_text()) if listing.exists() else []
        known += [{"tag_name": f"v{v}", "prerelease": "-rc" in v, "draft": False} for v in (version, *listed)]
        listing.write_text(json.dumps(known))

    def crio(self, version: str, bin_dir: Path) -> None:
        base = self.root / "crio"
        name = f"cri-o.{ARCH}.v{version}.tar.gz"
        members = {f"cri-o/bin/{b.name}": b for b in sorted(bin_dir.iterdir()) if b.resolve().is_file()}
        tarball = _tarball(base / "artifacts" / name, members)
        (base / "artifacts" / f"{name}.sha256sum").write_text(f"{_sha256(tarball)}  {name}\n")
        (base / f"latest-{version.rsplit('.', 1)[0]}.txt").write_text(f"v{version}\n")


@dataclass
class Server:
    """What the loopback server saw and what it does to files (by path suffix)."""

    url: str
    requests: Counter = field(default_factory=Counter)
    cut: set[str] = field(default_factory=set)  # served with their full length announced, then half of them
    altered: set[str] = field(default_factory=set)  # served with one byte changed

    def env(self) -> dict[str, str]:
        return {"K8S_RELEASE_URL": f"{self.url}/k8s", "ETCD_RELEASE_URL": f"{self.url}/etcd",
                "CONTAINERD_RELEASE_URL": f"{self.url}/containerd/releases", "CRIO_RELEASE_URL": f"{self.url}/crio"}

    def downloads(self) -> int:
        """Requests for anything but release markers and listings."""
        return sum(n for path, n in self.requests.items() if not path.endswith((".txt", "/releases")))


def _file_for(root: Path, path: str) -> Path | None:
    path = path.split("?", 1)[0]
    if path.startswith("/containerd/releases"):  # the release list answers at the base URL itself
        path = path.replace("/containerd/releases", "/containerd", 1)
        if path == "/containerd":
            path = "/containerd/index.json"
    found = (root / path.lstrip("/")).resolve()
    return found if found.is_file() else None


@contextmanager
def serve(layout: Layout, port: int = 0, log: bool = False) -> Iterator[Server]:
    """The layout on 127.0.0.1 (a free port unless given), until the block ends; `log` prints each request."""
    state = Server("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            state.requests[path] += 1
            if log:
                print(f"GET {path}", flush=True)
            found = _file_for(layout.root, self.path)
            if found is None:
                self.send_error(404)
                return
            data = found.read_bytes()
            size = len(data)
            if any(path.endswith(s) for s in state.altered):
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            if any(path.endswith(s) for s in state.cut):
                data = data[: size // 2]
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.releases", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="folder to lay the releases out in")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--k8s", help="Kubernetes version the K8S_BIN_DIR binaries are (1.36.2)")
    parser.add_argument("--k8s-bin-dir", type=Path)
    parser.add_argument("--etcd", help="etcd version of --etcd-bin (3.5.16)")
    parser.add_argument("--etcd-bin", type=Path)
    parser.add_argument("--crio", help="CRI-O version of --crio-bin-dir (1.37.0)")
    parser.add_argument("--crio-bin-dir", type=Path)
    parser.add_argument("--containerd", help="containerd version of --containerd-bin-dir (2.1.9)")
    parser.add_argument("--containerd-bin-dir", type=Path)
    args = parser.parse_args(argv)
    layout = Layout(args.root)
    if args.k8s:
        layout.kubernetes(args.k8s, args.k8s_bin_dir)
    if args.etcd:
        ctl = args.etcd_bin.resolve().with_name("etcdctl")
        layout.etcd(args.etcd, args.etcd_bin, ctl if ctl.is_file() else None)
    if args.crio:
        layout.crio(args.crio, args.crio_bin_dir)
    if args.containerd:
        layout.containerd(args.containerd, args.containerd_bin_dir)
    with serve(layout, args.port, log=True) as server:
        print(" ".join(f"{k}={v}" for k, v in server.env().items()), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

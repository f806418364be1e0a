"""A real registry for the tests: Debian's docker-registry (distribution), fetched into the suite's cache
(never installed: its package would start a service), serving on a free loopback port from a temporary
folder, optionally behind htpasswd auth; stopped and removed on exit."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from conformance.runtimes import debian

PACKAGE = "docker-registry"


def registry_binary(cache: Path) -> Path:
    """docker-registry from the machine's Debian suite (bookworm: 2.8.x), unpacked into the cache."""
    binary = debian.fetch_first(cache, PACKAGE, "usr/bin/docker-registry")
    if binary is None:
        raise RuntimeError(f"Debian's archive has no {PACKAGE}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def loopback_registry(cache: Path, folder: Path, users: dict[str, str] | None = None) -> Iterator[str]:
    """`host:port` of a plain-HTTP registry on 127.0.0.1; `users` (name: password) turns htpasswd auth on."""
    binary = registry_binary(cache)
    port = free_port()
    config: dict = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
                    "http": {"addr": f"127.0.0.1:{port}", "secret": "sgp-test"}}
    if users:
        import bcrypt

        lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt()).decode()}" for u, p in users.items()]
        (folder / "htpasswd").write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "sgp-test", "path": str(folder / "htpasswd")}}
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    log = (folder / "registry.log").open("w")
    proc = subprocess.Popen([str(binary), "serve", str(folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for credentials
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {(folder / 'registry.log').read_text()}")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

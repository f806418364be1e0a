"""What TARGET=kind stands on, with Debian's packages only (so in CI too): the private Docker engine in its
own network and mount namespace (start, a privileged container that cannot touch the host's tunables or
consoles, a published port reached from inside the namespace only, removal), and the Debian base of a
built node image booting the project's entrypoint and systemd to a running system. The autouse host
snapshot checks links, routes, firewall rules, /etc, /run, /lib/modules and sysctls around each test."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conformance.core.catalogue import Catalogue
from conformance.core.options import default_cache
from conformance.runtimes import debian
from conformance.runtimes.process import processes_mentioning
from conformance.targets.kind import engine, nodebase, nodeimage
from conformance.testimages.archive import catalogue_archives
from tests.conftest import PROJECT
from tests.support.leftovers import leftovers

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def archive_reachable() -> None:
    if not debian.available():
        if os.environ.get("CI") == "true":
            pytest.fail("the kind engine tests need Debian's archive in CI")
        pytest.skip("needs Debian's archive (docker.io, debootstrap)")


@pytest.fixture
def private(archive_reachable: None, state_root: Path) -> engine.Engine:
    """A private engine (its sockets need a short path: state_root)."""
    started = engine.start_private(default_cache(), state_root / "docker")
    yield started
    started.stop()
    assert leftovers(state_root, os.getpid()) == []
    assert not [p for p in Path("/sys/fs/cgroup").glob(f"*/{started.cgroup_parent}")]


def docker(eng: engine.Engine, *argv: str, timeout: float = 120, stdin: bytes | None = None) -> str:
    proc = subprocess.run(eng.client(["docker", *argv]), input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, **eng.env()}, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return proc.stdout.decode()


def test_private_engine_runs_privileged_containers_without_touching_the_host(private: engine.Engine) -> None:
    assert private.private and private.version.startswith("20.10"), private.to_json()
    archive = catalogue_archives(Catalogue.load(PROJECT / "scenarios", PROJECT / "images"), default_cache())[0]
    docker(private, "load", "--input", str(archive.path))
    script = ("ls /dev; for f in fs/file-max vm/overcommit_memory kernel/panic_on_oops; do "
              "echo 1 > /proc/sys/$f && echo WROTE $f; done 2>&1; true")
    out = docker(private, "run", "--rm", "--privileged", archive.ref, "sh", "-c", script)
    assert "WROTE" not in out and "Read-only file system" in out, out
    assert "tty1" not in out.split() and "vcs" not in out, out
    docker(private, "network", "create", "sgp-kind-test")
    docker(private, "run", "--detach", "--name", "web", "--network", "sgp-kind-test", "--publish", "127.0.0.1::80",
           archive.ref, "sh", "-c", "while :; do echo served | nc -l -p 80 2>/dev/null || sleep 1; done")
    port = docker(private, "port", "web", "80").strip().rsplit(":", 1)[1]
    host_links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    inside = subprocess.run(private.namespace.enter_network(["ip", "-br", "link"]),  # type: ignore[union-attr]
                            capture_output=True, text=True, check=True).stdout
    assert "br-" in inside and "br-" not in host_links
    assert port.isdigit()
    assert processes_mentioning(str(private.state))


def test_node_base_boots_the_entrypoint_and_systemd(private: engine.Engine, tmp_path: Path) -> None:
    base = nodebase.tarball(default_cache(), tmp_path / "debootstrap.log")
    docker(private, "import", str(base), "sgp-test/base:1", timeout=600)
    folder = tmp_path / "build"
    (folder / "rootfs" / "usr/local/bin").mkdir(parents=True)
    entry = folder / "rootfs" / "usr/local/bin/entrypoint"
    entry.write_bytes((nodeimage.NODE_FILES / "entrypoint").read_bytes())
    entry.chmod(0o755)
    (folder / "Dockerfile").write_text('FROM sgp-test/base:1\nCOPY rootfs/ /\nENV container=docker\nSTOPSIGNAL '
                                       'SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n')
    subprocess.run(private.client(["docker", "build", "--quiet", "--tag", "sgp-test/node:1", str(folder)]),
                   env={**os.environ, **private.env(), "DOCKER_BUILDKIT": "0"}, check=True, capture_output=True,
                   timeout=600)
    # the way kind starts a node
    docker(private, "run", "--detach", "--name", "node", "--privileged", "--cgroupns=private", "--tmpfs", "/run",
           "--tmpfs", "/tmp", "--volume", "/var", "--volume", "/lib/modules:/lib/modules:ro", "--tty",
           "--hostname", "node", "sgp-test/node:1")
    state = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        proc = subprocess.run(private.client(["docker", "exec", "node", "systemctl", "is-system-running"]),
                              env={**os.environ, **private.env()}, capture_output=True, text=True, check=False)
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    logs = docker(private, "logs", "node")
    failed = docker(private, "exec", "node", "systemctl", "--failed", "--no-legend")
    assert state == "running", f"{state}\n{failed}\n{logs[-3000:]}"
    assert "sgp-node: detected cgroup v1" in logs or Path("/sys/fs/cgroup/cgroup.controllers").exists()
    inside = docker(private, "exec", "node", "cat", "/proc/sys/vm/overcommit_memory", "/etc/cni/net.d/10-sgp.conflist")
    assert inside.startswith("1\n") and '"ptp"' in inside

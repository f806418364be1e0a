"""The Docker engine kind talks to: one that answers already (DOCKER_HOST, or the default socket, as on a CI
runner), used as it is; else a private one the suite starts from Debian's docker.io (fetched into the cache,
never installed) inside a network and mount namespace of its own.

In that namespace only: a private /run, an overlay over /etc (Docker writes /etc/docker whatever its flags),
an overlay over /usr/lib (kind bind-mounts /lib/modules into its nodes and Docker creates a missing bind
source). The engine keeps its exec root, pid file and socket in the run's state folder, and its data (images,
containers) in the cache's image store, kept between runs so a node image is loaded once (one run at a time
holds it: a run that finds it taken keeps its data in its state folder; what a run left there besides images
goes when the next one takes it, and at its own end). It puts every
container under a cgroup parent of its own (cgroupfs driver: the systemd driver, Docker's default on a
cgroup v2 host, would ask the host's systemd over D-Bus), and never touches netfilter (`--iptables=false`: kind's API
server port is published by docker-proxy on the namespace's loopback). Every client that talks to the
cluster enters the namespace's network: the docker and kind command lines through nsenter, this process's
API client by joining it (runtimes.process.join_network). Stopping removes the containers, the daemons, the
namespace, the cgroup folders and the mounts; the host's links, routes, firewall rules, /etc, /run and
sysctls never changed.

On a kernel with AppArmor enabled, the engine sees AppArmor disabled (a file reading "N" bound over the
kernel's `enabled` parameter in its namespace only): Docker would otherwise load its docker-default profile
into the host's kernel before any unprivileged container (a change that outlives the run, and one that fails
outright without `apparmor_parser` on the host). Its containers then run unconfined, as on a host without
AppArmor: the kind nodes are privileged (unconfined whatever the host), and the rest are the suite's own
short-lived helpers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import ProvisionError, SuiteError
from conformance.runtimes import debian
from conformance.runtimes.process import (
    CGROUP_ROOT,
    MountNamespace,
    PrivateDaemon,
    kill_processes_mentioning,
    remove_cgroups,
    restore_subtree,
    unmount_under,
)
from conformance.targets.kind.cli import Docker, Runner

DEFAULT_SOCKET = Path("/var/run/docker.sock")
APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")
# what the private engine runs on the host: (command, what provides it on Debian/Ubuntu)
HOST_TOOLS = (("unshare", "util-linux"), ("nsenter", "util-linux"), ("mount", "mount"), ("umount", "mount"),
              ("ip", "iproute2"))
CAPFILTER = "sgp-capfilter"
# package -> a file it must hold (bookworm first: the host's own glibc)
PACKAGES = {"docker.io": "usr/sbin/dockerd", "containerd": "usr/bin/containerd", "runc": "usr/sbin/runc",
            "tini": "usr/bin/tini-static"}
LINKS = {"dockerd": "docker.io/usr/sbin/dockerd", "docker-proxy": "docker.io/usr/sbin/docker-proxy",
         "docker": "docker.io/usr/bin/docker", "docker-init": "tini/usr/bin/tini-static",
         "containerd": "containerd/usr/bin/containerd", "containerd-shim-runc-v2":
         "containerd/usr/bin/containerd-shim-runc-v2", "ctr": "containerd/usr/bin/ctr", "runc": "runc/usr/sbin/runc"}
# the shell line dockerd runs as its default OCI runtime: the suite's filter, then the real runc
LAUNCHER = ("#!/bin/sh\nPYTHONPATH={project} SGP_CAPFILTER_RUNC={runc} exec {python} -m "
            "conformance.targets.kind.capfilter \"$@\"\n")


@dataclass
class Engine:
    """A Docker engine: where it answers, its version, where it came from; for a private one, what it owns."""

    host: str  # DOCKER_HOST for every client
    version: str = ""
    source: str = ""
    bin_dir: Path | None = None  # the private engine's docker client (first on PATH for kind)
    namespace: MountNamespace | None = None
    state: Path | None = None
    daemon: PrivateDaemon | None = None
    cgroup_parent: str = ""
    client_env: dict[str, str] = field(default_factory=dict)
    store: Path | None = None  # the cache's image store this engine holds (its data root), if it got it
    store_lock: int | None = None  # the lock's file descriptor, held while the engine runs

    @property
    def private(self) -> bool:
        return self.namespace is not None

    def env(self) -> dict[str, str]:
        """What docker and kind need in their environment (added to the suite's own)."""
        env = {"DOCKER_HOST": self.host, "KIND_EXPERIMENTAL_PROVIDER": "docker", **self.client_env}
        if self.bin_dir is not None:
            env["PATH"] = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return env

    def client(self, argv: Sequence[str]) -> list[str]:
        """`argv` (docker, kind) as it must run: inside the private engine's network, or as it is."""
        return self.namespace.enter_network(argv) if self.namespace is not None else list(argv)

    def to_json(self) -> dict:
        return {"docker": self.version, "from": self.source, "host": self.host, "private": self.private}

    def network(self) -> str:
        """The network namespace clients must be in ('' for an existing engine: the host's)."""
        return f"/proc/{self.namespace.pid}/ns/net" if self.namespace is not None else ""

    def stop(self) -> None:
        """Remove what a private engine owns (its containers first); an existing engine is left as it was."""
        if self.namespace is None or self.state is None:
            return
        if self.daemon is not None and self.daemon.alive():
            with contextlib.suppress(SuiteError, OSError):  # the daemon goes below whatever docker says
                self.clear()
            self.daemon.stop(timeout=30)
        kill_processes_mentioning(str(self.state))
        self.namespace.stop()
        remove_cgroups(self.cgroup_parent)
        restore_subtree(self.daemon.root_controllers if self.daemon is not None else None)
        unmount_under(self.state)
        if self.store is not None:
            unmount_under(self.store)
        shutil.rmtree(self.state, ignore_errors=True)
        if self.store_lock is not None:
            os.close(self.store_lock)
            self.store_lock = None

    def clear(self) -> None:
        """Every container with its volumes, then the unused volumes and networks: only images stay."""
        runner = self.runner()
        ids = runner.run(DOCKER.ps_all(), check=False).stdout.split()
        if ids:
            runner.run(DOCKER.remove(ids), check=False)
        for what in ("volume", "network"):
            runner.run(DOCKER.prune(what), check=False)

    def runner(self) -> Runner:
        """docker and kind command lines as they must run against this engine."""
        return Runner(self.client, self.env())


DOCKER = Docker()


def server_version(host: str, docker: str = "docker") -> str | None:
    """The engine's version when it answers at `host`, else None."""
    if not shutil.which(docker):
        return None
    try:
        proc = Runner(env={"DOCKER_HOST": host}).run(Docker(docker).server_version(), check=False)
    except SuiteError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def existing() -> Engine | None:
    """DOCKER_HOST when set (it must answer), else the default socket when an engine answers there."""
    host = os.environ.get("DOCKER_HOST", "")
    if host:
        version = server_version(host)
        if version is None:
            raise ProvisionError(f"DOCKER_HOST={host}: no Docker engine answers there (unset it and the suite "
                                 "starts a private engine)")
        return Engine(host, version, f"existing (DOCKER_HOST={host})")
    if DEFAULT_SOCKET.is_socket():
        host = f"unix://{DEFAULT_SOCKET}"
        version = server_version(host)
        if version is not None:
            return Engine(host, version, f"existing ({DEFAULT_SOCKET})")
    return None


def host_gaps(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """One line naming what this host lacks to run the private engine, or None."""
    missing = [(tool, package) for tool, package in HOST_TOOLS if not which(tool)]
    if not missing:
        return None
    return (f"the suite's private Docker engine needs {', '.join(t for t, _ in missing)} on this host: install "
            f"{', '.join(dict.fromkeys(p for _, p in missing))} (or start a Docker engine and set DOCKER_HOST)")


def apparmor_enabled(path: Path = APPARMOR_ENABLED) -> bool:
    """The kernel enforces AppArmor (its module parameter reads Y)."""
    try:
        return path.read_text().startswith("Y")
    except OSError:
        return False


def hide_apparmor(namespace: MountNamespace, state: Path, kernel: Path = APPARMOR_ENABLED) -> None:
    """In the engine's namespace only, AppArmor reads as disabled (see the module's docstring)."""
    if not apparmor_enabled(kernel):
        return
    off = state / "apparmor-enabled"
    off.write_text("N\n")
    namespace.bind(off, str(kernel))


def cgroup_parent_flag(name: str, root: Path = CGROUP_ROOT) -> str:
    """dockerd's --cgroup-parent: on cgroup v2 an absolute one (runc puts a relative parent beside its own
    cgroup, inside the unit or session the suite runs in, where systemd owns the tree and the clean-up does not
    look); on v1 the relative name, as it ran there (below dockerd's own cgroup in each hierarchy)."""
    return f"/{name}" if (root / "cgroup.controllers").exists() else name


def fetch(cache: Path) -> tuple[Path, dict[str, str]]:
    """Debian's docker.io, containerd, runc and tini unpacked in the cache: (bin folder of links, versions)."""
    if not debian.available():
        raise ProvisionError("no Docker engine answers and no Debian archive is configured to fetch docker.io "
                             "from: start one (or set DOCKER_HOST)")
    roots: dict[str, Path] = {}
    versions: dict[str, str] = {}
    for package, holds in PACKAGES.items():
        path = debian.fetch_first(cache, package, holds)
        if path is None:
            raise ProvisionError(f"Debian's archive has no {package} with {holds}")
        root = Path(str(path)[: -len(holds)])
        roots[package] = root
        versions[package] = root.name.removeprefix(f"{package}-")
    bin_dir = cache / "docker-engine" / "-".join(versions[p] for p in PACKAGES).replace(":", "_").replace("~", "_")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, rel in LINKS.items():
        package, inner = rel.split("/", 1)
        link = bin_dir / name
        if not link.is_symlink():
            with contextlib.suppress(FileExistsError):  # another run made it meanwhile
                link.symlink_to(roots[package] / inner)
    return bin_dir, versions


def take_store(bin_dir: Path) -> tuple[Path, int] | None:
    """The cache's image store for this engine build and its lock's descriptor, or None when another run holds
    it (a store is one data root: one engine at a time)."""
    store = bin_dir.with_name(f"{bin_dir.name}.store")
    fd = os.open(bin_dir.with_name(f"{bin_dir.name}.store.lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    store.mkdir(exist_ok=True)
    return store, fd


def start_private(cache: Path, state: Path) -> Engine:
    """A private engine in a network and mount namespace of its own (see the module's docstring)."""
    gaps = host_gaps()
    if gaps:
        raise ProvisionError(gaps)
    bin_dir, versions = fetch(cache)
    for sub in ("data", "exec", "etc-upper", "etc-work", "lib-upper", "lib-work", "client", "bin"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    taken = take_store(bin_dir)
    namespace = MountNamespace(state, "sgp-docker", net=True)
    namespace.start()
    engine = Engine(host=f"unix://{state / 'docker.sock'}", bin_dir=bin_dir, namespace=namespace, state=state,
                    cgroup_parent=f"sgpconf-docker-{os.getpid()}-{secrets.token_hex(3)}",
                    client_env={"DOCKER_CONFIG": str(state / "client")},
                    source=f"private: Debian docker.io {versions['docker.io']}, containerd {versions['containerd']}, "
                           f"runc {versions['runc']}; images kept in "
                           + (str(taken[0]) if taken else "the run's state (the cache's store is another run's)"),
                    store=taken[0] if taken else None, store_lock=taken[1] if taken else None)
    try:
        namespace.run(["mount", "-t", "overlay", "overlay", "-o",
                       f"lowerdir=/etc,upperdir={state / 'etc-upper'},workdir={state / 'etc-work'}", "/etc"])
        namespace.run(["mount", "-t", "overlay", "overlay", "-o",
                       f"lowerdir=/usr/lib,upperdir={state / 'lib-upper'},workdir={state / 'lib-work'}", "/usr/lib"])
        hide_apparmor(namespace, state)
        launcher = state / "bin" / CAPFILTER
        project = str(Path(__file__).resolve().parents[3])
        launcher.write_text(LAUNCHER.format(project=shlex.quote(project), runc=shlex.quote(str(bin_dir / "runc")),
                                            python=shlex.quote(sys.executable)))
        launcher.chmod(0o755)
        (state / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(state / "key.json")}))
        argv = [str(bin_dir / "dockerd"), "--config-file", str(state / "daemon.json"), "--data-root",
                str(engine.store or state / "data"), "--exec-root", str(state / "exec"), "--pidfile",
                str(state / "docker.pid"),
                "--host", engine.host, "--cgroup-parent", cgroup_parent_flag(engine.cgroup_parent),
                "--exec-opt", "native.cgroupdriver=cgroupfs", "--oom-score-adjust", "0",
                "--iptables=false", "--ip-masq=false", "--userland-proxy-path",
                str(bin_dir / "docker-proxy"), "--init-path", str(bin_dir / "docker-init"),
                "--add-runtime", f"{CAPFILTER}={launcher}", "--default-runtime", CAPFILTER]
        env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": str(state), "TMPDIR": str(state)}
        engine.daemon = PrivateDaemon("dockerd", state, argv, env, cgroup_parent=engine.cgroup_parent,
                                      namespace=namespace)
        docker = str(bin_dir / "docker")
        engine.daemon.start(lambda: server_version(engine.host, docker) is not None, timeout=60)
        engine.version = server_version(engine.host, docker) or ""
        if engine.store is not None:
            engine.clear()  # what a run that died left in the store
        return engine
    except BaseException:
        engine.stop()
        raise


def provide(cache: Path, state: Path) -> Engine:
    """The existing engine when one answers, else a private one."""
    found = existing()
    if found is not None:
        return found
    started = time.monotonic()
    engine = start_private(cache, state)
    engine.source += f" (started in {time.monotonic() - started:.1f}s)"
    return engine

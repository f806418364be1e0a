"""The kind and docker command lines: argv builders (no shell, ever) and typed errors from stderr."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import CommandError, ProvisionError
from conformance.runtimes import debian


@dataclass(frozen=True)
class Command:
    """One external command: argv, the phase it belongs to, optional stdin file and extra env."""

    argv: tuple[str, ...]
    phase: str
    stdin: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    timeout: float = 900.0

    def render(self) -> str:
        """A copy-pasteable line (for plans and messages only; never executed through a shell)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        line = (env + " " if env else "") + shlex.join(self.argv)
        return line + (f" < {shlex.quote(str(self.stdin))}" if self.stdin else "")


class ToolError(CommandError):
    """kind or docker failed. Carries argv, exit code, stdout and stderr."""


class KindError(ToolError):
    """`kind` failed."""


class ClusterExists(KindError):
    """A cluster with that name already exists."""


class CreateFailed(KindError):
    """`kind create cluster` failed (kubeadm init/join, node start, wait timeout)."""


class DockerError(ToolError):
    """`docker` failed."""


class NoSuchContainer(DockerError):
    """docker exec/inspect named a container that does not exist."""


class NoSuchImage(DockerError):
    """docker image inspect/run named an image that is not present."""


# stderr fragment -> error class (kind: pkg/cluster/internal/create/create.go; docker CLI messages)
_PATTERNS: tuple[tuple[str, str, type[ToolError]], ...] = (
    ("kind", "node(s) already exist for a cluster with the name", ClusterExists),
    ("kind", "failed to create cluster", CreateFailed),
    ("docker", "No such container", NoSuchContainer),
    ("docker", "No such image", NoSuchImage),
    ("docker", "Unable to find image", NoSuchImage),
)


def error_for(argv: Sequence[str], rc: int, stdout: str, stderr: str) -> ToolError:
    """The most specific error class for a failed kind/docker command."""
    tool = Path(argv[0]).name if argv else ""
    for name, fragment, cls in _PATTERNS:
        if tool == name and fragment in stderr:
            return cls(argv, rc, stdout, stderr)
    base = KindError if tool == "kind" else DockerError if tool == "docker" else ToolError
    return base(argv, rc, stdout, stderr)


class Runner:
    """Runs Commands with argument lists (inside the engine's network when it is a private one, with the
    engine's DOCKER_HOST); a failure raises the matching ToolError."""

    def __init__(self, wrap: Callable[[Sequence[str]], list[str]] | None = None,
                 env: Mapping[str, str] | None = None):
        self.wrap = wrap or list
        self.env = dict(env or {})

    def run(self, cmd: Command, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env, **cmd.env}
        argv = self.wrap(cmd.argv)
        try:
            if cmd.stdin is not None:
                with cmd.stdin.open("rb") as stdin:
                    raw = subprocess.run(argv, stdin=stdin, capture_output=True, env=env,
                                         timeout=cmd.timeout, check=False)
                proc = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
                                                   raw.stderr.decode(errors="replace"))
            else:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      env=env, timeout=cmd.timeout, check=False)
        except FileNotFoundError as exc:
            raise ProvisionError(f"{cmd.argv[0]}: not found on PATH (needed for phase {cmd.phase})") from exc
        except subprocess.TimeoutExpired as exc:
            raise error_for(cmd.argv, -1, "", f"timed out after {cmd.timeout:.0f}s") from exc
        if check and proc.returncode != 0:
            raise error_for(cmd.argv, proc.returncode, proc.stdout, proc.stderr)
        return proc


@dataclass(frozen=True)
class Kind:
    """argv builders for the kind CLI (flag names from kind pkg/cmd/kind/**)."""

    binary: str = "kind"

    def version(self) -> Command:
        return Command((self.binary, "version"), "Preflight")

    def get_clusters(self) -> Command:
        return Command((self.binary, "get", "clusters"), "Up")

    def get_nodes(self, name: str) -> Command:
        return Command((self.binary, "get", "nodes", "--name", name), "Up")

    def create(self, name: str, config: Path, kubeconfig: Path, wait: str = "3m", verbosity: int = 1) -> Command:
        return Command((self.binary, "create", "cluster", "--name", name, "--config", str(config), "--kubeconfig",
                        str(kubeconfig), "--retain", "--wait", wait, "-v", str(verbosity)), "Up", timeout=1200)

    def delete(self, name: str, kubeconfig: Path | None = None) -> Command:
        argv = [self.binary, "delete", "cluster", "--name", name]
        if kubeconfig is not None:
            argv += ["--kubeconfig", str(kubeconfig)]
        return Command(tuple(argv), "Down", timeout=300)

    def export_kubeconfig(self, name: str, kubeconfig: Path) -> Command:
        return Command((self.binary, "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)), "Up")

    def export_logs(self, name: str, directory: Path) -> Command:
        return Command((self.binary, "export", "logs", str(directory), "--name", name), "DumpLogs", timeout=600)

    def load_image_archive(self, name: str, archive: Path, nodes: Sequence[str] = ()) -> Command:
        argv = [self.binary, "load", "image-archive", str(archive), "--name", name]
        if nodes:
            argv += ["--nodes", ",".join(nodes)]
        return Command(tuple(argv), "LoadImages", timeout=600)


@dataclass(frozen=True)
class Docker:
    """argv builders for the docker CLI."""

    binary: str = "docker"

    def image_id(self, ref: str) -> Command:
        return Command((self.binary, "image", "inspect", "--format", "{{.Id}}", ref), "BuildImage")

    def pull(self, ref: str) -> Command:
        return Command((self.binary, "pull", ref), "BuildImage", timeout=1800)

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: Mapping[str, str],
              labels: Mapping[str, str]) -> Command:
        argv = [self.binary, "build", "--quiet", "--file", str(dockerfile), "--tag", tag]
        for key, value in sorted(build_args.items()):
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in sorted(labels.items()):
            argv += ["--label", f"{key}={value}"]
        return Command((*argv, str(context)), "BuildImage", env={"DOCKER_BUILDKIT": "0"}, timeout=3600)

    def server_version(self) -> Command:
        return Command((self.binary, "version", "--format", "{{.Server.Version}}"), "Engine", timeout=20)

    def networks(self) -> Command:
        return Command((self.binary, "network", "ls", "--format", "{{.Name}}"), "Up", timeout=30)

    def remove_network(self, name: str) -> Command:
        return Command((self.binary, "network", "rm", name), "Down", timeout=60)

    def prune(self, what: str) -> Command:
        """Remove every unused `what` (volume, network) of the engine."""
        return Command((self.binary, what, "prune", "--force"), "Down", timeout=120)

    def ps_all(self) -> Command:
        return Command((self.binary, "ps", "--all", "--quiet"), "Down", timeout=30)

    def remove(self, containers: Sequence[str]) -> Command:
        return Command((self.binary, "rm", "--force", "--volumes", *containers), "Down", timeout=120)

    def import_image(self, tarball: Path, ref: str) -> Command:
        return Command((self.binary, "import", str(tarball), ref), "BuildImage", timeout=1800)

    def save(self, ref: str, out: Path) -> Command:
        return Command((self.binary, "save", "--output", str(out), ref), "BuildImage", timeout=1800)

    def load(self, archive: Path) -> Command:
        return Command((self.binary, "load", "--input", str(archive)), "BuildImage", timeout=1800)

    def pid(self, container: str) -> Command:
        return Command((self.binary, "inspect", "--format", "{{.State.Pid}}", container), "Ready")

    def run_version(self, image: str, entrypoint: str, *args: str) -> Command:
        return Command((self.binary, "run", "--rm", "--entrypoint", entrypoint, image, *args), "BuildImage")

    def exec(self, container: str, argv: Sequence[str], stdin: Path | None = None, phase: str = "Test") -> Command:
        flags = ("-i",) if stdin is not None else ()
        return Command((self.binary, "exec", *flags, container, *argv), phase, stdin=stdin, timeout=600)


def find_kind(kind_bin: Path | None, cache: Path) -> tuple[str, str]:
    """(kind binary, where it came from): KIND_BIN, else `kind` on PATH, else the newest `kind` in Debian's
    suites, fetched privately into the cache (it needs only libc)."""
    if kind_bin is not None:
        if not kind_bin.is_file():
            raise ProvisionError(f"KIND_BIN={kind_bin}: no such file")
        return str(kind_bin), f"KIND_BIN={kind_bin}"
    found = shutil.which("kind")
    if found:
        return found, "PATH"
    if not debian.available():
        raise ProvisionError("no kind binary: set KIND_BIN or put kind on PATH (no Debian archive here to fetch it)")
    found = debian.fetch_newest(cache, "kind")
    if found is None:
        raise ProvisionError("Debian's archive has no kind package: set KIND_BIN or put kind on PATH")
    best, root = found
    return str(root / "usr" / "bin" / "kind"), f"Debian {best.suite} kind {best.version}"

"""Node image recipes: the stock kindest/node image, or a derived image built from images/kind/<runtime>/,
tagged by a content hash of its recipe so a built image is reused only while nothing changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command, Docker

RECIPES = Path(__file__).resolve().parents[3] / "images" / "kind"
REPO = "localhost/sgp-node"
KEY_LABEL = "sgp.conformance/recipe"


@dataclass(frozen=True)
class NodeImage:
    """How a cell's node image comes to exist."""

    ref: str  # what the kind config names
    stock: bool
    base: str
    context: Path | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    cache_key: str = ""
    version_check: tuple[str, ...] = ()  # entrypoint + args printing the runtime version

    @property
    def dockerfile(self) -> Path | None:
        return self.context / "Dockerfile" if self.context else None

    def dockerfile_text(self) -> str:
        return self.dockerfile.read_text() if self.dockerfile else ""

    def build_args_text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in sorted(self.build_args.items()))


def content_key(context: Path, build_args: dict[str, str]) -> str:
    """sha256 over every file of the recipe folder (path + bytes) and the build arguments."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(path.relative_to(context).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for key, value in sorted(build_args.items()):
        digest.update(f"{key}={value}\n".encode())
    return digest.hexdigest()


def recipe(cell: Cell, arch: str = "amd64", recipes: Path = RECIPES) -> NodeImage:
    """The node image for a cell (stock only for containerd cells whose image carries the version)."""
    check = ("containerd", "--version") if cell.runtime == "containerd" else ("crio", "version")
    if cell.node_image == "stock":
        return NodeImage(ref=cell.base_node_image, stock=True, base=cell.base_node_image, version_check=check)
    context = recipes / cell.runtime
    args = {"BASE_IMAGE": cell.base_node_image, "TARGETARCH": arch}
    args["CONTAINERD_VERSION" if cell.runtime == "containerd" else "CRIO_VERSION"] = cell.runtime_version
    key = content_key(context, args)
    tag = f"{REPO}:k8s-v{cell.k8s}-{cell.runtime}-v{cell.runtime_version}-kind-{cell.kind}-{key[:12]}"
    return NodeImage(ref=tag, stock=False, base=cell.base_node_image, context=context, build_args=args,
                     cache_key=key, version_check=check)


def lookup_command(image: NodeImage, docker: Docker) -> Command:
    """`docker image inspect`: succeeds when the image (same content key) is already built."""
    return docker.image_id(image.ref)


def build_commands(image: NodeImage, docker: Docker) -> list[Command]:
    """Pull the pinned base, build (derived only), then print the runtime version inside the image."""
    cmds = [docker.pull(image.base)]
    if not image.stock:
        assert image.context is not None and image.dockerfile is not None
        cmds.append(docker.build(image.context, image.dockerfile, image.ref, image.build_args,
                                 {KEY_LABEL: image.cache_key}))
    cmds.append(docker.run_version(image.ref, image.version_check[0], *image.version_check[1:]))
    return cmds

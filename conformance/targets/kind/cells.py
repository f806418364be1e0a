"""versions.yaml: the cells of the kind matrix. Imports only the standard library and PyYAML, so the
CI matrix job can run `python -m conformance.targets.kind.cells matrix` without installing the suite."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.core.versions import matches, version_key
from conformance.errors import InputError
from conformance.paths import VERSIONS
from conformance.targets.kind.noderuntime import NAMES, NODE_RUNTIMES, canonical

VERSIONS_FILE = VERSIONS
CELL_KEYS = {"id", "runtime", "runtime_version", "k8s", "kind", "base_node_image", "digest_source", "node_image",
             "expect", "default", "notes"}
REQUIRED = ("id", "runtime", "runtime_version", "k8s", "kind", "node_image", "expect")
DIGEST = re.compile(r"^[a-z0-9./-]+:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$")
ID_CHARS = re.compile(r"^[a-z0-9.-]+$")  # kind cluster names: ^[a-z0-9.-]+$


@dataclass(frozen=True)
class Cell:
    """One runtime x version x Kubernetes combination, pinned."""

    id: str
    runtime: str
    runtime_version: str
    k8s: str
    kind: str
    base_node_image: str
    node_image: str  # stock (kindest/node by digest) | built (offline, nodeimage.py)
    supported: bool
    default: bool = False
    digest_source: str = ""
    notes: str = ""

    @property
    def k8s_minor(self) -> int:
        return version_key(self.k8s)[1]

    @property
    def expected_runtime_version(self) -> str:
        return NODE_RUNTIMES[self.runtime].reported_version(self.runtime_version)

    @property
    def cluster_name(self) -> str:
        return f"sgp-{self.id}"

    def to_json(self) -> dict:
        return {"id": self.id, "runtime": self.runtime, "runtime_version": self.runtime_version, "k8s": self.k8s,
                "kind": self.kind, "base_node_image": self.base_node_image, "node_image": self.node_image,
                "supported": self.supported, "digest_source": self.digest_source, "notes": self.notes}


def _cell(path: Path, raw: object, index: int) -> Cell:
    where = f"cells[{index}]"
    if not isinstance(raw, dict):
        raise InputError(path, where, "must be a mapping")
    unknown = set(raw) - CELL_KEYS
    if unknown:
        raise InputError(path, where, f"unknown keys {sorted(unknown)}")
    for key in REQUIRED:
        if key not in raw:
            raise InputError(path, f"{where}.{key}", "is required")
    cid = str(raw["id"])
    if not ID_CHARS.match(cid):
        raise InputError(path, f"{where}.id", f"{cid!r}: use [a-z0-9.-] (it names the kind cluster)")
    runtime = raw["runtime"]
    if runtime not in NAMES:
        raise InputError(path, f"{where}.runtime", f"{runtime!r}: must be one of {NAMES}")
    image = str(raw.get("base_node_image", ""))
    if raw["node_image"] not in ("stock", "built"):
        raise InputError(path, f"{where}.node_image", "must be stock or built")
    if raw["node_image"] == "stock" and not DIGEST.match(image):
        raise InputError(path, f"{where}.base_node_image", f"{image!r}: pin it as repo:vX.Y.Z@sha256:<64 hex>")
    if raw["node_image"] == "stock" and not NODE_RUNTIMES[runtime].in_stock_images:
        raise InputError(path, f"{where}.node_image",
                         f"kindest/node carries containerd: {NODE_RUNTIMES[runtime].title} cells are built")
    expect = raw["expect"]
    if not isinstance(expect, dict) or not isinstance(expect.get("supported"), bool):
        raise InputError(path, f"{where}.expect.supported", "must be true or false")
    supported = version_key(str(raw["runtime_version"]))[:2] >= NODE_RUNTIMES[runtime].first_supported
    if expect["supported"] != supported:
        raise InputError(path, f"{where}.expect.supported", f"{runtime} {raw['runtime_version']} "
                         f"{'supports' if supported else 'does not support'} the policy (behaviours.md)")
    if image and version_key(image.split(":")[1].split("@")[0]) != version_key(str(raw["k8s"])):
        raise InputError(path, f"{where}.k8s", f"{raw['k8s']} differs from the node image tag {image}")
    return Cell(id=cid, runtime=runtime, runtime_version=str(raw["runtime_version"]), k8s=str(raw["k8s"]),
                kind=str(raw["kind"]), base_node_image=image, node_image=raw["node_image"], supported=supported,
                default=bool(raw.get("default", False)), digest_source=str(raw.get("digest_source", "unknown")),
                notes=str(raw.get("notes", "")).strip())


def load(path: Path = VERSIONS_FILE) -> list[Cell]:
    """Every cell, validated; ids are unique."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, "", f"cannot read: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise InputError(path, "cells", "a list of cells is required")
    cells = [_cell(path, raw, i) for i, raw in enumerate(doc["cells"])]
    seen: set[str] = set()
    for cell in cells:
        if cell.id in seen:
            raise InputError(path, "id", f"duplicate cell id {cell.id!r}")
        seen.add(cell.id)
    return cells


def built(runtime: str, runtime_version: str, k8s: str) -> Cell:
    """The cell of a node image built here from the given binaries (not a row of versions.yaml)."""
    cid = re.sub(r"[^a-z0-9.-]", "-", f"{runtime}-{runtime_version}-k8s-{k8s.removeprefix('v')}".lower())
    supported = version_key(runtime_version)[:2] >= NODE_RUNTIMES[runtime].first_supported
    return Cell(id=cid, runtime=runtime, runtime_version=runtime_version, k8s=k8s.removeprefix("v"), kind="",
                base_node_image="", node_image="built", supported=supported, digest_source="built here")


def find(cells: list[Cell], runtime: str, version: str | None, k8s: str | None = None) -> Cell | None:
    """The cell for RUNTIME/VERSION[/K8S], None when none matches: among several, the one marked default
    (the newest runtime of those when VERSION is not given)."""
    runtime = canonical(runtime)
    found = [c for c in cells if c.runtime == runtime and (not version or matches(c.runtime_version, version))
             and (not k8s or matches(c.k8s, k8s))]
    defaults = [c for c in found if c.default] or found
    if not defaults:
        return None
    return max(defaults, key=lambda c: (version_key(c.runtime_version), version_key(c.k8s))) if not version \
        else defaults[0]


def select(cells: list[Cell], runtime: str, version: str | None, k8s: str | None = None) -> Cell:
    """The cell for RUNTIME/VERSION[/K8S] (find); InputError listing the known cells when none matches."""
    cell = find(cells, runtime, version, k8s)
    if cell is None:
        have = ", ".join(f"{c.runtime} {c.runtime_version} (k8s {c.k8s})" for c in cells)
        raise InputError("versions.yaml", "cells", f"no cell for RUNTIME={canonical(runtime)} "
                         f"VERSION={version or '*'} K8S={k8s or '*'}; known: {have}")
    return cell


def github_matrix(cells: list[Cell]) -> dict:
    """strategy.matrix for the workflow: one include entry per cell, stock (kindest/node as published) and
    built (a node image made on the runner from Kubernetes', etcd's and the runtime's release downloads)."""
    return {"include": [{"cell": c.id, "runtime": c.runtime, "version": c.runtime_version, "k8s": c.k8s,
                         "kind": c.kind, "node_image": c.node_image, "supported": c.supported} for c in cells]}


def main(argv: list[str]) -> int:
    """`matrix`: print `matrix=<json>` (for $GITHUB_OUTPUT); `list`: one cell id per line."""
    cells = load(Path(argv[1]) if len(argv) > 1 else VERSIONS_FILE)
    if argv and argv[0] == "matrix":
        print("matrix=" + json.dumps(github_matrix(cells), separators=(",", ":")))
    else:
        print("\n".join(c.id for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

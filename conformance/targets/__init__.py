"""Targets by name (the backend registry), the only place that knows them all: node (the CRI of a
runtime), local (a private cluster on the private runtime), cluster (an existing cluster) and kind (a
kind cluster per cell). Each lives in one place here and hands the runner a Session and a Runner
(conformance/targets/protocol.py); the pytest plugin runs every one of them the same way. Kept light: the CI
matrix job imports targets.kind.cells with only PyYAML installed."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from conformance.errors import InputError

if TYPE_CHECKING:
    from conformance.core.catalogue import Catalogue
    from conformance.core.options import Options
    from conformance.targets.protocol import Runner, Session

TARGETS = ("node", "local", "cluster", "kind")
SESSIONS = {"node": "conformance.targets.node.session:NodeSession",
            "local": "conformance.targets.local.session:LocalSession",
            "cluster": "conformance.targets.cluster:ClusterSession",
            "kind": "conformance.targets.kind.session:KindSession"}
WITHOUT_CASES = {"kind": "conformance.targets.kind.plan", "cluster": "conformance.targets.cluster"}


def _load(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def create_session(opts: Options, catalogue: Catalogue) -> Session:
    """The session for TARGET=`opts.target` (nothing started yet)."""
    if opts.target not in SESSIONS:
        raise InputError("TARGET", "TARGET", f"{opts.target!r}: must be one of {', '.join(TARGETS)}")
    if opts.target == "node" and opts.keep:
        raise InputError("KEEP", "KEEP", "applies to TARGET=local, cluster and kind (the node target's sandboxes "
                         "are not kept)")
    return _load(SESSIONS[opts.target])(opts, catalogue)


def runner_from_context(ctx: dict, catalogue: Catalogue, opts: Options) -> Runner:
    """An xdist worker's runner, from the context the controller's session left."""
    if ctx["target"] == "node":
        return _load("conformance.targets.node.runner:NodeRunner").from_context(ctx, catalogue)
    return _load("conformance.kube.runner:KubeRunner").from_context(ctx, catalogue)


def without_cases(target: str, argv: list[str]) -> int | None:
    """What a `run` does when it asks for no cases: DRY_RUN=1 (or --dry-run) prints the plan of TARGET=kind or
    cluster; --cleanup removes from this host what runs that died left (every target), and for
    TARGET=cluster deletes the namespaces earlier KEEP=1 runs left in the cluster. None: run cases."""
    from conformance.core.options import Options, switch

    if "--cleanup" in argv and target != "cluster":
        from conformance.runtimes import reaper

        return reaper.cleanup(Options().state_dir)
    asked = "--dry-run" in argv or "--cleanup" in argv or switch(os.environ.get("DRY_RUN"))
    if target not in WITHOUT_CASES or not asked:
        return None
    module = WITHOUT_CASES["cluster" if "--cleanup" in argv else target]
    return int(importlib.import_module(module).without_cases(argv))

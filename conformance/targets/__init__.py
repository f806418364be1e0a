"""Targets by name (the backend registry): node (CRI), local (a private cluster on the private runtime),
cluster (an existing cluster), kind (a kind cluster per cell). Each is a Session plus a Runner
(targets/base.py); the pytest plugin runs every one of them the same way."""

from __future__ import annotations

from conformance.catalogue import Catalogue
from conformance.errors import InputError
from conformance.options import Options
from conformance.targets.base import Runner, Session

TARGETS = ("node", "local", "cluster", "kind")


def create_session(opts: Options, catalogue: Catalogue) -> Session:
    """The session for TARGET=`opts.target` (nothing started yet)."""
    if opts.target == "node":
        from conformance.session import NodeSession

        if opts.keep:
            raise InputError("KEEP", "KEEP", "applies to TARGET=local, cluster and kind (the node target's sandboxes "
                             "are not kept)")
        return NodeSession(opts, catalogue)
    if opts.target in ("local", "cluster", "kind"):
        from conformance.cluster import sessions

        return {"local": sessions.LocalSession, "cluster": sessions.ClusterSession,
                "kind": sessions.KindSession}[opts.target](opts, catalogue)
    raise InputError("TARGET", "TARGET", f"{opts.target!r}: must be one of {', '.join(TARGETS)}")


def runner_from_context(ctx: dict, catalogue: Catalogue, opts: Options) -> Runner:
    """An xdist worker's runner, from the context the controller's session left."""
    if ctx["target"] == "node":
        from conformance.targets.node import NodeRunner

        return NodeRunner.from_context(ctx, catalogue)
    from conformance.cluster.sessions import KubeRunner

    return KubeRunner.from_context(ctx, catalogue)

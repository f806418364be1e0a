"""Targets by name (the backend registry), the only place that knows them all: node (the CRI of a
runtime), local (a private cluster on the private runtime), cluster (an existing cluster) and kind (a
kind cluster per cell). Each is a folder here with a session.py whose Session hands the runner a Runner
(conformance/targets/protocol.py); the pytest plugin runs every one of them the same way. DRY_RUN and
--cleanup are the session class's `plan` and `cleanup`, reached through the one CLI. Kept light: the CI
matrix job imports targets.kind.cells with only PyYAML installed."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from conformance.errors import InputError, SuiteError

if TYPE_CHECKING:
    from conformance.core.catalogue import Catalogue
    from conformance.core.options import Options
    from conformance.targets.protocol import Runner, Session

TARGETS = ("node", "local", "cluster", "kind")


def session_class(target: str) -> type[Session]:
    """The session class of a target: node (the CRI of a runtime), local (a private cluster on the private
    runtime), cluster (an existing cluster), kind (a kind cluster per cell). Imported when asked for."""
    if target == "node":
        from conformance.targets.node.session import NodeSession
        return NodeSession
    if target == "local":
        from conformance.targets.local.session import LocalSession
        return LocalSession
    if target == "cluster":
        from conformance.targets.cluster.session import ClusterSession
        return ClusterSession
    if target == "kind":
        from conformance.targets.kind.session import KindSession
        return KindSession
    raise InputError("TARGET", "TARGET", f"{target!r}: must be one of {', '.join(TARGETS)}")


def create_session(opts: Options, catalogue: Catalogue) -> Session:
    """The session for TARGET=`opts.target` (nothing started yet)."""
    cls = session_class(opts.target)
    if opts.target == "node" and opts.keep:
        raise InputError("KEEP", "KEEP", "applies to TARGET=local, cluster and kind (the node target's sandboxes "
                         "are not kept)")
    return cls(opts, catalogue)


def runner_from_context(ctx: dict, catalogue: Catalogue, opts: Options) -> Runner:
    """An xdist worker's runner, from the context the controller's session left."""
    if ctx["target"] == "node":
        from conformance.targets.node.runner import NodeRunner
        return NodeRunner.from_context(ctx, catalogue)
    from conformance.kube.runner import KubeRunner
    return KubeRunner.from_context(ctx, catalogue)


def without_cases(opts: Options, cleanup: bool) -> int:
    """A `run` that asked for --cleanup or DRY_RUN=1, through the session's class: --cleanup removes what runs
    that died left (the session class's `cleanup`); else the class's `plan` is printed, building and starting
    nothing; a target without a plan refuses DRY_RUN=1 (exit 2), starting nothing either. The exit code."""
    cls = session_class(opts.target)
    try:
        if cleanup:
            return cls.cleanup(opts)
        from conformance.core.catalogue import Catalogue

        plan = cls.plan(opts, Catalogue.load(opts.scenarios_dir, opts.images_dir))
        if plan is None:
            print(f"error: DRY_RUN=1: TARGET={opts.target} has no plan to print (TARGET=kind and TARGET=cluster "
                  "have one); nothing was started", file=sys.stderr)
            return 2
        print(plan)
        return 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

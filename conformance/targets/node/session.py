"""The node target's session: the runtime under test (started by the suite or reached through
CRI_ENDPOINT, images loaded), the CRI target that runs the cases on it, and the restart server of the
`restart` cases; stop() removes all of it."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from conformance.core.case import Case
from conformance.core.catalogue import Catalogue
from conformance.core.model import RuntimeInfo
from conformance.core.options import Options
from conformance.runtimes.reaper import HostLeftovers
from conformance.targets.node.restart import RestartServer
from conformance.targets.node.runner import NodeRunner
from conformance.targets.node.target import RUN_LABEL, NodeTarget
from conformance.targets.undertest import RuntimeUnderTest
from conformance.testimages.archive import catalogue_archives


class NodeSession(HostLeftovers):
    """Everything one node-target run owns; stop() removes all of it, and only it."""

    def __init__(self, opts: Options, catalogue: Catalogue):
        self.opts = opts
        self.catalogue = catalogue
        self.run_id = secrets.token_hex(4)
        self.runtime = RuntimeUnderTest(opts)
        self.target: NodeTarget | None = None
        self.log_root: Path | None = None
        self.restart_server: RestartServer | None = None
        self.failed = False

    @property
    def info(self) -> RuntimeInfo | None:
        return self.runtime.info

    def start(self) -> None:
        runtime = self.runtime
        runtime.start(catalogue_archives(self.catalogue, self.opts.cache_dir))
        assert runtime.client is not None
        self.target = NodeTarget(runtime.client, runtime.image_refs, self._log_root(), self.run_id,
                                 handler=self.opts.handler,
                                 cgroup_parent=runtime.provisioned.cgroup_parent if runtime.provisioned else "")
        if runtime.owned and self.log_root is not None:  # `restart` cases: targets/node/target.py
            self.restart_server = RestartServer(self.log_root / ".sgp-restart.sock", runtime.restart)
            self.target.restart_socket = str(self.restart_server.path)

    # ----------------------------------------------------------- the Session protocol (conformance/targets/protocol.py)
    def header(self, startup: float) -> str:
        return self.runtime.header(startup)

    def cases(self) -> list[Case]:
        return [Case(s, p) for s in self.catalogue.scenarios for p in s.policies]

    def runner(self) -> NodeRunner:
        assert self.target is not None and self.info is not None
        return NodeRunner(self.target, self.info, self.catalogue)

    def worker_context(self) -> dict:
        assert self.target is not None and self.info is not None
        return {"endpoint": self.target.client.endpoint, "runtime": self.info.to_json(),
                "refs": self.runtime.image_refs, "log_root": str(self.log_root),
                "cgroup_parent": self.target.cgroup_parent, "run_id": self.run_id,
                "restart_socket": self.target.restart_socket}

    def results_extra(self) -> dict:
        return {"target": "node"}

    def _log_root(self) -> Path:
        prov = self.runtime.provisioned
        if prov and prov.daemon:
            self.log_root = prov.daemon.state_dir / "pods"
        else:
            self.log_root = self.opts.state_dir / f"pods-{os.getpid()}-{self.run_id}"
        self.log_root.mkdir(parents=True, exist_ok=True)
        return self.log_root

    def hold(self, say: Callable[[str], None]) -> None:
        """Nothing is kept on the node target (KEEP is refused there)."""

    def stop(self) -> None:
        """Background removals first, then the runtime (its sandboxes of this run, images, the daemon the
        suite started); its log stays in RESULTS_DIR."""
        if self.restart_server is not None:
            self.restart_server.close()
            self.restart_server = None
        if self.target is not None:
            for problem in self.target.drain(timeout=5.0):
                print(f"warning: {problem}", file=sys.stderr)
        self.target = None
        owned = self.runtime.owned
        try:
            self.runtime.stop(run_labels={RUN_LABEL: self.run_id})
        finally:
            if not owned and self.log_root is not None:
                shutil.rmtree(self.log_root, ignore_errors=True)
                self.log_root = None

"""TARGET=kind: a kind cluster per cell of versions.yaml (cells.py), made through the kind CLI (cli.py)
from a node image (nodeimage.py) with a kind config (config.py); lifecycle.py creates, checks, loads
and deletes it, plan.py shows it without running anything."""

from __future__ import annotations

import sys

from conformance.errors import InputError, SuiteError
from conformance.kube.api import client
from conformance.kube.runner import KubeSession
from conformance.targets.kind import cells
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell


class KindSession(KubeSession):
    """TARGET=kind: the cell of versions.yaml for RUNTIME/VERSION/K8S as a kind cluster (created, checked,
    loaded with the test images; deleted afterwards unless KEEP=1; its logs exported when a case failed)."""

    name = "kind"

    def start(self) -> None:
        if not self.opts.runtime:
            raise InputError("RUNTIME", "RUNTIME", "TARGET=kind needs RUNTIME=containerd|crio (and VERSION)")
        cell = cells.select(cells.load(), self.opts.runtime, self.opts.version, self.opts.k8s)
        self.cell = KindCell(cell, ClusterOptions(results_dir=self.opts.results_dir, keep=self.opts.keep,
                                                  reuse=self.opts.reuse))
        archives = self.catalogue.archives(self.opts.cache_dir)
        self.cell.preflight()
        self.cell.ensure_image()
        self.cell.up()
        self.kubeconfig = str(self.cell.kubeconfig)
        self.api = client(self.kubeconfig)
        self.nodes = self.cell.wait_ready(self.api)
        self.advertised = self.cell.verify_runtime(self.nodes)
        self.cell.load_images(archives)
        self.refs = {a.name: a.ref for a in archives}
        self._namespace()
        self.facts.update(self.cell.metadata())

    def describe(self) -> str:
        return f"kind cell {self.cell.cell.id}" if hasattr(self, "cell") else "kind"

    def stop(self) -> None:
        self._drop_namespace()
        cell = getattr(self, "cell", None)
        if cell is None:
            return
        if self.failed and (cell.created or cell.reused):
            cell.dump_logs()
        try:
            cell.down()
        except SuiteError as exc:
            print(f"cleanup error: {exc}", file=sys.stderr)


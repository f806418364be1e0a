"""TARGET=kind: a kind cluster for RUNTIME/VERSION, made through the kind CLI (cli.py) on a Docker engine
(engine.py: an existing one, else a private one), from node images (nodeimage.py: built offline from the
given binaries when K8S_BIN_DIR is set, else the stock kindest/node of the cell in versions.yaml) with a
kind config (config.py); lifecycle.py creates, checks, loads and deletes it, plan.py shows it without
running anything."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

from conformance.core.catalogue import Catalogue
from conformance.core.options import Options
from conformance.core.versions import version_key
from conformance.errors import ProvisionError, SuiteError
from conformance.kube.api import client
from conformance.kube.runner import KubeSession
from conformance.runtimes.base import unique_dir
from conformance.runtimes.process import join_network
from conformance.targets.kind import engine, nodebase, nodeimage, parts, plan
from conformance.targets.kind.cli import Kind, find_kind
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell
from conformance.testimages.archive import catalogue_archives


class KindSession(KubeSession):
    """TARGET=kind: the cluster (created, checked, loaded with the test images; deleted afterwards unless
    KEEP=1; its logs exported when a case failed), on an engine the suite removes again if it started it."""

    name = "kind"

    @classmethod
    def plan(cls, opts: Options, catalogue: Catalogue) -> str:
        """DRY_RUN=1: the cell's plan, written and returned (conformance/targets/kind/plan.py)."""
        return plan.plan(opts, catalogue)

    def start(self) -> None:
        self._leave: Callable[[], None] | None = None
        self.engine: engine.Engine | None = None
        cache = self.opts.cache_dir
        gaps = host_gaps(self.opts.k8s_bin_dir is not None and not nodebase.path(cache).exists())
        if gaps:
            raise ProvisionError(gaps)
        archives = catalogue_archives(self.catalogue, cache)
        cell, images = parts.cell_and_images(self.opts, archives)
        self.state = unique_dir(self.opts.state_dir, "kind")
        self.engine = engine.provide(cache, self.state / "docker")
        if self.opts.reuse and self.engine.private:
            raise ProvisionError("REUSE=1 needs a Docker engine that outlives the run (DOCKER_HOST or the default "
                                 "socket); the suite's private engine exists only for its run")
        kind_bin, kind_source = find_kind(self.opts.kind_bin, cache)
        self.cell = KindCell(cell, ClusterOptions(results_dir=self.opts.results_dir, keep=self.opts.keep,
                                                  reuse=self.opts.reuse, build_dir=self.state / "build"),
                             images=images, runner=self.engine.runner(), kind=Kind(kind_bin))
        self.cell.facts.update(docker=self.engine.to_json(), kind_from=kind_source)
        self.cell.preflight()
        self._check_kind_release()
        self.cell.ensure_images(cache)
        self.cell.up()
        self.kubeconfig = str(self.cell.kubeconfig)
        if self.engine.network():
            self._leave = join_network(self.engine.network())
        self.api = client(self.kubeconfig)
        self.nodes = self.cell.wait_ready(self.api)
        self.advertised = self.cell.verify_runtime(self.nodes)
        self.cell.load_images(archives)
        self.refs = {a.name: a.ref for a in archives}
        self._namespace()
        if self.info is not None and self.cell.images[0].parts is not None:
            self.info.oci = nodeimage.oci_runtime(self.cell.images[0].parts)
        self._check_images()
        self.facts.update(self.cell.metadata())

    def _check_kind_release(self) -> None:
        """A stock node image belongs to one kind release: another one is named in one line."""
        cell = self.cell.cell
        have = self.cell.facts.get("kind_version", "").split()
        if cell.kind and len(have) > 1 and version_key(cell.kind)[:2] != version_key(have[1])[:2]:
            raise ProvisionError(f"cell {cell.id}: its node image is made for kind {cell.kind}; this kind is "
                                 f"{have[1]} (set KIND_BIN to kind {cell.kind})")

    def describe(self) -> str:
        if not hasattr(self, "cell"):
            return "kind"
        docker = self.engine.to_json() if self.engine else {}
        cell = self.cell.cell
        parts = self.cell.images[0].parts
        oci = f"; OCI runtime: {parts.handler} ({parts.handler_chosen})" if parts and parts.handler_chosen else ""
        return (f"kind cell {cell.id}; runtime: {cell.runtime} {cell.runtime_version}{oci}; "
                f"{self.cell.facts.get('kind_version', '?')} ({self.cell.facts.get('kind_from', '')}); "
                f"Docker {docker.get('docker')} {docker.get('from')}")

    def worker_context(self) -> dict:
        return {**super().worker_context(), "network": self.engine.network() if self.engine else ""}

    def hold(self, say: Callable[[str], None]) -> None:
        """KEEP=1 on the suite's private engine: the cluster lives as long as the engine, so the run holds."""
        if not (self.opts.keep and self.engine is not None and self.engine.private):
            super().hold(say)
            return
        say(f"KEEP=1: kind cluster {self.cell.name} kept on the private Docker engine (DOCKER_HOST="
            f"{self.engine.host}, network namespace of pid {self.engine.namespace.pid}; "  # type: ignore[union-attr]
            f"kubeconfig {self.kubeconfig}); Ctrl-C removes it all")
        try:
            while self.engine.daemon is not None and self.engine.daemon.alive():
                self.engine.daemon.proc.wait(3600)  # type: ignore[union-attr]
        except KeyboardInterrupt:
            say("removing the held cluster")

    def stop(self) -> None:
        """Delete the cluster (unless KEEP=1 on an engine that outlives the run), then the engine the suite
        started; once: a second call (the run ending after an interrupted start) finds nothing to do."""
        if getattr(self, "stopped", False):
            return
        self.stopped = True
        self._drop_namespace()
        cell = getattr(self, "cell", None)
        try:
            if cell is not None:
                if self.failed and (cell.created or cell.reused):
                    cell.dump_logs()
                if self.engine is not None and self.engine.private:
                    cell.opts.keep = False  # the engine goes, and the cluster with it
                cell.down()
        except SuiteError as exc:
            print(f"cleanup error: {exc}", file=sys.stderr)
        finally:
            if getattr(self, "_leave", None):
                self._leave()  # type: ignore[misc]
                self._leave = None
            if getattr(self, "engine", None) is not None:
                self.engine.stop()  # type: ignore[union-attr]
            if getattr(self, "state", None) is not None:
                shutil.rmtree(self.state, ignore_errors=True)


def host_gaps(base_needed: bool) -> str | None:
    """What this host lacks for the run (before anything is fetched or started): the tools debootstrap runs
    when the node base must be made, those of the private engine when no engine answers; one line, or None."""
    gaps = [nodebase.host_gaps()] if base_needed else []
    if engine.existing() is None:
        gaps.append(engine.host_gaps())
    found = [g for g in gaps if g]
    return "; ".join(found) if found else None

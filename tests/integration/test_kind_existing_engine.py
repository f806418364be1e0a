"""TARGET=kind on a Docker engine the suite did not start, as on a CI runner, with Kubernetes and etcd from
their release downloads (no K8S_BIN_DIR given to the suite).

The test starts an engine itself in a network namespace it made (the engine module's private engine, owned by
the test), serves a release layout of K8S_BIN_DIR's binaries on that namespace's loopback, and runs the
suite inside the namespace with DOCKER_HOST set. The suite must use that engine as it is and leave it as it
found it: no container, network or volume of the run; the node image it built may stay, named as the
suite's. Needs K8S_BIN_DIR and ETCD_BIN (run by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.core.options import default_cache
from conformance.kube import binaries
from conformance.runtimes import containerd, ocidefault
from conformance.targets.kind import engine, nodebase
from conformance.targets.kind.cli import find_kind
from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers

pytestmark = pytest.mark.runtime
PORT = 18777


def _objects(eng: engine.Engine) -> dict[str, set[str]]:
    """The engine's containers, networks, volumes and images, by name."""
    out = {}
    for what, argv in {"containers": ["ps", "--all", "--format", "{{.Names}}"],
                       "networks": ["network", "ls", "--format", "{{.Name}}"],
                       "volumes": ["volume", "ls", "--format", "{{.Name}}"],
                       "images": ["images", "--format", "{{.Repository}}:{{.Tag}}"]}.items():
        proc = subprocess.run(eng.client([str(eng.bin_dir / "docker"), *argv]), capture_output=True, text=True,
                              env={**os.environ, **eng.env()}, check=True, timeout=60)
        out[what] = set(proc.stdout.split())
    return out


def _release_server(eng: engine.Engine, root: Path, k8s_bin_dir: Path, version: str, etcd: Path,
                    etcd_version: str) -> subprocess.Popen:
    argv = eng.client([sys.executable, "-m", "tests.support.releases", "--root", str(root), "--port", str(PORT),
                       "--k8s", version, "--k8s-bin-dir", str(k8s_bin_dir), "--etcd", etcd_version,
                       "--etcd-bin", str(etcd)])
    server = subprocess.Popen(argv, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    first = server.stdout.readline()  # the URLs, once the layout is made and the port listens
    assert "K8S_RELEASE_URL=" in first, first + server.stdout.read()
    return server


def test_kind_on_an_engine_the_suite_did_not_start(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    etcd = Path(os.environ.get("ETCD_BIN") or pytest.skip("needs ETCD_BIN as well"))
    version = binaries.check_folder(k8s_bin_dir, "K8S_BIN_DIR", binaries.ALL).removeprefix("v")
    etcd_version = binaries.tool_version(etcd).removeprefix("v")
    cache = default_cache()
    # what the suite takes from Debian's archive, fetched first: the namespace has no way out
    find_kind(None, cache)
    containerd.resolve_binaries("2", None, cache)
    nodebase.tarball(cache, tmp_path / "nodebase.log")
    eng = engine.start_private(cache, state_root / "docker")  # the test's engine, not the suite's
    server = None
    try:
        before = _objects(eng)
        server = _release_server(eng, tmp_path / "www", k8s_bin_dir, version, etcd, etcd_version)
        base = f"http://127.0.0.1:{PORT}"
        env = {**os.environ, **eng.env(), "SGP_STATE_DIR": str(state_root / "suite"),
               "K8S_RELEASE_URL": f"{base}/k8s", "ETCD_RELEASE_URL": f"{base}/etcd", "ETCD_VERSION": etcd_version}
        for name in ("K8S_BIN_DIR", "ETCD_BIN"):
            env.pop(name, None)
        started = time.monotonic()
        proc = subprocess.run(eng.client([str(CLI), "run", "--results-dir", str(tmp_path / "results"), "--target",
                                          "kind", "--k8s", version, "-k", "blog-example or node-features"]),
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=2400, check=False)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        print(f"kind cell on an existing engine: {time.monotonic() - started:.1f}s")
        doc = json.loads((tmp_path / "results" / "results.json").read_text())
        docker = doc["kubernetes"]["facts"]["docker"]
        assert docker["private"] is False and docker["from"].startswith("existing (DOCKER_HOST=unix://")
        assert doc["kubernetes"]["cell"]["node_image"] == "built" and doc["kubernetes"]["cell"]["k8s"] == version
        # userns-blog-example too: the node's proc is fully visible to its pods on an engine without the filter
        want = {"pass"} if not ocidefault.kernel_problem() else {"pass", "unsupported"}
        assert set(doc["summary"]["counts"]) <= want and doc["summary"]["exit_code"] == 0
        after = _objects(eng)
        for what in ("containers", "networks", "volumes"):
            assert after[what] == before[what], (what, before[what], after[what])
        new_images = after["images"] - before["images"]
        assert new_images and all(i.startswith("localhost/sgp-") for i in new_images), new_images
        assert eng.daemon is not None and eng.daemon.alive()  # the engine is as it was: still there, answering
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        eng.stop()
    (state_root / "suite").rmdir()  # the suite's state root: empty, the run removed all it made
    assert leftovers(state_root, 0) == []

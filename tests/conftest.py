"""Shared fixtures: where the project is, and the real-runtime gate (fail, not skip, under CI=true)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
CLI = PROJECT / ".venv" / "bin" / "sgp-conformance"


def runtime_missing() -> str | None:
    """Why a real runtime cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    from conformance.runtimes import debian

    if not debian.available():
        return "needs Debian's archive (DEBIAN_MIRROR, or apt's configured one) to fetch containerd"
    return None


@pytest.fixture(scope="session")
def real_runtime() -> None:
    """Gate for tests that run a real containerd. Under CI=true a missing runtime is a failure."""
    reason = runtime_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real runtime required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private state root (short path: unix socket paths are limited to 108 bytes)."""
    root = Path("/var/tmp/sgpt") / os.urandom(3).hex()
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def binaries_from_env(variable: str, holding: str, why: str) -> Path:
    """The folder an environment variable names, for tests of binaries no registry reachable from CI ships:
    they run whenever it is set and are skipped otherwise, in CI too, saying why."""
    folder = os.environ.get(variable)
    if not folder:
        pytest.skip(f"needs {variable}=<folder with {holding}>: {why}; run these by hand with a build")
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    return Path(folder)


@pytest.fixture(scope="session")
def crio_bin_dir() -> Path:
    """CRIO_BIN_DIR (crio, pinns, conmon, runc)."""
    return binaries_from_env("CRIO_BIN_DIR", "crio, pinns, conmon, runc",
                             "CRI-O is not in Debian and CI cannot have it")


@pytest.fixture(scope="session")
def k8s_bin_dir() -> Path:
    """K8S_BIN_DIR (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet)."""
    return binaries_from_env("K8S_BIN_DIR", "kube-apiserver, kube-controller-manager, kube-scheduler, kubelet",
                             "CI cannot have Kubernetes server binaries")


@pytest.fixture(autouse=True)
def host_unchanged(request: pytest.FixtureRequest) -> None:
    """Integration and fault tests (real runs): the host snapshot before the test and after it, including
    its fixtures' teardown; any difference outside the run's state folder fails the test, naming it."""
    if not {"integration", "faults"} & set(Path(str(request.node.fspath)).parts):
        yield
        return
    from tests.support import hostsnapshot

    before = hostsnapshot.take()
    yield
    changes = hostsnapshot.differences(before, hostsnapshot.take())
    if changes:
        pytest.fail("the run changed the host:\n" + "\n".join(changes[:40]), pytrace=False)


@pytest.fixture(autouse=True)
def fake_watches_end() -> None:
    """The watches a test's fake API server answered end with the test (their followers are daemon threads)."""
    yield
    from tests.support.fakes.kubeapi import FakeApi

    FakeApi.end_all_watches()

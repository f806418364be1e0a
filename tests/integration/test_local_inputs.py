"""TARGET=local's bad input needs no cluster: missing binaries or a CRI_ENDPOINT are refused in one line,
exit 2, before anything starts (runs in CI too)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, PROJECT


def run(tmp_path: Path, state_root: Path, *args: str) -> tuple[int, str]:
    res = subprocess.run([str(CLI), "run", "--target", "local", "--results-dir", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120, cwd=PROJECT,
                         env={**os.environ, "SGP_STATE_DIR": str(state_root)})
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize(("args", "says"), [
    ((), "needs K8S_BIN_DIR=<folder with kube-apiserver, kube-controller-manager, kube-scheduler, kubelet> or K8S="),
    (("--k8s-bin-dir", "/nonexistent"), "K8S_BIN_DIR=/nonexistent: missing kube-apiserver"),
    (("--cri-endpoint", "unix:///run/x.sock"), "TARGET=local starts its own runtime"),
    (("--variants", "container,pods"), "VARIANTS"),
])
def test_refused_before_anything_starts(args: tuple[str, ...], says: str, tmp_path: Path, state_root: Path) -> None:
    code, out = run(tmp_path, state_root, *args)
    assert code == 2, out
    assert says in out and out.count("error:") == 1, out
    assert list(state_root.iterdir()) == []

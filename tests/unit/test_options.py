"""Options from flags: folders handed to daemons are absolute (a shim runs elsewhere than the suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.options import from_mapping


def test_binary_folders_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opts = from_mapping({"oci-bin-dir": "build/runc", "crio-bin-dir": "crio/bin", "containerd-bin-dir": "ctd",
                         "k8s-bin-dir": "k8s", "etcd-bin": "k8s/etcd", "image-push": "0",
                         "image-registry-insecure": "1"})
    assert opts.oci_bin_dir == tmp_path / "build" / "runc" and opts.crio_bin_dir == tmp_path / "crio" / "bin"
    assert opts.containerd_bin_dir == tmp_path / "ctd" and opts.k8s_bin_dir == tmp_path / "k8s"
    assert opts.etcd_bin == tmp_path / "k8s" / "etcd"
    assert opts.image_push is False and opts.image_registry_insecure is True
    assert from_mapping({}).image_push is True

"""Options from flags: folders handed to daemons are absolute (a shim runs elsewhere than the suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.options import from_mapping


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


def test_docs_options_table_is_the_options_table() -> None:
    """docs/options.md's reference is made from the one table (python -m conformance.core.options)."""
    import re

    from conformance.core.options import reference
    from conformance.paths import PROJECT

    doc = (PROJECT / "docs" / "options.md").read_text()
    found = re.search(r"<!-- options:[^\n]*-->\n(.*?)<!-- /options -->", doc, re.S)
    assert found and found.group(1) == reference(), "python -m conformance.core.options: paste it into docs/options.md"


def test_make_variables_become_flags(monkeypatch) -> None:
    from conformance.core.options import from_environment

    monkeypatch.setenv("TARGET", "kind")
    monkeypatch.setenv("K8S", "1.36.2")
    monkeypatch.setenv("RESULTS_DIR", "elsewhere")
    monkeypatch.delenv("VERSION", raising=False)
    assert from_environment(["run", "-k", "blog"]) == ["run", "-k", "blog"]  # only when make asks for it
    argv = from_environment(["run", "--options-from-env", "--results-dir", "out", "-k", "blog"])
    assert argv[:5] == ["run", "--results-dir", "out", "-k", "blog"]  # a flag given wins over its variable
    assert argv[5:7] == ["--target", "kind"] and argv[7:9] == ["--k8s", "1.36.2"] and "--version" not in argv
    assert argv.count("--results-dir") == 1

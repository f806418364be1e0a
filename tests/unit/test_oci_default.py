"""The default OCI runtime (no HANDLER): the stock runc where its `features` lists idmapped mounts, else a crun
that has them (found, or the suite's build), else the stock runc with the reason; HANDLER still exact; the
choice recorded. Real runc and crun are judged in tests/integration (test_node_containerd.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import crun, oci, ocidefault
from conformance.runtimes.oci import OCIRuntime

KERNEL_PROBLEM = ocidefault.kernel_problem  # the real one (the fixture below replaces it)
IDMAP = {"linux": {"mountExtensions": {"idmap": {"enabled": True}}}}


def fake(path: Path, name: str, version: str, features: dict | None) -> Path:
    """A fake OCI runtime: `--version`, and `features` printing `features` (None: no such command)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    answer = (f"echo '{json.dumps(features)}'" if features is not None
              else "echo 'No help topic for features' >&2; exit 1")
    path.write_text(f'#!/bin/sh\ncase "$*" in *--version*) echo "{name} version {version}";; *features*) {answer};; '
                    f"esac\n")
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def kernel_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocidefault, "kernel_problem", lambda: "")


@pytest.fixture
def stock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds a runc 1.1.5 without idmapped mounts, and nothing else."""
    folder = tmp_path / "path"
    fake(folder / "runc", "runc", "1.1.5+ds1", {"linux": {}})
    monkeypatch.setenv("PATH", str(folder))
    return folder / "runc"


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cache: Path) -> Path:
        raise ProvisionError("building crun needs gcc on this machine: install with `apt-get install gcc`")
    monkeypatch.setattr(crun, "ensure_crun", refuse)


def test_stock_runc_with_idmap_mounts_is_the_default(tmp_path: Path, stock: Path) -> None:
    mine = fake(tmp_path / "crio" / "runc", "runc", "1.3.0", IDMAP)
    got = ocidefault.resolve("", "crio", "1.37.0", [("CRIO_BIN_DIR", tmp_path / "crio")], tmp_path)
    assert (got.name, got.path) == ("runc", str(mine))
    assert got.to_json()["chosen"] == "default: the stock runc (its `features` lists idmapped mounts)"


def test_a_crun_at_hand_beats_building_one(tmp_path: Path, stock: Path, no_build: None) -> None:
    mine = fake(tmp_path / "oci" / "crun", "crun", "1.21", IDMAP)
    got = ocidefault.resolve("", "containerd", "2.1.9", [("OCI_BIN_DIR", tmp_path / "oci")], tmp_path)
    assert (got.name, got.path) == ("crun", str(mine))
    assert got.chosen.startswith("default: crun, for user namespaces (runc 1.1.5+ds1: `runc features` has no "
                                 "mountExtensions.idmap")


def test_the_suite_builds_crun_when_runc_lacks_idmap_mounts(tmp_path: Path, stock: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    built = fake(tmp_path / "cache" / "crun-1.21" / "crun", "crun", "1.21", IDMAP)
    monkeypatch.setattr(crun, "ensure_crun", lambda cache: built)
    got = ocidefault.resolve("", "containerd", "2.1.9", [], tmp_path / "cache")
    assert got == OCIRuntime("crun", str(built), "1.21", chosen=got.chosen)
    assert "crun built by the suite from Debian's source" in got.chosen and "runc 1.1.5+ds1" in got.chosen


def test_without_a_compiler_the_stock_runc_and_why_in_one_line(tmp_path: Path, stock: Path, no_build: None) -> None:
    got = ocidefault.resolve("", "containerd", "2.1.9", [], tmp_path)
    assert got.path == str(stock) and "\n" not in got.chosen
    assert got.chosen.startswith("default: the stock runc, without user namespaces (runc 1.1.5+ds1")
    assert "crun could not be built: building crun needs gcc" in got.chosen and "make crun" in got.chosen


def test_nothing_at_all_is_one_line(tmp_path: Path, no_build: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(oci.debian, "available", lambda: False)  # no Debian runc package either
    with pytest.raises(ProvisionError, match=r"^no OCI runtime for the default: HANDLER=runc: no runc in PATH; crun "
                                             r"could not be built: building crun needs gcc"):
        ocidefault.resolve("", "containerd", "2.1.9", [], tmp_path)


def test_a_kernel_without_idmapped_tmpfs_keeps_the_stock_runc(tmp_path: Path, stock: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocidefault, "kernel_problem", lambda: "Linux 5.10.0 (...)")
    monkeypatch.setattr(crun, "ensure_crun", lambda cache: pytest.fail("nothing to build for"))
    got = ocidefault.resolve("", "containerd", "2.1.9", [], tmp_path)
    assert got.path == str(stock) and "no OCI runtime gives pods user namespaces on Linux 5.10.0" in got.chosen


def test_handler_is_exact(tmp_path: Path, stock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HANDLER=runc is the stock runc even without idmapped mounts: nothing built, nothing swapped."""
    monkeypatch.setattr(crun, "ensure_crun", lambda cache: pytest.fail("HANDLER=runc builds nothing"))
    fake(tmp_path / "oci" / "crun", "crun", "1.21", IDMAP)
    got = ocidefault.resolve("runc", "containerd", "2.1.9", [("OCI_BIN_DIR", tmp_path / "oci")], tmp_path)
    assert (got.name, got.path, got.chosen) == ("runc", str(stock), "HANDLER=runc")
    with pytest.raises(ProvisionError, match="HANDLER=crun: no crun in"):
        ocidefault.resolve("crun", "containerd", "2.1.9", [], tmp_path)


def test_idmap_problem_quotes_the_runtime(tmp_path: Path) -> None:
    old = fake(tmp_path / "runc", "runc", "1.0.0", None)
    problem = ocidefault.idmap_problem(OCIRuntime("runc", str(old), "1.0.0"))
    assert problem == "runc 1.0.0 has no `features` command (No help topic for features)"


@pytest.mark.parametrize(("release", "max_userns", "want"), [
    ("6.18.44-fc-v1147", "15000", ""), ("6.3.0", "1", ""),
    ("6.1.0-28-amd64", "15000", "Linux 6.1.0-28-amd64 (pods with hostUsers: false need idmapped mounts of tmpfs"),
    ("6.8.0", "0", "user namespaces are disabled")])
def test_kernel_problem(tmp_path: Path, release: str, max_userns: str, want: str) -> None:
    knob = tmp_path / "max_user_namespaces"
    knob.write_text(max_userns + "\n")
    got = KERNEL_PROBLEM(release, knob)
    assert got.startswith(want) and bool(got) == bool(want)

"""The OCI runtime choice: HANDLER's runtime from OCI_BIN_DIR, the runtime's folder, then PATH; never another
one; one too old for the bundles refused before anything starts; recorded with name, path and version."""

from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.runtimes import oci
from conformance.runtimes.oci import OCIRuntime
from tests.support.fakes import bin as fakebin


def fake(path: Path, name: str, version: str) -> Path:
    return fakebin.tool(path, f"{name} version {version}")


@pytest.fixture
def path_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only this folder (with an old crun and a runc)."""
    folder = tmp_path / "path"
    fake(folder / "crun", "crun", "1.8.1")
    fake(folder / "runc", "runc", "1.1.5+ds1")
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_default_is_runc_from_the_runtime_folder_before_path(tmp_path: Path, path_dir: Path) -> None:
    mine = fake(tmp_path / "crio" / "runc", "runc", "1.3.0")
    got = oci.resolve("", "crio", "1.37.0", oci.search_dirs(None, "CRIO_BIN_DIR", tmp_path / "crio"))
    assert got == OCIRuntime("runc", str(mine), "1.3.0")
    assert got.to_json() == {"name": "runc", "path": str(mine), "version": "1.3.0"}


def test_crun_is_never_picked_when_runc_is_asked(tmp_path: Path, path_dir: Path) -> None:
    folder = tmp_path / "crio"
    fake(folder / "crun", "crun", "1.21")  # the folder holds crun only: runc comes from PATH, not crun
    got = oci.resolve("runc", "crio", "1.37.0", oci.search_dirs(None, "CRIO_BIN_DIR", folder))
    assert got.name == "runc" and got.path == str(path_dir / "runc")


def test_oci_bin_dir_comes_first(tmp_path: Path, path_dir: Path) -> None:
    built = fake(tmp_path / "built" / "crun", "crun", "1.21")
    fake(tmp_path / "crio" / "crun", "crun", "1.19")
    got = oci.resolve("crun", "crio", "1.37.0", oci.search_dirs(tmp_path / "built", "CRIO_BIN_DIR",
                                                                 tmp_path / "crio"))
    assert got.path == str(built) and got.version == "1.21"


def test_old_crun_is_refused_in_one_line(tmp_path: Path, path_dir: Path) -> None:
    with pytest.raises(ProvisionError) as exc:
        oci.resolve("crun", "containerd", "2.1.9", oci.search_dirs(None, "", None))
    text = str(exc.value)
    assert "\n" not in text and "crun 1.8.1 cannot run containerd 2.1.9's bundles" in text
    assert str(path_dir / "crun") in text and "OCI_BIN_DIR" in text and "make crun" in text


def test_old_crun_is_fine_for_containerd_1_6_bundles(path_dir: Path) -> None:
    assert oci.resolve("crun", "containerd", "1.6.20", []).version == "1.8.1"


def test_missing_and_unknown_handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProvisionError, match=r"HANDLER=crun: no crun in CRIO_BIN_DIR=.*, PATH"):
        oci.resolve("crun", "crio", "1.37.0", oci.search_dirs(None, "CRIO_BIN_DIR", tmp_path / "x"))
    with pytest.raises(ProvisionError, match="must be one of runc, crun"):
        oci.resolve("kata", "crio", "1.37.0", [])
    broken = tmp_path / "runc"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(ProvisionError, match="does not run"):
        oci.resolve("runc", "crio", "1.37.0", [])


def test_round_trip_through_json() -> None:
    runtime = OCIRuntime("crun", "/x/crun", "1.21", "/s/bin/crun", "hybrid cgroup host")
    assert OCIRuntime.from_json(runtime.to_json()) == runtime
    assert OCIRuntime.from_json(None) is None

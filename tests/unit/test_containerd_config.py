import tomllib
from pathlib import Path

from conformance.runtimes.containerd import render_config


def test_config_v3_for_2x(tmp_path: Path) -> None:
    doc = tomllib.loads(render_config("2.1.9", tmp_path, "localhost/sgpconf/pause:x", {"runc": "/usr/sbin/runc",
                                                                                     "crun": "/usr/bin/crun"}))
    assert doc["version"] == 3 and doc["root"] == f"{tmp_path}/root" and doc["state"] == f"{tmp_path}/state"
    rt = doc["plugins"]["io.containerd.cri.v1.runtime"]
    assert rt["restrict_oom_score_adj"] is True
    assert rt["containerd"]["runtimes"]["crun"]["options"]["BinaryName"] == "/usr/bin/crun"
    assert rt["containerd"]["runtimes"]["runc"]["options"]["Root"] == f"{tmp_path}/oci/runc"
    assert doc["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "localhost/sgpconf/pause:x"
    assert doc["plugins"]["io.containerd.nri.v1.nri"]["disable"] is True
    assert doc["grpc"]["address"] == f"{tmp_path}/containerd.sock"


def test_config_v2_for_1x(tmp_path: Path) -> None:
    doc = tomllib.loads(render_config("1.7.24", tmp_path, "p", {"runc": "/usr/sbin/runc"}))
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert doc["version"] == 2 and cri["sandbox_image"] == "p" and cri["restrict_oom_score_adj"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert str(tmp_path) in cri["cni"]["conf_dir"]

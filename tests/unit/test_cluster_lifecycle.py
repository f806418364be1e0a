"""Cluster lifecycle and the kind/docker wrappers, with fake `kind`/`docker` on PATH recording argv.
These prove our command lines and control flow, not that any runtime works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.archive import ImageArchive
from conformance.errors import ProvisionError
from conformance.targets.kind import cells as versions
from conformance.targets.kind import cli as kindcli
from conformance.targets.kind import nodeimage
from conformance.targets.kind.cli import ClusterExists, CreateFailed, Docker, Kind, NoSuchContainer, Runner
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell
from tests.fakes import bin as fakebin
from tests.fakes import kubeapi as fk


@pytest.fixture
def log(tmp_path, monkeypatch):
    return fakebin.install(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def cells():
    return versions.load()


def cell_of(cells, runtime, version):
    return versions.select(cells, runtime, version)


def archives(tmp_path) -> list[ImageArchive]:
    out = []
    for name in ("agnhost-like", "pause"):
        path = tmp_path / f"{name}.tar"
        path.write_bytes(b"x" * 10)
        out.append(ImageArchive(name, path, f"localhost/sgpconf/{name}:t1", "", ""))
    return out


def test_error_classes_from_stderr():
    err = kindcli.error_for(["kind", "create", "cluster"], 1, "", 'ERROR: failed to create cluster: node(s) already '
                            'exist for a cluster with the name "sgp-x"')
    assert isinstance(err, ClusterExists) and err.argv == ["kind", "create", "cluster"]
    err = kindcli.error_for(["kind", "create"], 1, "", "ERROR: failed to create cluster: failed to init node")
    assert isinstance(err, CreateFailed) and "failed to init node" in str(err)
    assert isinstance(kindcli.error_for(["docker", "exec"], 1, "", "No such container: n"), NoSuchContainer)


def test_runner_uses_argument_lists_and_types_errors(log):
    runner = Runner()
    with pytest.raises(NoSuchContainer) as info:
        runner.run(Docker().exec("nosuch", ["true"]))
    assert "No such container" in info.value.stderr
    proc = runner.run(Kind().version())
    assert proc.stdout.startswith("kind v0.30.0")
    evil = "a; touch /tmp/pwned"
    runner.run(Docker().exec("node", ["sh", "-c", evil]))
    assert fakebin.calls(log)[-1]["argv"] == ["exec", "node", "sh", "-c", evil]


def test_missing_tool_is_provision_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProvisionError, match="not found on PATH"):
        Runner().run(Kind().version())


def test_create_argv():
    cmd = Kind().create("sgp-x", Path("/r/c.yaml"), Path("/r/kubeconfig"), "3m")
    assert cmd.argv == ("kind", "create", "cluster", "--name", "sgp-x", "--config", "/r/c.yaml", "--kubeconfig",
                        "/r/kubeconfig", "--retain", "--wait", "3m", "-v", "1")


def test_node_image_recipes(cells, tmp_path):
    stock = nodeimage.recipe(cell_of(cells, "containerd", "2.1"))
    assert stock.stock and stock.ref == stock.base and not stock.build_args
    crio = nodeimage.recipe(cell_of(cells, "crio", "1.34"))
    assert not crio.stock and crio.build_args["CRIO_VERSION"] == "1.34.2"
    assert crio.ref.endswith(crio.cache_key[:12]) and "crio-v1.34.2" in crio.ref
    assert "skopeo" in crio.dockerfile_text() and "sgp-crio-preload" in crio.dockerfile_text()
    c17 = nodeimage.recipe(cell_of(cells, "containerd", "1.7"))
    assert c17.build_args["CONTAINERD_VERSION"].startswith("1.7.")
    assert "containerd-shim-runc-v2" in c17.dockerfile_text()
    # the cache key follows content
    ctx = tmp_path / "crio"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM x\n")
    key1 = nodeimage.content_key(ctx, {"A": "1"})
    assert key1 != nodeimage.content_key(ctx, {"A": "2"})
    (ctx / "extra").write_text("y")
    assert key1 != nodeimage.content_key(ctx, {"A": "1"})


def test_ensure_image_builds_when_missing(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_VERSION_OUT", "crio version 1.34.2\nVersion:        1.34.2\n")
    kc = KindCell(cell_of(cells, "crio", "1.34"), ClusterOptions(results_dir=tmp_path / "r"))
    kc.ensure_image()
    argvs = [c["argv"][:2] for c in fakebin.calls(log)]
    assert argvs[:4] == [["image", "inspect"], ["pull", kc.cell.base_node_image], ["build", "--file"],
                         ["run", "--rm"]]
    build = fakebin.calls(log)[2]["argv"]
    assert f"CRIO_VERSION={kc.cell.runtime_version}" in build and build[-1].endswith("images/kind/crio")


def test_ensure_image_reuses_cached_and_checks_version(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_IMAGE_PRESENT", "1")
    monkeypatch.setenv("FAKE_VERSION_OUT", "Version: 1.33.0\n")
    kc = KindCell(cell_of(cells, "crio", "1.34"), ClusterOptions(results_dir=tmp_path / "r"))
    with pytest.raises(ProvisionError, match=r"expected crio 1\.34\.2"):
        kc.ensure_image()
    assert not [c for c in fakebin.calls(log) if c["argv"][0] == "build"]
    assert kc.phases[-1].name == "BuildImage" and not kc.phases[-1].ok


def test_create_retries_once_after_export_and_delete(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "1")
    kc = KindCell(cell_of(cells, "crio", "1.34"), ClusterOptions(results_dir=tmp_path / "r"))
    kc.up()
    seq = [c["argv"][:2] for c in fakebin.calls(log)]
    assert seq == [["get", "clusters"], ["create", "cluster"], ["export", "logs"], ["delete", "cluster"],
                   ["create", "cluster"]]
    create = fakebin.calls(log)[1]["argv"]
    for flag in ("--retain", "--wait", "--kubeconfig", "--config"):
        assert flag in create
    assert kc.config_path.read_text().count("criSocket: unix:///var/run/crio/crio.sock") == 2
    assert kc.created and "failed to init node" in kc.facts["create_retry"]


def test_create_fails_twice_is_error(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "2")
    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r"))
    with pytest.raises(CreateFailed):
        kc.up()
    assert kc.created  # --retain left nodes behind: down() must delete them
    kc.down()
    assert fakebin.calls(log)[-1]["argv"][:2] == ["delete", "cluster"]


def test_existing_cluster_needs_reuse(cells, tmp_path, log, monkeypatch):
    cell = cell_of(cells, "containerd", "2.1")
    monkeypatch.setenv("FAKE_CLUSTERS", f"other {cell.cluster_name}")
    kc = KindCell(cell, ClusterOptions(results_dir=tmp_path / "r"))
    with pytest.raises(ProvisionError, match="REUSE=1"):
        kc.up()
    kc = KindCell(cell, ClusterOptions(results_dir=tmp_path / "r", reuse=True))
    kc.up()
    assert fakebin.calls(log)[-1]["argv"][:2] == ["export", "kubeconfig"]
    kc.down()  # never deletes a reused cluster
    assert not [c for c in fakebin.calls(log) if c["argv"][:2] == ["delete", "cluster"]]


def test_keep_skips_delete(cells, tmp_path, log):
    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r", keep=True))
    kc.up()
    kc.down()
    assert not [c for c in fakebin.calls(log) if c["argv"][:2] == ["delete", "cluster"]]
    assert kc.phases[-1].detail == "kept (KEEP=1)"


def test_load_images_containerd_uses_kind_load(cells, tmp_path, log):
    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r"))
    kc.load_images(archives(tmp_path))
    seq = fakebin.calls(log)
    assert [c["argv"][:2] for c in seq] == [["load", "image-archive"]] * 2
    assert seq[0]["argv"][3:5] == ["--name", kc.name]


def test_load_images_crio_streams_into_containers_storage(cells, tmp_path, log):
    kc = KindCell(cell_of(cells, "crio", "1.34"), ClusterOptions(results_dir=tmp_path / "r", workers=1))
    kc.load_images(archives(tmp_path))
    seq = fakebin.calls(log)
    copies = [c for c in seq if "skopeo" in c["argv"]]
    assert len(copies) == 4  # 2 images x 2 nodes
    first = copies[0]["argv"]
    assert first[:3] == ["exec", "-i", f"{kc.name}-control-plane"]
    assert first[-2:] == ["docker-archive:/dev/stdin", "containers-storage:localhost/sgpconf/agnhost-like:t1"]
    assert copies[0]["stdin_bytes"] == 10
    assert [c for c in seq if "inspecti" in c["argv"]]
    assert not [c for c in seq if c["tool"] == "kind"]


def test_verify_runtime(cells, tmp_path, log, monkeypatch):
    cell = cell_of(cells, "crio", "1.34")
    monkeypatch.setenv("FAKE_CRICTL_INFO", json.dumps({"status": {"conditions": []},
                                                        "features": {"supplemental_groups_policy": True}}))
    kc = KindCell(cell, ClusterOptions(results_dir=tmp_path / "r"))
    good = [fk.node(n, runtime=cell.expected_runtime_version, kubelet="v1.34.0",
                    features={"supplementalGroupsPolicy": True}) for n in kc.node_names()]
    assert kc.verify_runtime(good) == {n: True for n in kc.node_names()}
    assert kc.facts["nodes"][kc.node_names()[0]]["features"] == {"supplementalGroupsPolicy": True}
    bad = [fk.node(kc.node_names()[0], runtime="cri-o://1.34.1", kubelet="v1.34.0")]
    with pytest.raises(ProvisionError, match="wrong runtime"):
        kc.verify_runtime(bad)


def test_wait_ready_waits_for_nodes_and_dns(cells, tmp_path):
    from conformance.kube.waits import Waits

    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r"),
                  waits=Waits(ready=2, interval=0.01, sleep=lambda s: None))
    names = kc.node_names()
    api = fk.FakeApi([fk.node(names[0]), fk.node(names[1], ready=False)])
    state = {"n": 0}
    real = api.list_nodes

    def list_nodes(label_selector=""):
        state["n"] += 1
        nodes = real()
        if state["n"] > 2:
            nodes[1] = fk.node(names[1])
        return nodes

    api.list_nodes = list_nodes
    api.pods = {"coredns": {"metadata": {"name": "coredns"}, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}}}
    nodes = kc.wait_ready(api)
    assert len(nodes) == 2 and state["n"] == 3


def test_dump_logs_collects_runtime_journal(cells, tmp_path, log):
    kc = KindCell(cell_of(cells, "crio", "1.34"), ClusterOptions(results_dir=tmp_path / "r"))
    kc.dump_logs()
    argvs = [c["argv"] for c in fakebin.calls(log)]
    assert argvs[0][:3] == ["export", "logs", str(kc.logs_dir)]
    assert ["exec", f"{kc.name}-worker", "journalctl", "-u", "crio", "--no-pager"] in argvs
    assert ["exec", f"{kc.name}-worker", "crio", "status", "config"] in argvs

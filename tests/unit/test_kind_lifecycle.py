"""Cluster lifecycle and the kind/docker wrappers, with fake `kind`/`docker` on PATH recording argv.
These prove our command lines and control flow, not that any runtime works."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conformance.errors import ProvisionError
from conformance.targets.kind import cells as versions
from conformance.targets.kind import cli as kindcli
from conformance.targets.kind import config as kindconfig
from conformance.targets.kind import nodeimage
from conformance.targets.kind.cli import ClusterExists, CreateFailed, Docker, Kind, NoSuchContainer, Runner
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell, StepFailed
from conformance.targets.kind.noderuntime import NODE_RUNTIMES
from conformance.testimages.archive import ImageArchive
from tests.support.fakes import bin as fakebin
from tests.support.fakes import kubeapi as fk


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


def fake_parts(tmp_path: Path, runtime: str = "crio", version: str = "1.37.0") -> nodeimage.Parts:
    """Parts of a built node image made of placeholder files (kubeadm prints the image list)."""
    folder = tmp_path / "bins"
    folder.mkdir(exist_ok=True)
    for name in (*NODE_RUNTIMES[runtime].binaries, *nodeimage.KUBE_BINARIES, *nodeimage.CONTROL_PLANE, "etcd"):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    (folder / "kubeadm").write_text("#!/bin/sh\nfor n in kube-apiserver kube-controller-manager kube-scheduler "
                                    "kube-proxy; do echo registry.k8s.io/$n:v1.36.2; done\n"
                                    "echo registry.k8s.io/pause:3.10.2; echo registry.k8s.io/etcd:3.6.8-0\n")
    base = tmp_path / "base-bookworm-x.tar"
    base.write_bytes(b"base")
    return nodeimage.Parts(runtime=runtime, runtime_version=version, runtime_dir=folder, handlers={"runc": ""},
                           handler="runc", k8s_version="v1.36.2", k8s_dir=folder, etcd=folder / "etcd",
                           etcd_version="3.5.16", base=base)


def built_cell(tmp_path: Path, nodes: int = 2, runtime: str = "crio", **opts) -> KindCell:
    parts = fake_parts(tmp_path, runtime)
    cell = versions.built(runtime, parts.runtime_version, "1.36.2")
    image = nodeimage.built(parts, tmp_path / "cache")
    return KindCell(cell, ClusterOptions(results_dir=tmp_path / "r", build_dir=tmp_path / "build", **opts),
                    images=[image] * nodes)


def test_node_images_stock_and_built(cells, tmp_path):
    stock = nodeimage.stock(cell_of(cells, "containerd", "2.1"))
    assert stock.stock and stock.ref == stock.base and stock.parts is None
    parts = fake_parts(tmp_path)
    image = nodeimage.built(parts, tmp_path / "cache")
    assert not image.stock and image.ref.endswith(image.cache_key[:12]) and "crio-1.37.0-k8s-v1.36.2" in image.ref
    assert image.saved == tmp_path / "cache" / "kind" / f"node-{image.cache_key[:24]}.tar"
    text = nodeimage.dockerfile(image)
    assert text.startswith(f"FROM {image.base_ref}\n") and "/usr/local/bin/entrypoint" in text
    path, config = nodeimage.runtime_config(parts, "registry.k8s.io/pause:3.10.2")
    assert path == "etc/crio/crio.conf.d/10-sgp.conf" and 'default_runtime = "runc"' in config
    assert f'runtime_path = "{nodeimage.RESTRICT}/runc"' in config and "registry.k8s.io/pause:3.10.2" in config
    # the key follows the content: a binary changes, a new key
    (parts.runtime_dir / "crio").write_text("#!/bin/sh\n# another build\n")
    assert nodeimage.built(parts, tmp_path / "cache").cache_key != image.cache_key


def test_containerd_node_config_names_each_handler(tmp_path):
    parts = fake_parts(tmp_path, "containerd", "2.1.9")
    parts = dataclasses.replace(parts, handlers={"runc": "", "crun": str(parts.runtime_dir / "ctr")}, handler="crun")
    path, config = nodeimage.runtime_config(parts, "registry.k8s.io/pause:3.10.2")
    assert path == "etc/containerd/config.toml" and 'default_runtime_name = "crun"' in config
    assert f'BinaryName = "{nodeimage.HYBRID}/crun"' in config and 'BinaryName = "/usr/sbin/runc"' in config
    assert "SystemdCgroup = true" in config and "SystemdCgroup = false" not in config
    cgroupfs = dataclasses.replace(parts, systemd_cgroups=False)
    assert "SystemdCgroup = true" not in nodeimage.runtime_config(cgroupfs, "pause:3.10.2")[1]


def test_crun_behind_the_hybrid_wrapper_and_cgroupfs_without_systemd(tmp_path):
    """The suite's static crun has no systemd cgroup manager: the node (runtime and kubelet) uses cgroupfs;
    crun runs behind crun-hybrid, which execs it directly unless the node's cgroups are hybrid."""
    parts = dataclasses.replace(fake_parts(tmp_path, "crio"), handlers={"crun": str(tmp_path / "crun")},
                                handler="crun", systemd_cgroups=False)
    _, config = nodeimage.runtime_config(parts, "pause:3.10.2")
    assert 'cgroup_manager = "cgroupfs"' in config and f'runtime_path = "{nodeimage.RESTRICT}/crun"' in config
    wrapper = nodeimage._fill("crun-hybrid", {"REAL": "/usr/local/sbin/crun"})
    assert 'exec /usr/local/sbin/crun "$@"' in wrapper and "@REAL@" not in wrapper
    assert "hugepageLimits" in wrapper and "umount -l /sys/fs/cgroup/unified" in wrapper
    recorded = nodeimage.oci_runtime(parts)
    assert (recorded["name"], recorded["path"]) == ("crun", f"{nodeimage.HYBRID}/crun")
    cell = versions.built("crio", parts.runtime_version, "1.36.2")
    patches = kindconfig.config(cell, [("img:1", "crio")], built=True, cgroupfs=True)["kubeadmConfigPatches"]
    assert kindconfig.CGROUPFS in patches and "cgroupDriver: cgroupfs" in kindconfig.CGROUPFS
    assert kindconfig.CGROUPFS not in kindconfig.config(cell, [("img:1", "crio")], built=True)["kubeadmConfigPatches"]


def test_ensure_images_builds_when_missing(tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_VERSION_OUT", "crio version 1.37.0\n")
    monkeypatch.setenv("SGP_BUSYBOX", str(tmp_path / "busybox"))
    (tmp_path / "busybox").write_bytes(b"busybox")
    kc = built_cell(tmp_path)
    kc.ensure_images(tmp_path / "cache")
    argvs = [c["argv"][:2] for c in fakebin.calls(log)]
    assert argvs == [["image", "inspect"], ["image", "inspect"], ["import", str(kc.images[0].parts.base)],
                     ["build", "--quiet"], ["save", "--output"], ["run", "--rm"], ["image", "inspect"]]
    build = next(c for c in fakebin.calls(log) if c["argv"][0] == "build")
    assert build["argv"][-1] == str(kc.build_folder(kc.images[0]))
    assert not kc.build_folder(kc.images[0]).exists()  # the build folder goes once the image is saved
    assert kc.facts["node_images"][kc.images[0].ref]["how"] == "built"


def test_ensure_images_loads_the_saved_copy_then_checks_the_version(tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_VERSION_OUT", "crio version 1.33.0\n")
    kc = built_cell(tmp_path)
    kc.images[0].saved.parent.mkdir(parents=True)
    kc.images[0].saved.write_bytes(b"saved")
    with pytest.raises(ProvisionError, match=r"expected crio 1\.37\.0"):
        kc.ensure_images(tmp_path / "cache")
    argvs = [c["argv"][:2] for c in fakebin.calls(log)]
    assert argvs == [["image", "inspect"], ["load", "--input"], ["run", "--rm"]]
    assert kc.phases[-1].name == "BuildImage" and not kc.phases[-1].ok


def test_ensure_images_present_stock(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_IMAGE_PRESENT", "1")
    monkeypatch.setenv("FAKE_VERSION_OUT", "containerd containerd.io v2.1.1\n")
    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r"))
    kc.ensure_images(tmp_path / "cache")
    assert [c["argv"][0] for c in fakebin.calls(log)] == ["image", "run", "image"]


def test_create_retries_once_after_export_and_delete(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "1")
    kc = built_cell(tmp_path)
    kc.up()
    seq = [c["argv"][:2] for c in fakebin.calls(log)]
    assert seq == [["get", "clusters"], ["network", "ls"], ["create", "cluster"], ["export", "logs"],
                   ["delete", "cluster"], ["create", "cluster"]]
    create = fakebin.calls(log)[2]["argv"]
    for flag in ("--retain", "--wait", "--kubeconfig", "--config"):
        assert flag in create
    config = kc.config_path.read_text()
    assert config.count("criSocket: unix:///var/run/crio/crio.sock") == 2  # one per node
    assert "disableDefaultCNI: true" in config and "addon/coredns" in config and "failCgroupV1: false" in config
    assert kc.created and "failed to init node" in kc.facts["create_retry"]


def test_create_fails_twice_is_error(cells, tmp_path, log, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "2")
    kc = KindCell(cell_of(cells, "containerd", "2.1"), ClusterOptions(results_dir=tmp_path / "r"))
    with pytest.raises(StepFailed) as err:
        kc.up()
    assert isinstance(err.value.cause, CreateFailed)
    message = str(err.value)  # the step in a person's words, what failed inside it, where its output is
    assert message.startswith(f"kind cell {kc.cell.id}: creating kind cluster {kc.name} (second attempt")
    assert "kubeadm init on node" in message or "failed to init node" in message, message
    output = Path(message.split("whole output is in ")[1].split(";")[0])
    assert "--- stderr" in output.read_text() and str(kc.logs_dir) in message
    assert kc.created  # --retain left nodes behind: down() must delete them
    kc.down()  # and the kind network this run made (the fake engine had none)
    assert [c["argv"][:2] for c in fakebin.calls(log)][-2:] == [["delete", "cluster"], ["network", "rm"]]


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


def test_built_nodes_load_nothing(tmp_path, log):
    kc = built_cell(tmp_path)
    kc.load_images(archives(tmp_path))
    assert fakebin.calls(log) == []  # the test images are in the node image, loaded at first boot


def test_verify_runtime(cells, tmp_path, log, monkeypatch):
    cell = cell_of(cells, "containerd", "2.1")
    monkeypatch.setenv("FAKE_CRICTL_INFO", json.dumps({"status": {"conditions": []},
                                                        "features": {"supplemental_groups_policy": True}}))
    kc = KindCell(cell, ClusterOptions(results_dir=tmp_path / "r"), images=[nodeimage.stock(cell)] * 2)
    good = [fk.node(n, runtime=cell.expected_runtime_version, kubelet="v1.33.1",
                    features={"supplementalGroupsPolicy": True}) for n in kc.node_names()]
    assert kc.verify_runtime(good) == {n: True for n in kc.node_names()}
    assert kc.facts["nodes"][kc.node_names()[0]]["features"] == {"supplementalGroupsPolicy": True}
    debian = [fk.node(n, runtime=cell.expected_runtime_version + "+unknown", kubelet="v1.33.1")
              for n in kc.node_names()]
    kc.verify_runtime(debian)  # Debian's builds say 2.1.1+unknown
    bad = [fk.node(kc.node_names()[0], runtime="containerd://2.1.0", kubelet="v1.33.1")]
    with pytest.raises(ProvisionError, match="wrong runtime"):
        kc.verify_runtime(bad)


def test_wait_ready_waits_for_nodes_and_dns(cells, tmp_path):
    from conformance.kube.waits import Waits

    cell = cell_of(cells, "containerd", "2.1")
    kc = KindCell(cell, ClusterOptions(results_dir=tmp_path / "r"), images=[nodeimage.stock(cell)] * 2,
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
    kc = built_cell(tmp_path)
    kc.dump_logs()
    argvs = [c["argv"] for c in fakebin.calls(log)]
    assert argvs[0][:3] == ["export", "logs", str(kc.logs_dir)]
    assert ["exec", f"{kc.name}-worker", "journalctl", "-u", "crio", "-u", "kubelet", "-u", "sgp-preload",
            "--no-pager"] in argvs
    assert not [a for a in argvs if "crictl" in a]  # built nodes have none
    assert ["exec", f"{kc.name}-worker", "crio", "status", "config"] in argvs

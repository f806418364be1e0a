"""The Kubernetes sessions wired end to end with fakes (a fake `kind`/`docker` on PATH, API objects shaped as
the API server returns them): cases, the runner, clean-up. Proves our control flow, not any runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.core.catalogue import PROJECT, Catalogue
from conformance.core.model import Verdict
from conformance.core.options import Options
from conformance.errors import InputError, ProvisionError
from conformance.kube import pods
from conformance.kube import runner as kube_runner
from conformance.kube.waits import Waits
from conformance.targets.cluster import session as cluster_target
from conformance.targets.kind import cells
from conformance.targets.kind import session as kind_session
from conformance.targets.kind.engine import Engine
from conformance.testimages.archive import catalogue_archives
from tests.support.fakes import bin as fakebin
from tests.support.fakes import kubeapi as fk

CATALOGUE = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
FAST = Waits(pod=2, event=1, ready=2, interval=0.01, sleep=lambda s: None)


def strict_pod(pod: dict, poll: int) -> dict:
    return {"phase": "Running", "containerStatuses": [fk.running_status("probe", fk.user(1000, 3000, [3000, 4000]))]}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> fk.FakeApi:
    fake = fk.FakeApi([fk.node("w2", ready=False), fk.node("w1", features={"supplementalGroupsPolicy": True})],
                      strict_pod, log=fk.probe(1000, 3000, [3000, 4000]), exec_out=fk.probe(1000, 3000, [3000, 4000]))
    for module in (kube_runner, cluster_target, kind_session):
        monkeypatch.setattr(module, "client", lambda kubeconfig, context=None: fake)
    monkeypatch.setattr(pods.KubeTarget, "__init__", _fast_target(pods.KubeTarget.__init__))
    return fake


def _fast_target(init):
    def patched(self, *args, **kwargs):
        kwargs["waits"] = FAST
        init(self, *args, **kwargs)
    return patched


def test_cluster_session_cases_runner_and_cleanup(api: fk.FakeApi, tmp_path: Path) -> None:
    session = cluster_target.ClusterSession(Options(target="cluster", variants=("container", "init"),
                                              results_dir=tmp_path, host_network=True), CATALOGUE)
    session.start()
    assert [n["metadata"]["name"] for n in session.nodes] == ["w1"]  # the node that is not Ready is left out
    cases = session.cases()
    labels = [c.item_name for c in cases]
    assert labels[:5] == ["node-features@w1[n/a]", "api-wrong-case[strict]", "api-unknown-value[Foo]",
                          "api-windows-pod[Strict]", "api-update-immutable[Merge->Strict]"]
    assert "blog-example[Strict]" in labels and "blog-example.init[Strict]" in labels
    assert not any(".sidecar" in x or "runtime-restart" in x or x.startswith("raw-") for x in labels)
    runner = session.runner()
    case = next(c for c in cases if c.item_name == "blog-example[Strict]")
    verdicted = runner.judge(case, runner.run(case))
    assert verdicted.judgement.verdict == Verdict.PASS, verdicted.judgement.detail
    created = next(c[1] for c in api.calls if c[0] == "create_pod" and not c[2]
                   and not c[1]["metadata"]["name"].startswith("sgp-images-"))
    assert created["spec"]["hostNetwork"] is True and "$$$$" in created["spec"]["containers"][0]["command"][2]
    context = session.worker_context()
    assert context["host_network"] is True and context["refs"]["agnhost-like"].startswith("localhost/sgpconf/")
    session.stop()
    assert ("delete_namespace", f"sgp-{session.run_id}") in api.calls
    assert json.dumps(session.results_extra())


def test_keep_leaves_pods_and_namespace(api: fk.FakeApi, tmp_path: Path) -> None:
    """KEEP=1 on TARGET=cluster: the cases' pods and the run's namespace stay, and the run says how to delete them;
    xdist workers keep theirs too. The node target refuses KEEP before anything starts."""
    session = cluster_target.ClusterSession(Options(target="cluster", variants=("container",), results_dir=tmp_path,
                                              keep=True), CATALOGUE)
    session.start()
    case = next(c for c in session.cases() if c.item_name == "blog-example[Strict]")
    session.runner().run(case)
    assert session.worker_context()["keep"] is True
    said: list[str] = []
    session.hold(said.append)
    session.stop()
    assert not [c for c in api.calls if c[0] in ("delete_pod", "delete_namespace")
                and not str(c[1]).startswith("sgp-images-")]  # the image probe pod is not a case's
    assert said == [f"KEEP=1: namespace sgp-{session.run_id} kept with the cases' pods; `sgp-conformance run "
                    "--target cluster --cleanup` (with the same KUBECONFIG) deletes it"]
    from conformance.targets import create_session

    with pytest.raises(InputError, match="KEEP: applies to TARGET=local, cluster and kind"):
        create_session(Options(target="node", keep=True), CATALOGUE)


def test_images_the_nodes_cannot_get_fail_the_run_once(api: fk.FakeApi, tmp_path: Path) -> None:
    """One probe pod per node before any case: an image a node cannot pull stops the run with the remedy, in one
    line; the probe pod is deleted either way."""
    session = cluster_target.ClusterSession(Options(target="cluster", results_dir=tmp_path), CATALOGUE)
    api.unpullable = {a.ref for a in catalogue_archives(CATALOGUE, session.opts.cache_dir) if a.name == "agnhost-like"}
    with pytest.raises(ProvisionError) as exc:
        session.start()
    message = str(exc.value)
    assert "\n" not in message and message.startswith("node w1 cannot get the test images: localhost/sgpconf/")
    assert "ErrImageNeverPull" in message and "IMAGE_REGISTRY" in message and "images export" in message
    probes = [c[1]["metadata"]["name"] for c in api.calls if c[0] == "create_pod"]
    assert len(probes) == 1 and ("delete_pod", probes[0]) in api.calls
    session.stop()


def test_nodes_option_is_checked(api: fk.FakeApi, tmp_path: Path) -> None:
    session = cluster_target.ClusterSession(Options(target="cluster", nodes="nosuch", results_dir=tmp_path), CATALOGUE)
    session.start()
    with pytest.raises(InputError, match="no such Linux node"):
        session.cases()
    session.stop()
    with pytest.raises(InputError, match="VARIANTS"):
        cluster_target.ClusterSession(Options(target="cluster", variants=("pods",)), CATALOGUE)


def test_kind_session_creates_checks_loads_and_deletes(api: fk.FakeApi, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = fakebin.install(tmp_path, monkeypatch)
    cell = cells.select(cells.load(), "containerd", "2.1")
    names = [f"{cell.cluster_name}-control-plane", f"{cell.cluster_name}-worker"]
    api.nodes = [fk.node(n, runtime=cell.expected_runtime_version, features={"supplementalGroupsPolicy": True})
                 for n in names]
    api.pods = {"coredns": {"metadata": {"name": "coredns"}, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}}}
    monkeypatch.setenv("FAKE_CRICTL_INFO", json.dumps({"features": {"supplemental_groups_policy": True}}))
    monkeypatch.setenv("FAKE_IMAGE_PRESENT", "1")
    monkeypatch.setenv("FAKE_VERSION_OUT", f"containerd containerd.io {cell.runtime_version} abc\n")
    monkeypatch.setenv("FAKE_KIND_VERSION", cell.kind)
    monkeypatch.setattr(kind_session.engine, "provide", lambda cache, state: Engine("unix:///fake.sock", "fake"))
    session = kind_session.KindSession(Options(target="kind", runtime="containerd", version="2.1", nodes="all",
                                           results_dir=tmp_path / "r", state_dir=tmp_path / "s",
                                           kind_bin=Path(shutil.which("kind") or "kind")), CATALOGUE)
    session.start()
    assert session.advertised == dict.fromkeys(names, True)
    assert sum(1 for c in fakebin.calls(log) if c["argv"][:2] == ["load", "image-archive"]) == len(
        CATALOGUE.image_names())
    assert len([c for c in session.cases() if c.check == "node-features"]) == 2
    session.failed = True
    session.stop()
    argvs = [c["argv"] for c in fakebin.calls(log)]
    assert any(a[:2] == ["export", "logs"] for a in argvs) and any(a[:2] == ["delete", "cluster"] for a in argvs)
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())  # the run's state folder went


def test_kind_session_mismatched_kind_release_is_one_line(api: fk.FakeApi, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fakebin.install(tmp_path, monkeypatch)
    monkeypatch.setattr(kind_session.engine, "provide", lambda cache, state: Engine("unix:///fake.sock", "fake"))
    session = kind_session.KindSession(Options(target="kind", runtime="containerd", version="2.1",
                                           results_dir=tmp_path / "r", state_dir=tmp_path / "s",
                                           kind_bin=Path(shutil.which("kind") or "kind")), CATALOGUE)
    with pytest.raises(ProvisionError, match=r"made for kind v0\.29\.0; this kind is v0\.30\.0 \(set KIND_BIN"):
        session.start()
    session.stop()

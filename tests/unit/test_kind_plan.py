"""DRY_RUN plans through the CLI: files written, plan printed, nothing executed."""

from __future__ import annotations

from pathlib import Path

import yaml

from conformance.front.cli import main
from tests.support.fakes import bin as fakebin


def plan(argv: list[str]) -> int:
    """A DRY_RUN through the one CLI, as `make conformance TARGET=kind DRY_RUN=1` runs it."""
    return main(["run", *([] if "--target" in argv else ["--target", "kind"]), *argv])


def fake_binaries(folder: Path) -> Path:
    """Placeholder Kubernetes, etcd and CRI-O binaries that only answer --version (and kubeadm's list)."""
    folder.mkdir(parents=True, exist_ok=True)
    answers = {n: "Kubernetes v1.36.2" for n in ("kubelet", "kubectl", "kube-apiserver", "kube-controller-manager",
                                                 "kube-scheduler")}
    answers.update({"etcd": "etcd Version: 3.5.16", "crio": "crio version 1.37.0", "pinns": "", "conmon": "",
                    "runc": "runc version 1.1.5"})
    for name, text in answers.items():
        (folder / name).write_text(f"#!/bin/sh\necho '{text}'\n")
        (folder / name).chmod(0o755)
    (folder / "kubeadm").write_text("#!/bin/sh\necho 'Kubernetes v1.36.2'\n")
    (folder / "kubeadm").chmod(0o755)
    return folder


def test_crio_plan_shows_the_build(tmp_path, monkeypatch, capsys):
    log = fakebin.install(tmp_path, monkeypatch)
    monkeypatch.setenv("SGP_CACHE_DIR", str(tmp_path / "cache"))
    bins = fake_binaries(tmp_path / "bins")
    out = tmp_path / "plan1"
    assert plan(["--target", "kind", "--runtime", "crio", "--crio-bin-dir", str(bins), "--k8s-bin-dir", str(bins),
                 "--etcd-bin", str(bins / "etcd"), "--nodes", "all", "--dry-run", "--results-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    folder = out / "plan" / "crio-1.37.0-k8s-1.36.2"
    for name in ("kind-config.yaml", "Dockerfile", "commands.txt", "expectations.txt"):
        assert (folder / name).is_file(), name
        assert name in printed
    config = yaml.safe_load((folder / "kind-config.yaml").read_text())
    assert [len(n["kubeadmConfigPatches"]) for n in config["nodes"]] == [1, 1]
    assert "unix:///var/run/crio/crio.sock" in printed and "built here" in printed
    assert "made with debootstrap at run time" in (folder / "Dockerfile").read_text()
    commands = (folder / "commands.txt").read_text().splitlines()
    phases = [line.split("]")[0].split("[")[1] for line in commands]
    order = ["Engine", "Preflight", "BuildImage", "Up", "Ready", "VerifyRuntime", "Test", "DumpLogs", "Down"]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == order
    assert any("docker build" in c and "DOCKER_BUILDKIT=0" in c for c in commands)
    assert any("docker save" in c for c in commands) and any("docker load" in c for c in commands)
    assert not any("kind load" in c for c in commands)  # built node images carry the test images
    assert "--retain" in printed and "--kubeconfig" in printed
    assert fakebin.calls(log) == []  # nothing ran
    assert not list((tmp_path / "cache").glob("kind/base-*"))  # and nothing was built


def test_built_cell_without_k8s_bin_dir_is_one_line(tmp_path, monkeypatch, capsys):
    """Without K8S_BIN_DIR a built cell takes Kubernetes' release binaries: where they cannot be had, one line
    naming the file and both ways."""
    monkeypatch.setenv("K8S_RELEASE_URL", "http://127.0.0.1:9/release")  # nothing listens there
    monkeypatch.setenv("SGP_CACHE_DIR", str(tmp_path / "cache"))
    assert plan(["--runtime", "crio", "--version", "1.34.2", "--crio-bin-dir", str(fake_binaries(tmp_path / "b")),
                 "--dry-run", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "http://127.0.0.1:9/release/" in err and "K8S_BIN_DIR" in err and "K8S=" in err


def test_containerd_stock_plan_loads_with_kind(tmp_path, monkeypatch, capsys):
    log = fakebin.install(tmp_path, monkeypatch)
    monkeypatch.setenv("DRY_RUN", "1")
    assert plan(["--target", "kind", "--runtime", "containerd", "--version", "2.1", "--results-dir",
                 str(tmp_path / "p")]) == 0
    folder = tmp_path / "p" / "plan" / "containerd-2.1-k8s-1.33"
    commands = (folder / "commands.txt").read_text()
    assert "kind load image-archive" in commands and "containerd://2.1." in commands and "docker pull" in commands
    assert "crictl info" in commands
    assert fakebin.calls(log) == []


def test_alpha_cell_expects_unsupported_not_rejected(tmp_path, capsys):
    assert plan(["--runtime", "containerd", "--version", "1.7", "--k8s", "1.32", "--dry-run", "--results-dir",
                 str(tmp_path)]) == 0
    expect = (tmp_path / "plan" / "containerd-1.7-k8s-1.32" / "expectations.txt").read_text()
    assert "[Strict]: unsupported" in expect and "rejected" not in expect
    config = yaml.safe_load((tmp_path / "plan" / "containerd-1.7-k8s-1.32" / "kind-config.yaml").read_text())
    assert config["featureGates"] == {"SupplementalGroupsPolicy": True}


def test_bad_selection_exits_2(tmp_path, capsys):
    assert plan(["--runtime", "crio", "--version", "9.9", "--dry-run", "--results-dir", str(tmp_path)]) == 2
    assert "no cell" in capsys.readouterr().err
    # no RUNTIME: containerd, as a run without it does (newest stock cell)
    assert plan(["--target", "kind", "--dry-run", "--results-dir", str(tmp_path / "default")]) == 0
    assert [p.name for p in (tmp_path / "default" / "plan").iterdir()] == ["containerd-2.2-k8s-1.35"]


def test_dry_run_on_a_target_without_a_plan_starts_nothing(tmp_path, monkeypatch, capsys):
    """DRY_RUN=1 on TARGET=node or local (no plan to print): refused in one line naming DRY_RUN, exit 2, no
    runtime, cluster or state folder started."""
    monkeypatch.setenv("SGP_STATE_DIR", str(tmp_path / "state"))
    for target in ("node", "local"):
        assert main(["run", "--target", target, "--dry-run", "--results-dir", str(tmp_path / target)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "DRY_RUN=1" in err and f"TARGET={target}" in err, err
    assert not (tmp_path / "state").exists() or list((tmp_path / "state").iterdir()) == []

"""DRY_RUN plans through the CLI: files written, plan printed, nothing executed."""

from __future__ import annotations

import yaml

from conformance.targets import without_cases
from tests.fakes import bin as fakebin


def plan(argv: list[str]) -> int | None:
    return without_cases("kind", argv)


def test_crio_plan(tmp_path, monkeypatch, capsys):
    log = fakebin.install(tmp_path, monkeypatch)
    out = tmp_path / "plan1"
    assert plan(["--target", "kind", "--runtime", "crio", "--version", "1.34", "--dry-run",
                 "--results-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    folder = out / "plan" / "crio-1.34-k8s-1.34"
    for name in ("kind-config.yaml", "Dockerfile", "build-args", "commands.txt", "expectations.txt"):
        assert (folder / name).is_file(), name
        assert name in printed
    config = yaml.safe_load((folder / "kind-config.yaml").read_text())
    assert len(config["kubeadmConfigPatches"]) == 2 and "unix:///var/run/crio/crio.sock" in printed
    assert "CRIO_VERSION=1.34." in (folder / "build-args").read_text()
    commands = (folder / "commands.txt").read_text().splitlines()
    phases = [line.split("]")[0].split("[")[1] for line in commands]
    order = ["Preflight", "BuildImage", "Up", "Ready", "VerifyRuntime", "LoadImages", "Test", "DumpLogs", "Down"]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == order
    assert any("containers-storage:" in c and "docker exec -i" in c for c in commands)
    assert not any("kind load" in c for c in commands)
    assert "--retain" in printed and "--kubeconfig" in printed
    assert fakebin.calls(log) == []  # nothing ran


def test_containerd_17_plan_expects_rejection(tmp_path, monkeypatch, capsys):
    log = fakebin.install(tmp_path, monkeypatch)
    monkeypatch.setenv("DRY_RUN", "1")
    assert plan(["--target", "kind", "--runtime", "containerd", "--version", "1.7", "--results-dir",
                 str(tmp_path / "p")]) == 0
    folder = tmp_path / "p" / "plan" / "containerd-1.7-k8s-1.34"
    expect = (folder / "expectations.txt").read_text().splitlines()
    strict = [line for line in expect if "[Strict]" in line]
    assert strict and all(line.endswith(": rejected") for line in strict)
    assert not any(line.endswith(": rejected") for line in expect if "[Strict]" not in line)
    assert "CONTAINERD_VERSION=1.7." in (folder / "build-args").read_text()
    commands = (folder / "commands.txt").read_text()
    assert "kind load image-archive" in commands and "containerd://1.7." in commands
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
    assert plan(["--target", "kind", "--dry-run"]) == 2

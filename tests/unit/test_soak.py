"""make soak's arithmetic: which cases flipped and how often, every error with its reason, the exit code;
the CPU hog goes with the soak."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.tools import soak


def run(index: int, verdicts: dict[str, str], errors: dict[str, str] | None = None) -> soak.SoakRun:
    return soak.SoakRun(index, 1 if errors else 0, 10.0, verdicts, "containerd 2.1.9", errors=errors or {})


def test_flips_and_errors_are_counted_per_case(tmp_path: Path, capsys) -> None:
    runs = [run(1, {"a[Merge]": "pass", "b[Strict]": "pass"}),
            run(2, {"a[Merge]": "error", "b[Strict]": "pass"}, {"a[Merge]": "ProbeError: no block"}),
            run(3, {"a[Merge]": "pass", "b[Strict]": "pass"})]
    assert soak.flips(runs) == {"a[Merge]": ["pass", "error", "pass"]}
    assert soak.summarise(runs, tmp_path, [], load=2) == 1
    out = capsys.readouterr().out
    assert "flip: a[Merge]: 2 change(s)" in out and "error in run 2: a[Merge]: ProbeError: no block" in out
    doc = json.loads((tmp_path / "soak.json").read_text())
    assert doc["errors"] == [{"run": 2, "case": "a[Merge]", "detail": "ProbeError: no block"}] and doc["load"] == 2
    steady = [run(i, {"a[Merge]": "pass"}) for i in (1, 2)]
    assert soak.summarise(steady, tmp_path, [], load=0) == 0


def test_the_default_runtime_is_only_the_node_target_s() -> None:
    assert soak.option(["--target", "kind", "--runtime", "crio"], "--target") == "kind"
    assert soak.option(["--target=local"], "--target") == "local"
    assert soak.option(["-n", "2"], "--target") is None


def test_each_run_keeps_its_own_results_folder(monkeypatch) -> None:
    monkeypatch.setenv("RESULTS_DIR", "/tmp/elsewhere")
    monkeypatch.setenv("VERSION", "1.7")
    flags = soak.run_flags(["--options-from-env", "-k", "blog", "--results-dir=/x"])
    assert soak.option(flags, "--results-dir") is None and soak.option(flags, "--version") == "1.7"
    assert flags[:2] == ["-k", "blog"]


def test_the_cpu_hog_is_gone_afterwards() -> None:
    with soak.cpu_load(2) as hogs:
        assert len(hogs) == 2 and all(h.poll() is None for h in hogs)
        pids = [h.pid for h in hogs]
    assert all(h.returncode is not None for h in hogs)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_cluster_s_new_node_names_are_not_flips(tmp_path: Path) -> None:
    """TARGET=local names its node anew each run: node-features@<node> is the same case every run."""
    for index, node in enumerate(("sgp-node-4ec4f28a", "sgp-node-936d1850")):
        doc = {"runtime": {}, "kubernetes": {"nodes": {node: {}}},
               "cases": [{"scenario": f"node-features@{node}", "policy": "n/a", "verdict": "pass"}]}
        (tmp_path / f"{index}.json").write_text(json.dumps(doc))
    first, second = (soak.read_verdicts(tmp_path / f"{i}.json") for i in (0, 1))
    assert first is not None and second is not None and first[0] == second[0] == {"node-features@node1[n/a]": "pass"}

"""make soak's arithmetic: which cases flipped and how often, every error with its reason, the exit code;
the CPU hog goes with the soak."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conformance import soak


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


def test_the_cpu_hog_is_gone_afterwards() -> None:
    with soak.cpu_load(2):
        hogs = [p for p in os.listdir("/proc") if p.isdigit() and soak.HOG.encode() in
                Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(hogs) >= 2
    assert not any(Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"
                   for p in hogs)

"""Merging cell folders into one matrix (conformance.report.collect) and the report entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.report import build, collect
from conformance.report.__main__ import main as report_main
from conformance.report.describe import expected_text, observed_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    dest = tmp_path / "results"
    shutil.copytree(FIXTURES, dest)
    return dest


def test_cells_in_index_order_with_worst_exit(results: Path) -> None:
    matrix = collect(results)
    assert [c.id for c in matrix.cells] == ["containerd-1.7+runc", "containerd-2+runc", "crio-opt-crio-bin"]
    assert [c.exit_code for c in matrix.cells] == [0, 2, 2]
    assert matrix.exit_code == 2
    assert matrix.cells[0].label == "containerd 1.7.24~ds1 (runc)"
    assert matrix.cells[1].counts == {"pass": 4, "fail": 1, "unsupported": 0, "known-failure": 0, "rejected": 0,
                                      "error": 1}


def test_rows_are_scenario_then_policy_order(results: Path) -> None:
    rows = [(r.scenario, r.policy) for r in collect(results).rows]
    assert rows[:3] == [("blog-example", "unset"), ("blog-example", "Merge"), ("blog-example", "Strict")]
    assert len(rows) == 6


def test_crashed_cell_is_an_error_never_a_pass(results: Path) -> None:
    crio = collect(results).cells[2]
    assert (crio.status, crio.exit_code, crio.cases) == ("crashed", 2, {})
    assert crio.label == "crio@/opt/crio/bin" and "signal 9" in crio.message


def test_cell_json_claiming_success_without_results_is_an_error(results: Path) -> None:
    folder = results / "containerd-1.6+runc"
    folder.mkdir()
    (folder / "cell.json").write_text(json.dumps({"status": "complete", "exit_code": 0, "index": 9}))
    cell = collect(results).cells[-1]
    assert (cell.id, cell.status, cell.exit_code) == ("containerd-1.6+runc", "crashed", 2)


def test_results_without_cell_json_use_the_recorded_exit_code(results: Path) -> None:
    (results / "containerd-1.7+runc" / "cell.json").unlink()
    (results / "containerd-2+runc" / "cell.json").unlink()
    cells = {c.id: c for c in collect(results).cells}
    assert cells["containerd-1.7+runc"].exit_code == 0 and cells["containerd-2+runc"].exit_code == 2


def test_unreadable_or_empty_results_are_errors(results: Path) -> None:
    (results / "containerd-1.7+runc" / "results.json").write_text("{not json")
    empty = results / "zz-empty"
    empty.mkdir()
    (empty / "results.json").write_text(json.dumps({"schema": 1, "cases": [], "summary": {"exit_code": 0}}))
    cells = {c.id: c for c in collect(results).cells}
    assert cells["containerd-1.7+runc"].exit_code == 2 and "unreadable" in cells["containerd-1.7+runc"].message
    assert cells["zz-empty"].exit_code == 2


def test_order_selects_cells_and_marks_missing_ones(results: Path) -> None:
    matrix = collect(results, ["containerd-2+runc", "containerd-9"])
    assert [(c.id, c.status, c.exit_code) for c in matrix.cells] == [
        ("containerd-2+runc", "complete", 2), ("containerd-9", "not-run", 2)]


def test_matrix_json_shape(results: Path) -> None:
    _, paths = build(results)
    doc = json.loads(paths["json"].read_text())
    assert doc["exit_code"] == 2 and len(doc["cells"]) == 3 and len(doc["cases"]) == 6
    strict = next(c for c in doc["cases"] if (c["scenario"], c["policy"]) == ("blog-example", "Strict"))
    assert set(strict["results"]) == {"containerd-1.7+runc", "containerd-2+runc"}
    failed = strict["results"]["containerd-2+runc"]
    assert failed["verdict"] == "fail" and failed["expected_text"] == "uid=1000 gid=3000 groups=3000,4000"
    assert any("groups=3000,4000,50000" in line for line in failed["observed_text"])
    assert strict["source"].startswith("Kubernetes v1.35 blog")


def test_describe_handles_errors_and_absent_evidence() -> None:
    assert expected_text({"error": "CreateContainer"}) == "CreateContainer fails"
    assert expected_text({}) == "(none recorded)"
    lines = dict(observed_lines({"create_error": "refused", "first_process": None, "status_user": None}))
    assert lines == {"CreateContainer error": "refused", "CRI status user": "absent"}
    assert observed_lines({}) == [("observed", "(nothing recorded)")]


def test_report_entry_point_regenerates(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main([str(results)]) == 2
    assert report_main([str(results), "--exit-zero"]) == 0
    assert report_main([str(results), "--cells", "containerd-1.7+runc"]) == 0
    assert "containerd-1.7+runc: containerd 1.7.24~ds1 (runc)" in capsys.readouterr().out
    for name in ("matrix.json", "matrix.md", "matrix.html"):
        assert (results / name).stat().st_size > 0


def test_report_entry_point_without_cells(tmp_path: Path) -> None:
    assert report_main([str(tmp_path)]) == 2
    assert report_main([str(tmp_path / "missing")]) == 2


def test_python_dash_m(results: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "conformance.report", str(results)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "matrix: exit 2" in proc.stdout

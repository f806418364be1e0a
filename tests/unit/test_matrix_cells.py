"""Cell syntax, exit-code rules and progress parsing of conformance.tools.matrix (no runtime needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.tools.matrix import DEFAULT_CELLS, CellRun, conclude, last_error, parse_cell, parse_cells, worst


@pytest.mark.parametrize(
    ("spec", "cell_id", "flags"),
    [
        ("containerd-1.7", "containerd-1.7", ["--runtime", "containerd", "--version", "1.7"]),
        ("containerd-2.1+crun", "containerd-2.1+crun",
         ["--runtime", "containerd", "--version", "2.1", "--handler", "crun"]),
        ("containerd-v2.x+runc", "containerd-2+runc",
         ["--runtime", "containerd", "--version", "2", "--handler", "runc"]),
        ("containerd-1.7.24", "containerd-1.7.24", ["--runtime", "containerd", "--version", "1.7.24"]),
        ("containerd", "containerd", ["--runtime", "containerd"]),
        ("containerd@/opt/ctd/bin", "containerd-opt-ctd-bin",
         ["--runtime", "containerd", "--containerd-bin-dir", "/opt/ctd/bin"]),
        ("crio@/path/to/bin", "crio-path-to-bin", ["--runtime", "crio", "--crio-bin-dir", "/path/to/bin"]),
        ("crio@/path/to/bin+crun", "crio-path-to-bin+crun",
         ["--runtime", "crio", "--crio-bin-dir", "/path/to/bin", "--handler", "crun"]),
        ("socket@unix:///run/x.sock", "socket-unix-run-x.sock", ["--cri-endpoint", "unix:///run/x.sock"]),
        ("socket@/run/containerd/containerd.sock+crun", "socket-run-containerd-containerd.sock+crun",
         ["--cri-endpoint", "/run/containerd/containerd.sock", "--handler", "crun"]),
        ("crio-1.34", "crio-1.34", ["--runtime", "crio", "--version", "1.34"]),
        ("crio-v1.34.2+crun", "crio-1.34.2+crun", ["--runtime", "crio", "--version", "1.34.2", "--handler", "crun"]),
        ("local:containerd-2", "local-containerd-2",
         ["--target", "local", "--runtime", "containerd", "--version", "2"]),
        ("local:crio@/opt/crio/bin+runc", "local-crio-opt-crio-bin+runc",
         ["--target", "local", "--runtime", "crio", "--crio-bin-dir", "/opt/crio/bin", "--handler", "runc"]),
        ("kind:containerd-1.7", "kind-containerd-1.7", ["--target", "kind", "--runtime", "containerd", "--version",
                                                         "1.7"]),
        ("kind:crio@/opt/crio/bin", "kind-crio-opt-crio-bin",
         ["--target", "kind", "--runtime", "crio", "--crio-bin-dir", "/opt/crio/bin"]),
    ],
)
def test_parse_cell(spec: str, cell_id: str, flags: list[str]) -> None:
    cell = parse_cell(spec)
    assert cell.id == cell_id
    assert cell.flags() == flags
    assert "/" not in cell.id and " " not in cell.id


@pytest.mark.parametrize("spec", ["docker-20", "containerd-abc", "containerd-1.7+", "crio", "crio@",
                                  "socket@relative.sock", "kata@/x", "containerd-1.7+cr/un", "crio-1",
                                  "local:socket@unix:///run/x.sock", "crio-abc", "kind:socket@/run/x.sock",
                                  "other:containerd-2"])
def test_parse_cell_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="cell"):
        parse_cell(spec)


def test_default_cells_are_containerd_16_17_2_with_runc() -> None:
    cells = parse_cells("")
    assert [c.spec for c in cells] == list(DEFAULT_CELLS)
    assert [c.version for c in cells] == ["1.6", "1.7", "2"]
    assert {c.handler for c in cells} == {"runc"}
    assert parse_cells(None) == cells


def test_parse_cells_separators_and_duplicates() -> None:
    cells = parse_cells(" containerd-2.1+crun,crio@/opt/crio\n socket@unix:///run/x.sock ")
    assert [c.kind for c in cells] == ["containerd", "crio", "socket"]
    with pytest.raises(ValueError, match="twice"):
        parse_cells("containerd-1.7 containerd-v1.7")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0, 0, 0], 0), ([0, 1, 0], 1), ([1, 2, 0], 2), ([2, 1], 2), ([0, -9], 2), ([0, 5], 2), ([], 2), ([1], 1)],
)
def test_worst_cell_wins(codes: list[int], expected: int) -> None:
    assert worst(codes) == expected


def test_feed_parses_progress_and_runtime_lines(tmp_path: Path) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    assert run.feed("runtime: containerd 2.1.9+unknown (started by the suite); ready in 2.5s") is None
    assert run.runtime == "containerd 2.1.9"
    assert run.feed("[ 3/30] PASS          blog-example[Merge] 0.30s") == "PASS"
    assert (run.done, run.total, run.failed) == (3, 30, 0)
    assert run.feed("[ 4/30] FAIL          blog-example[Strict] 0.30s  first process: groups") == "FAIL"
    assert run.feed("[5/?] ERROR         x[unset] 0.1s") == "ERROR"
    assert (run.done, run.total, run.failed, run.errors) == (5, 30, 1, 1)
    assert run.feed("[ 6/30] KNOWN-FAILURE x[Merge] 0.1s") == "KNOWN-FAILURE"
    assert run.feed("summary: 30 cases: 30 pass in 15.6s; exit 0") is None
    line = run.status_line()
    assert "containerd-2" in line and "6/30 cases" in line and "1 failed" in line and "1 errors" in line


def _results(folder: Path, code: int, counts: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"schema": 1, "runtime": None, "cases": [], "summary": {"total": 1, "counts": counts, "exit_code": code}}
    (folder / "results.json").write_text(json.dumps(doc))


def test_conclude_uses_worst_of_child_and_results(tmp_path: Path) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    _results(tmp_path, 1, {"fail": 1})
    run.returncode = 0
    conclude(run)
    assert (run.state, run.exit_code, run.counts) == ("complete", 1, {"fail": 1})


@pytest.mark.parametrize(("rc", "message"), [(-9, "killed by signal 9"), (3, "exited 3"), (None, "did not run")])
def test_a_crashed_child_is_an_error_even_with_passing_results(tmp_path: Path, rc: int | None, message: str) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    _results(tmp_path, 0, {"pass": 1})
    run.returncode = rc
    conclude(run)
    assert (run.state, run.exit_code, run.message) == ("crashed", 2, message)


def test_missing_results_is_an_error_even_with_exit_zero(tmp_path: Path) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    run.returncode = 0
    conclude(run)
    assert (run.state, run.exit_code) == ("crashed", 2)
    assert "without results.json" in run.message


def test_interrupted_cell_is_an_error(tmp_path: Path) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    _results(tmp_path, 0, {"pass": 3})
    run.returncode, run.state = 2, "interrupted"
    conclude(run)
    assert (run.state, run.exit_code) == ("interrupted", 2)


def test_crash_message_names_the_childs_last_error(tmp_path: Path) -> None:
    run = CellRun(parse_cell("containerd-2"), tmp_path)
    for line in ("runtime: containerd 2.1.9 (started by the suite)", "[1/3] PASS          a[Merge] 0.1s",
                 "INTERNALERROR>     os.mkdir(self, mode)", "INTERNALERROR> FileExistsError: [Errno 17] File exists",
                 "", "1 error in 0.3s"):
        run.feed(line)
    run.returncode = 3
    conclude(run)
    assert run.message == "exited 3; INTERNALERROR> FileExistsError: [Errno 17] File exists"
    assert last_error(["error: HANDLER=crun: not installed", "bye"]) == "error: HANDLER=crun: not installed"
    assert last_error(["[ 1/3] PASS          a[Merge] 0.1s"]) == ""

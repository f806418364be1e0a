"""conformance.tools.matrix orchestration against fake cells (small Python children, no runtime)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import conformance.tools.matrix as matrix_mod
from conformance.tools.matrix import CellRun, Display, LiveDisplay, Matrix, parse_cell

FAKE_CHILD = textwrap.dedent('''
    import json, os, signal, sys, time
    mode, folder = sys.argv[1], sys.argv[2]
    os.makedirs(folder, exist_ok=True)

    def results(verdicts, code):
        cases = [{"scenario": f"s{i}", "policy": "Merge", "verdict": v, "expected": {"uid": 1, "gid": 1,
                  "groups": [1]}, "observed": {}, "detail": "", "source": "fake"} for i, v in enumerate(verdicts)]
        counts = {}
        for v in verdicts:
            counts[v] = counts.get(v, 0) + 1
        doc = {"schema": 1, "runtime": {"name": "fake", "version": "1.0"}, "cases": cases,
               "summary": {"total": len(cases), "counts": counts, "exit_code": code}}
        with open(os.path.join(folder, "results.json"), "w") as fh:
            json.dump(doc, fh)

    def on_term(signum, frame):
        open(os.path.join(folder, "cleaned"), "w").close()
        results(["pass"], 0)
        sys.exit(2)

    print("runtime: fake 1.0+unknown (started by the suite); ready in 0.01s", flush=True)
    with open(os.path.join(folder, "started"), "w") as fh:
        fh.write(str(time.monotonic()))
    if mode == "pass":
        for i in range(3):
            print(f"[{i + 1}/3] PASS          s{i}[Merge] 0.01s", flush=True)
        results(["pass"] * 3, 0)
    elif mode == "fail":
        print("[1/2] PASS          s0[Merge] 0.01s", flush=True)
        print("[2/2] FAIL          s1[Merge] 0.01s  groups differ", flush=True)
        results(["pass", "fail"], 1)
        sys.exit(1)
    elif mode == "crash":
        print("[1/3] PASS          s0[Merge] 0.01s", flush=True)
        results(["pass"], 0)
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "noresults":
        pass
    elif mode in ("sleep", "stubborn"):
        signal.signal(signal.SIGTERM, on_term if mode == "sleep" else signal.SIG_IGN)
        open(os.path.join(folder, "waiting"), "w").close()
        time.sleep(30)
    with open(os.path.join(folder, "finished"), "w") as fh:
        fh.write(str(time.monotonic()))
''')


@pytest.fixture
def fake(tmp_path: Path):
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)

    def argv_for(cell, folder: Path, extra: list[str]) -> list[str]:
        return [sys.executable, str(script), MODES[cell.id], str(folder), *extra]

    return argv_for


MODES = {
    "containerd-1.1": "pass",
    "containerd-1.2": "fail",
    "containerd-1.3": "crash",
    "containerd-1.4": "noresults",
    "containerd-1.5": "sleep",
    "containerd-1.6": "stubborn",
    "containerd-1.7": "pass",
}


def _runs(tmp_path: Path, *ids: str) -> list[CellRun]:
    return [CellRun(parse_cell(i), tmp_path / "results" / i) for i in ids]


def _run(runs: list[CellRun], argv_for, jobs: int = 3, on_start=None) -> tuple[Matrix, str]:
    out = io.StringIO()
    matrix = Matrix(runs, jobs, [], Display(out, runs), argv_for=argv_for)

    async def go() -> None:
        task = asyncio.ensure_future(matrix.run())
        if on_start:
            await on_start(matrix)
        await task

    asyncio.run(go())
    return matrix, out.getvalue()


def test_pass_fail_crash_and_missing_results(tmp_path: Path, fake) -> None:
    runs = _runs(tmp_path, "containerd-1.1", "containerd-1.2", "containerd-1.3", "containerd-1.4")
    _, out = _run(runs, fake)
    got = {r.cell.id: (r.state, r.exit_code) for r in runs}
    assert got == {"containerd-1.1": ("complete", 0), "containerd-1.2": ("complete", 1),
                   "containerd-1.3": ("crashed", 2), "containerd-1.4": ("crashed", 2)}
    assert runs[0].runtime == "fake 1.0" and runs[0].done == 3 and runs[1].failed == 1
    assert matrix_mod.worst([r.exit_code for r in runs]) == 2
    cell = json.loads((runs[2].folder / "cell.json").read_text())
    assert (cell["status"], cell["exit_code"], cell["returncode"]) == ("crashed", 2, -9)
    assert "[2/2] FAIL" in (runs[1].folder / "output.log").read_text()
    assert "containerd-1.2: 2/2 FAIL s1[Merge] 0.01s groups differ; 1 failed so far" in out


def test_a_cell_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    runs = _runs(tmp_path, "containerd-1.1")
    _run(runs, lambda cell, folder, extra: [str(tmp_path / "no-such-program")])
    assert (runs[0].state, runs[0].exit_code) == ("crashed", 2)
    assert runs[0].message.startswith("could not run: FileNotFoundError")
    assert json.loads((runs[0].folder / "cell.json").read_text())["status"] == "crashed"


def test_stale_results_never_count(tmp_path: Path, fake) -> None:
    runs = _runs(tmp_path, "containerd-1.4")
    runs[0].folder.mkdir(parents=True)
    (runs[0].folder / "results.json").write_text(json.dumps({"summary": {"exit_code": 0, "counts": {"pass": 9}}}))
    _run(runs, fake)
    assert (runs[0].state, runs[0].exit_code) == ("crashed", 2)


def test_concurrency_is_bounded(tmp_path: Path, fake) -> None:
    runs = _runs(tmp_path, "containerd-1.1", "containerd-1.7")
    _run(runs, fake, jobs=1)
    first, second = (float((r.folder / n).read_text()) for r, n in ((runs[0], "finished"), (runs[1], "started")))
    assert first <= second


async def _signal_when_waiting(matrix: Matrix, signals: int = 1) -> None:
    deadline = time.monotonic() + 20
    while not all((r.folder / "waiting").exists() for r in matrix.runs if MODES[r.cell.id] in ("sleep", "stubborn")):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    for _ in range(signals):
        matrix.on_signal(signal.SIGTERM)


def test_sigterm_reaches_every_child_and_is_an_error(tmp_path: Path, fake) -> None:
    runs = _runs(tmp_path, "containerd-1.5", "containerd-1.1", "containerd-1.7")
    started = time.monotonic()
    matrix, out = _run(runs, fake, jobs=2, on_start=_signal_when_waiting)
    assert time.monotonic() - started < 15
    assert (runs[0].folder / "cleaned").exists()
    assert runs[0].state == "interrupted" and runs[0].exit_code == 2
    assert runs[2].state in ("not-run", "complete", "interrupted")  # depends on when the signal came
    assert matrix.signals == 1 and "stopping the cells" in out
    assert not matrix.procs


def test_second_signal_kills_a_stubborn_cell(tmp_path: Path, fake) -> None:
    runs = _runs(tmp_path, "containerd-1.6")
    started = time.monotonic()
    _run(runs, fake, on_start=lambda m: _signal_when_waiting(m, signals=2))
    assert time.monotonic() - started < 10
    assert (runs[0].state, runs[0].exit_code, runs[0].returncode) == ("interrupted", 2, -signal.SIGKILL)


def test_grace_period_then_kill(tmp_path: Path, fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix_mod, "GRACE_SECONDS", 0.5)
    runs = _runs(tmp_path, "containerd-1.6")
    _run(runs, fake, on_start=_signal_when_waiting)
    assert (runs[0].state, runs[0].returncode) == ("interrupted", -signal.SIGKILL)


def test_live_display_redraws_one_line_per_cell(tmp_path: Path) -> None:
    runs = _runs(tmp_path, "containerd-1.1", "containerd-1.7")
    out = io.StringIO()
    live = LiveDisplay(out, runs)
    live.tick()
    runs[0].feed("[ 1/3] FAIL          s0[Merge] 0.01s")
    live.tick()
    text = out.getvalue()
    assert text.count("\x1b[2K") == 4 and "\x1b[2F" in text
    assert "1/3 cases  1 failed" in text


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_main_end_to_end_with_sigint(tmp_path: Path) -> None:
    """The real entry point in its own process: Ctrl-C stops and waits for the cells, then reports, exit 2."""
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)
    results = tmp_path / "results"
    driver = textwrap.dedent(f'''
        import sys
        import conformance.tools.matrix as m
        modes = {{"containerd-1.1": "pass", "containerd-1.5": "sleep"}}
        m.child_argv = lambda cell, folder, extra: [sys.executable, {str(script)!r}, modes[cell.id], str(folder)]
        sys.exit(m.main(["--cells", "containerd-1.1 containerd-1.5", "--results-dir", {str(results)!r}]))
    ''')
    env = {**os.environ, "CI": "true"}
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, text=True)
    deadline = time.monotonic() + 20
    done = results / "containerd-1.1" / "cell.json"
    while not (results / "containerd-1.5" / "waiting").exists() or '"complete"' not in _read(done):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert (results / "containerd-1.5" / "cleaned").exists()
    doc = json.loads((results / "matrix.json").read_text())
    assert [(c["id"], c["status"], c["exit_code"]) for c in doc["cells"]] == [
        ("containerd-1.1", "complete", 0), ("containerd-1.5", "interrupted", 2)]
    assert "matrix: SIGINT" in out and "matrix: exit 2" in out
    assert (results / "matrix.html").exists() and (results / "matrix.md").exists()

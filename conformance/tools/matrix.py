"""`make matrix`: run the catalogue against several runtime cells side by side, then merge one report.

Each cell is its own `sgp-conformance run` child process writing RESULTS_DIR/<cell-id>/; at most
--jobs cells run at once. Exit code: the worst cell wins (2 error > 1 conformance failure > 0).

Cell syntax (CELLS, separated by spaces or commas), each optionally followed by `+<handler>` and
optionally preceded by `local:` (TARGET=local: the same runtime under a private kubelet and API server) or
`kind:` (TARGET=kind: a kind cluster whose node image carries that runtime; K8S_BIN_DIR builds it here):
  containerd-<version>   a private containerd (2 = newest 2.x, 2.1, 1.7, 1.6 or exact)
  containerd@<bin-dir>   a private containerd from your binaries
  crio-<version>         a private CRI-O from its static bundle (1.34 = newest 1.34.z, or exact; downloaded)
  crio@<bin-dir>         a private CRI-O from your binaries (crio, pinns, conmon)
  socket@<endpoint>      an already running runtime, e.g. socket@unix:///run/containerd/containerd.sock
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from conformance.core.options import FLAGS

DEFAULT_CELLS = ("containerd-1.6+runc", "containerd-1.7+runc", "containerd-2+runc")
CELL_FILE = "cell.json"  # the same name conformance.report reads
GRACE_SECONDS = 60.0  # after SIGTERM, how long a cell may take to clean up before SIGKILL
PROGRESS_LINE = re.compile(r"^\[\s*(\d+)/(\d+|\?)\]\s+([A-Z-]+)\s+(\S+)")
RUNTIME_LINE = re.compile(r"(?:^|; )runtime: (\S+) (\S+)")  # the node header, or inside a local cluster's
HANDLER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
VERSION = re.compile(r"\d+(\.\d+){0,2}")


@dataclass(frozen=True)
class Cell:
    """One runtime cell as CELLS names it."""

    spec: str
    kind: str  # containerd | crio | socket
    version: str = ""  # containerd-<version>, crio-<version>
    location: str = ""  # bin dir (containerd@, crio@) or CRI endpoint (socket@)
    handler: str = ""
    target: str = "node"  # node | local | kind

    @property
    def id(self) -> str:
        """A folder name: 'containerd-2.1+crun', 'crio-opt-crio-bin', 'local-containerd-2', 'socket-unix-run-x.sock'."""
        if not self.location:
            base = f"{self.kind}-{self.version}" if self.version else self.kind
        else:
            base = f"{self.kind}-" + (re.sub(r"[^A-Za-z0-9.]+", "-", self.location).strip("-.") or "default")
        prefix = "" if self.target == "node" else f"{self.target}-"
        return prefix + base + (f"+{self.handler}" if self.handler else "")

    def flags(self) -> list[str]:
        """The `sgp-conformance run` options for this cell."""
        if self.kind == "socket":
            out = ["--cri-endpoint", self.location]
        elif self.location:
            out = ["--runtime", self.kind, f"--{self.kind}-bin-dir", self.location]
        else:
            out = ["--runtime", self.kind] + (["--version", self.version] if self.version else [])
        target = [] if self.target == "node" else ["--target", self.target]
        return target + out + (["--handler", self.handler] if self.handler else [])


def parse_cell(spec: str) -> Cell:
    """'containerd-2.1+crun' -> Cell; ValueError with the accepted forms otherwise."""
    text = spec.strip()
    target, colon, rest = text.partition(":")
    if not colon or target not in ("local", "kind"):
        target, rest = "node", text
    body, plus, handler = rest.rpartition("+")
    if not plus or not HANDLER.fullmatch(handler):
        body, handler = rest, ""
    if "@" in body:
        kind, _, location = body.partition("@")
        if kind in ("containerd", "crio", "socket") and location:
            if kind == "socket" and "://" not in location and not location.startswith("/"):
                raise ValueError(f"cell {spec!r}: socket@ needs an endpoint like unix:///run/x.sock")
            if kind == "socket" and target != "node":
                raise ValueError(f"cell {spec!r}: a {target} cell starts its own runtime; socket@ cannot be {target}")
            return Cell(text, kind, location=location, handler=handler, target=target)
    elif body == "containerd":
        return Cell(text, "containerd", handler=handler, target=target)
    elif body.startswith(("containerd-", "crio-")):
        kind, _, version = body.partition("-")
        version = version.removeprefix("v").removesuffix(".x")
        if VERSION.fullmatch(version) and (kind == "containerd" or version.count(".") >= 1):
            return Cell(text, kind, version=version, handler=handler, target=target)
    raise ValueError(f"cell {spec!r}: use containerd-<version>, containerd@<bin-dir>, crio-<version>, crio@<bin-dir> "
                     "or socket@<endpoint>, each optionally +<handler> and local: or kind: in front "
                     "(e.g. containerd-2.1+crun, local:crio@/opt/crio/bin, kind:containerd-1.7)")


def parse_cells(text: str | None) -> list[Cell]:
    """CELLS (spaces or commas between cells); empty -> the default containerd 1.6, 1.7, 2.x with runc."""
    specs = [s for s in re.split(r"[\s,]+", text or "") if s] or list(DEFAULT_CELLS)
    cells = [parse_cell(s) for s in specs]
    seen: set[str] = set()
    for cell in cells:
        if cell.id in seen:
            raise ValueError(f"cell {cell.spec!r} appears twice (id {cell.id})")
        seen.add(cell.id)
    return cells


def worst(codes: list[int]) -> int:
    """Worst exit code wins: 2 > 1 > 0; anything else (a crash, a signal) counts as 2."""
    if not codes:
        return 2
    return max(c if c in (0, 1, 2) else 2 for c in codes)


@dataclass
class CellRun:
    """Live state of one cell, fed from its child's progress lines."""

    cell: Cell
    folder: Path
    state: str = "waiting"  # waiting | running | complete | crashed | interrupted | not-run
    done: int = 0
    total: int | None = None
    failed: int = 0
    errors: int = 0
    runtime: str = ""
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None
    exit_code: int = 2
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def feed(self, line: str) -> str | None:
        """Update from one output line; return the verdict label for a case line, else None."""
        self.tail = [*self.tail[-19:], line]
        match = PROGRESS_LINE.match(line)
        if match:
            self.done = int(match.group(1))
            self.total = int(match.group(2)) if match.group(2).isdigit() else self.total
            label = match.group(3)
            self.failed += label == "FAIL"
            self.errors += label == "ERROR"
            return label
        runtime = RUNTIME_LINE.search(line)
        if runtime:
            self.runtime = f"{runtime.group(1)} {runtime.group(2).removesuffix('+unknown')}"
        return None

    def status_line(self) -> str:
        total = self.total if self.total is not None else "?"
        parts = [f"{self.done}/{total} cases", f"{self.failed} failed"]
        if self.errors:
            parts.append(f"{self.errors} errors")
        parts.append(f"{self.elapsed:.1f}s")
        state = self.state if self.state in ("waiting", "running") else f"{self.state}, exit {self.exit_code}"
        return f"{self.cell.id:<24} {self.runtime or '':<22} " + "  ".join(parts) + f"  {state}"


class Display:
    """Plain progress: one line per event (not a terminal, or CI=true)."""

    def __init__(self, out: TextIO, runs: list[CellRun]):
        self.out, self.runs = out, runs

    def write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, run: CellRun, text: str) -> None:
        self.write(f"{run.cell.id}: {text}")

    def case(self, run: CellRun, line: str) -> None:
        total = run.total if run.total is not None else "?"
        what = " ".join(line.split("]", 1)[-1].split())
        what = what if len(what) <= 100 else what[:99] + "…"
        self.write(f"{run.cell.id}: {run.done}/{total} {what}; {run.failed + run.errors} failed so far; "
                   f"{run.elapsed:.1f}s")

    def tick(self) -> None:
        """Periodic refresh (nothing for plain lines)."""

    def close(self) -> None:
        """Leave the display (nothing for plain lines)."""


class LiveDisplay(Display):
    """A block of one line per cell, redrawn in place on a terminal."""

    def __init__(self, out: TextIO, runs: list[CellRun]):
        super().__init__(out, runs)
        self.drawn = 0
        self.last = 0.0
        self.closed = False

    def write(self, text: str) -> None:
        """A message above the block: clear the block, print, draw it again below."""
        if self.closed or not self.drawn:
            super().write(text)
            return
        self.out.write(f"\x1b[{self.drawn}F\x1b[J{text}\n")
        self.drawn = 0
        self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        width = max(40, shutil.get_terminal_size((120, 24)).columns - 1)
        text = f"\x1b[{self.drawn}F" if self.drawn else ""
        for run in self.runs:
            text += "\x1b[2K" + run.status_line()[:width] + "\n"
        self.out.write(text)
        self.out.flush()
        self.drawn = len(self.runs)

    def event(self, run: CellRun, text: str) -> None:
        self._redraw(force=True)

    def case(self, run: CellRun, line: str) -> None:
        self._redraw()

    def tick(self) -> None:
        self._redraw(force=True)

    def close(self) -> None:
        self._redraw(force=True)
        self.closed = True


def plain_output(out: TextIO) -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("TERM") == "dumb" or not out.isatty()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM (and cleans up) if the matrix process dies without forwarding."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# what a cell sets itself; every other run option goes to each cell whose target takes it (the options table)
CELL_OWN = {"target", "runtime", "version", "containerd-bin-dir", "crio-bin-dir", "cri-endpoint", "handler",
            "results-dir", "scenarios", "images"}
SHARED = [o for o in FLAGS if o.name not in CELL_OWN]


def cell_flags(args: argparse.Namespace) -> Callable[[Cell], list[str]]:
    """The options a cell takes beside its own, from the options table: Kubernetes binaries and kind for local
    and kind cells, OCI_BIN_DIR for all, and any other option its target takes."""
    def flags(cell: Cell) -> list[str]:
        out = []
        for option in SHARED:
            value = getattr(args, option.name.replace("-", "_"), None)
            if value and cell.target in option.targets:
                out += [f"--{option.name}", value]
        return out
    return flags


def child_argv(cell: Cell, folder: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "conformance.front.cli", "run", *cell.flags(), "--results-dir", str(folder), *extra]


def write_cell_file(run: CellRun, index: int, argv: list[str]) -> None:
    doc = {"id": run.cell.id, "spec": run.cell.spec, "index": index, "argv": argv, "status": run.state,
           "exit_code": run.exit_code, "returncode": run.returncode, "message": run.message,
           "elapsed": round(run.elapsed, 2), "runtime": run.runtime}
    run.folder.mkdir(parents=True, exist_ok=True)
    tmp = run.folder / (CELL_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(run.folder / CELL_FILE)


def conclude(run: CellRun) -> None:
    """Exit code and status of a finished child: a crash or missing results is an error, never a pass."""
    rc = run.returncode
    results = run.folder / "results.json"
    recorded = None
    if results.is_file():
        try:
            doc = json.loads(results.read_text())
            recorded = int(doc["summary"]["exit_code"])
            run.counts = dict(doc["summary"].get("counts", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            run.message = f"unreadable results.json: {exc}"
    if run.state == "interrupted":
        run.exit_code = 2
        run.message = run.message or "interrupted"
        return
    if rc is None or rc not in (0, 1, 2):
        run.state = "crashed"
        if rc is None:
            run.message = run.message or "did not run"
        else:
            run.message = f"killed by signal {-rc}" if rc < 0 else f"exited {rc}"
    elif recorded is None:
        run.state = "crashed"
        run.message = run.message or f"exited {rc} without results.json"
    else:
        run.state = "complete"
    run.exit_code = worst([rc if rc is not None else 2, recorded if recorded is not None else 2])
    if run.exit_code == 2:
        hint = last_error(run.tail)
        run.message = "; ".join(m for m in (run.message, hint) if m) or "exit 2"


ERROR_LINE = re.compile(r"^(error|ERROR|INTERNALERROR>.*\w+Error:|--- ERROR)|\b\w+Error: ")


def last_error(lines: list[str]) -> str:
    """The child's last line that names an error (its own `error:` line or an exception), shortened."""
    found = [line.strip() for line in lines if ERROR_LINE.search(line)]
    return found[-1][:300] if found else ""


class Matrix:
    """Runs the cells with bounded concurrency; forwards Ctrl-C / SIGTERM to every child."""

    def __init__(self, runs: list[CellRun], jobs: int, extra: list[str], display: Display,
                 argv_for: Callable[[Cell, Path, list[str]], list[str]] | None = None):
        self.runs, self.jobs, self.extra, self.display = runs, jobs, extra, display
        self.argv_for = argv_for or child_argv
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.signals = 0
        self.stopping = asyncio.Event()

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        hard = self.signals > 1
        self.stopping.set()
        self.display.write(f"matrix: {signal.Signals(signum).name}: "
                           + ("killing the cells" if hard else "stopping the cells (they clean up; again to kill)"))
        for proc in list(self.procs.values()):
            self._stop(proc)

    def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """First signal: SIGTERM to the child (it cleans up its runtime); later ones: SIGKILL its group."""
        with contextlib.suppress(ProcessLookupError):
            if self.signals > 1:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.send_signal(signal.SIGTERM)

    async def run_cell(self, index: int, run: CellRun, gate: asyncio.Semaphore) -> None:
        async with gate:
            argv = self.argv_for(run.cell, run.folder, self.extra)
            if self.stopping.is_set():
                run.state, run.message = "not-run", "interrupted before it started"
                write_cell_file(run, index, argv)
                return
            for stale in ("results.json", "junit.xml", CELL_FILE):
                (run.folder / stale).unlink(missing_ok=True)
            run.state, run.started = "running", time.monotonic()
            run.message = "the matrix stopped before this cell finished"
            write_cell_file(run, index, argv)  # stays an error if we never get to conclude
            run.message = ""
            try:
                run.returncode = await self._spawn(run, argv)
            except Exception as exc:  # the cell is an error; the other cells go on
                run.message = f"could not run: {type(exc).__name__}: {exc}"
            self.procs.pop(run.cell.id, None)
            run.finished = time.monotonic()
            if self.stopping.is_set() and run.returncode not in (0, 1):
                run.state = "interrupted"
            conclude(run)
            write_cell_file(run, index, argv)
            counts = ", ".join(f"{n} {k}" for k, n in sorted(run.counts.items())) or "no results"
            self.display.event(run, f"{run.state}: {counts}; exit {run.exit_code} in {run.elapsed:.1f}s"
                               + (f" ({run.message})" if run.message else ""))

    async def _spawn(self, run: CellRun, argv: list[str]) -> int:
        """Start the child in its own session (a terminal's Ctrl-C reaches only us), follow it, reap it."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with (run.folder / "output.log").open("w") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=_die_with_parent, limit=1 << 20)
            self.procs[run.cell.id] = proc
            if self.stopping.is_set():  # a signal came while we were starting it
                self._stop(proc)
            self.display.event(run, f"started (pid {proc.pid}): {' '.join(argv[3:])}")
            pump = asyncio.ensure_future(self._pump(run, proc, log))
            code = await self._wait(proc)
            try:  # drain what is left; a leftover grandchild may hold the pipe open
                await asyncio.wait_for(pump, 5)
            except TimeoutError:
                pump.cancel()
            return code

    async def _pump(self, run: CellRun, proc: asyncio.subprocess.Process, log: TextIO) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line over the limit: keep going with what is buffered
                raw = await proc.stdout.read(1 << 20)
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\n")
            log.write(line + "\n")
            log.flush()
            had_runtime = bool(run.runtime)
            if run.feed(line) is not None:
                self.display.case(run, line)
            elif run.runtime and not had_runtime:
                self.display.event(run, f"runtime {run.runtime} ready")

    async def _wait(self, proc: asyncio.subprocess.Process) -> int:
        """Wait for the child; once stopping, give it GRACE_SECONDS to clean up, then kill its group."""
        waiter = asyncio.ensure_future(proc.wait())
        while not waiter.done():
            await asyncio.wait([waiter], timeout=0.5)
            if self.stopping.is_set() and not waiter.done():
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), GRACE_SECONDS)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        return waiter.result()

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.display.tick()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.on_signal, signum)
        gate = asyncio.Semaphore(self.jobs)
        tick = asyncio.ensure_future(self.ticker())
        try:
            await asyncio.gather(*(self.run_cell(i, r, gate) for i, r in enumerate(self.runs)))
        finally:
            tick.cancel()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


def default_jobs(cells: int) -> int:
    """Cells at once: CPUs + 1 (cells mostly wait on the runtime), at least 2, at most the cells."""
    return max(1, min(cells, max(2, (os.cpu_count() or 1) + 1)))


def summarize(runs: list[CellRun], wall: float, out: Display) -> None:
    out.write(f"matrix: {len(runs)} cells in {wall:.1f}s")
    for run in runs:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(run.counts.items())) or "no results"
        note = f"; {run.message}" if run.message else ""
        out.write(f"  {run.cell.id:<24} {run.runtime or '-':<22} {run.state:<11} exit {run.exit_code}  "
                  f"{counts}  {run.elapsed:.1f}s{note}")


def publish(results_dir: Path, order: list[str], out: Display) -> int | None:
    """Write the merged reports; append matrix.md to a GitHub step summary when there is one."""
    from conformance.report import build

    try:
        matrix, paths = build(results_dir, order)
    except Exception as exc:  # the runs stand; say why the merge failed
        out.write(f"matrix: report failed: {type(exc).__name__}: {exc}")
        return None
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with contextlib.suppress(OSError), open(summary, "a") as fh:
            fh.write(paths["md"].read_text())
    out.write("reports: " + ", ".join(str(p) for p in paths.values()))
    return matrix.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.tools.matrix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=os.environ.get("CELLS", ""), help="cells to run [env CELLS]")
    parser.add_argument("--results-dir", default=os.environ.get("RESULTS_DIR") or "results",
                        help="one folder per cell goes here, plus matrix.{json,md,html} [env RESULTS_DIR]")
    parser.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("MATRIX_JOBS") or 0),
                        help="cells at once (default CPUs+1, at least 2) [env MATRIX_JOBS]")
    for option in SHARED:
        parser.add_argument(f"--{option.name}", default=os.environ.get(option.env) or None,
                            help=f"{option.help} ({', '.join(option.targets)} cells) [env {option.env}]")
    args, extra = parser.parse_known_args(argv)
    try:
        cells = parse_cells(args.cells)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results_dir = Path(args.results_dir)
    runs = [CellRun(c, results_dir / c.id) for c in cells]
    display: Display = (Display if plain_output(sys.stdout) else LiveDisplay)(sys.stdout, runs)
    jobs = args.jobs if args.jobs > 0 else default_jobs(len(cells))
    display.write(f"matrix: {len(cells)} cells, {jobs} at once, results in {results_dir}/<cell>/")
    started = time.monotonic()
    more = cell_flags(args)
    matrix = Matrix(runs, jobs, extra, display,
                    argv_for=lambda cell, folder, ex: child_argv(cell, folder, [*more(cell), *ex]))
    try:
        asyncio.run(matrix.run())
    finally:
        display.close()
    summarize(runs, time.monotonic() - started, display)
    merged = publish(results_dir, [c.id for c in cells], display)
    code = worst([r.exit_code for r in runs] + ([merged] if merged is not None else [2]))
    if matrix.signals:
        code = 2
    display.write(f"matrix: exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())

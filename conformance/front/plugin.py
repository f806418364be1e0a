"""The pytest plugin: every case of every target is one pytest item.

A case is a scenario × policy (and, on Kubernetes targets, a container kind and a node), or a target's
own check (node features, API negatives). The target's session starts once, in the controlling pytest
process, before any xdist worker; workers build their own runner from the context it leaves in the
environment. Running a case happens in the item's setup (broken infrastructure = a pytest error),
judging it in its call (a conformance failure = a pytest failure). Active only with --sgp-target, so a
plain pytest run of the project's own tests collects and starts nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance import interrupt
from conformance.core.case import Case, Verdicted
from conformance.core.catalogue import Catalogue
from conformance.core.model import CaseResult, Verdict, exit_code
from conformance.core.options import FLAGS, Options, from_mapping
from conformance.core.verdict import Judgement
from conformance.errors import SuiteError
from conformance.front.progress import Progress
from conformance.front.results import write
from conformance.runtimes import reaper
from conformance.targets import create_session, runner_from_context
from conformance.targets.protocol import Runner, Session

CATALOGUE = pytest.StashKey[Catalogue]()
OPTIONS = pytest.StashKey[Options]()
SESSION = pytest.StashKey[Session]()
RECORDS = pytest.StashKey[list]()
PROGRESS = pytest.StashKey[Progress]()
CASES = pytest.StashKey[list]()
BY_FILE = pytest.StashKey[dict]()  # a scenario file's resolved path -> its cases (collected once per file)
WATCHDOG = pytest.StashKey[reaper.Watchdog]()
CASE_PROPERTY = "sgp_case"
NOT_RUN_PROPERTY = "sgp_not_run"  # a case this run cannot express (restart cases on CRI_ENDPOINT)
WORKER_ENV = "SGP_WORKER_CONTEXT"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgpconf", "supplementalGroupsPolicy conformance")
    for name, _env, _targets, text in FLAGS:
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", default=None, help=text)


def _active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "sgp_target", None))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    try:
        opts = from_mapping({name: getattr(config.option, f"sgp_{name.replace('-', '_')}") for name, *_ in FLAGS})
        catalogue = Catalogue.load(opts.scenarios_dir, opts.images_dir)
    except SuiteError as exc:
        pytest.exit(f"error: {exc}", returncode=2)
    config.stash[CATALOGUE] = catalogue
    config.stash[OPTIONS] = opts
    config.stash[RECORDS] = []
    for tag in sorted({t for s in catalogue.scenarios for t in s.tags} | {"merge", "strict", "unset", "check"}):
        config.addinivalue_line("markers", f"{tag}: scenario tag")
    if _is_worker(config):
        interrupt.install(signal.SIGINT)
        ctx = json.loads(Path(os.environ[WORKER_ENV]).read_text())
        config.stash[CASES] = [_case_from_json(c, catalogue) for c in ctx["cases"]]
        return
    interrupt.install()
    config.stash[PROGRESS] = Progress(sys.stdout)
    started = time.monotonic()
    try:
        session = create_session(opts, catalogue)
    except SuiteError as exc:
        pytest.exit(f"error: {exc}", returncode=2)
    left = reaper.reap_dead(opts.state_dir)
    if left:
        print(f"removed what {len(left)} leftover(s) of runs that died showed: {'; '.join(left[:5])}"
              f"{' ...' if len(left) > 5 else ''}", file=sys.stderr)
    watchdog = reaper.Watchdog(opts.state_dir)  # if this process dies, it removes what the run started
    watchdog.start()
    config.stash[WATCHDOG] = watchdog
    config.stash[SESSION] = session
    try:
        session.start()
        cases = session.cases()
    except (SuiteError, KeyboardInterrupt) as exc:
        _safe_stop(session, watchdog)
        pytest.exit(f"error: {exc}" if isinstance(exc, SuiteError) else "interrupted", returncode=2)
    except BaseException:  # a bug of the suite's: still remove what the session started
        _safe_stop(session, watchdog)
        raise
    config.stash[CASES] = cases
    # xdist workers are separate processes: they inherit this environment (the path of a file in the state
    # folder: a thousand cases are more than one environment variable may hold) and reach the same target.
    context = opts.state_dir / f"worker-context-{os.getpid()}.json"
    context.parent.mkdir(parents=True, exist_ok=True)
    context.write_text(json.dumps({"target": opts.target, "cases": [_case_json(c) for c in cases],
                                   **session.worker_context()}))
    os.environ[WORKER_ENV] = str(context)
    config.stash[PROGRESS].header(session.header(time.monotonic() - started))


def _case_json(case: Case) -> list:
    return [case.scenario.name if case.scenario else "", case.policy, case.variant, case.node, case.check]


def _case_from_json(data: list, catalogue: Catalogue) -> Case:
    name, policy, variant, node, check = data
    return Case(catalogue.by_name(name) if name else None, policy, variant, node, check)


def _safe_stop(session: Session, watchdog: reaper.Watchdog | None = None) -> None:
    """Remove what the session started; a Ctrl-C meanwhile does not cut that short. The watchdog goes last
    (had the removal been cut short, it would finish it once this process is gone)."""
    try:
        with interrupt.shielded(deliver=False):
            session.stop()
    except Exception as exc:
        print(f"cleanup error: {exc}", file=sys.stderr)
    else:
        if watchdog is not None:
            unloaded = watchdog.stop()
            if unloaded:
                print(f"unloaded the kernel modules the run loaded and nothing uses: {' '.join(unloaded)}",
                      file=sys.stderr)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Cases still running in the pool give up, then the session removes everything it started (a Ctrl-C
    meanwhile does not cut that short)."""
    with interrupt.shielded(deliver=False):
        pool = getattr(config, "_sgp_pool", None)
        if pool is not None:  # batches not started yet never start (a Ctrl-C ends the run here)
            pool.shutdown(wait=False, cancel_futures=True)
        runner = getattr(config, "_sgp_runner", None)
        if runner is not None:
            runner.close()
        session = config.stash.get(SESSION, None)
        if session is not None:
            _safe_stop(session, config.stash.get(WATCHDOG, None))
            with contextlib.suppress(KeyError, OSError):
                Path(os.environ.pop(WORKER_ENV)).unlink()


def _runner(config: pytest.Config) -> Runner:
    """The runner of this pytest process: the session's (controller) or one built from its context (worker)."""
    cached = getattr(config, "_sgp_runner", None)
    if cached is not None:
        return cached
    session = config.stash.get(SESSION, None)
    if session is not None:
        runner = session.runner()
    else:
        runner = runner_from_context(json.loads(Path(os.environ[WORKER_ENV]).read_text()), config.stash[CATALOGUE],
                                     config.stash[OPTIONS])
    config._sgp_runner = runner  # type: ignore[attr-defined]
    return runner


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not _active(config) or file_path.suffix != ".yaml" or CATALOGUE not in config.stash:
        return None
    if file_path.parent.resolve() != config.stash[OPTIONS].scenarios_dir.resolve():
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self):
        if BY_FILE not in self.config.stash:
            by_file: dict[Path, list[Case]] = {}
            for case in self.config.stash[CASES]:
                if case.scenario:
                    by_file.setdefault(case.scenario.path.resolve(), []).append(case)
            self.config.stash[BY_FILE] = by_file
        for case in self.config.stash[BY_FILE].get(self.path.resolve(), []):
            yield CaseItem.of(self, case)


class Checks(pytest.Collector):
    """The target's own checks (node features, API negatives): not scenario files, but items like them."""

    def collect(self):
        return [CaseItem.of(self, c) for c in self.config.stash[CASES] if c.check]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Checks go first (before -k/-m deselection, which runs after this hook)."""
    if not _active(config) or CASES not in config.stash or not any(c.check for c in config.stash[CASES]):
        return
    items[:0] = Checks.from_parent(session, name="checks").collect()


class CaseFailed(AssertionError):
    """A conformance failure: the runtime did not do what the expectation says."""


class CaseItem(pytest.Item):
    """One case. setup() runs it on the target (infrastructure trouble = pytest error);
    runtest() judges it (a mismatch = pytest failure)."""

    def __init__(self, *, case: Case, **kwargs: object):
        super().__init__(**kwargs)
        self.case = case
        self.outcome: object = None
        self.observed: dict = {}
        self.judgement: Judgement | None = None
        self.verdicted: Verdicted | None = None
        self.started = 0.0
        self.future: Future | None = None
        scn = case.scenario
        for marker in (*scn.tags, case.policy.lower()) if scn else ("check",):
            self.add_marker(marker)
        if scn is not None and scn.restart:  # restarts the runtime: one xdist worker (with --dist loadgroup)
            self.add_marker(pytest.mark.xdist_group("runtime-restart"))

    @classmethod
    def of(cls, parent: pytest.Collector, case: Case) -> CaseItem:
        """The item of a case. Its node id is given as text, so the `[policy]` in it parses as parameters, as
        pytest parses the ids it saved (pytest 9 compares structured ids: `--lf` found no case otherwise)."""
        return cls.from_parent(parent, name=case.item_name, nodeid=f"{parent.nodeid}::{case.item_name}", case=case)

    @property
    def restart_skipped(self) -> bool:
        return bool(self.case.scenario and self.case.scenario.restart and not _runner(self.config).can_restart)

    def setup(self) -> None:
        self.started = time.monotonic()
        if self.restart_skipped:
            why = "restarting the runtime needs a runtime the suite started (not CRI_ENDPOINT)"
            self.user_properties.append((NOT_RUN_PROPERTY, why))
            pytest.skip(f"not run: {why}")
        if self.future is not None:
            self.outcome, duration = interrupt.result(self.future)
            self.started = time.monotonic() - duration
        else:
            self.outcome = _runner(self.config).run(self.case)

    def runtest(self) -> None:
        self.verdicted = _runner(self.config).judge(self.case, self.outcome)
        self.judgement = self.verdicted.judgement
        verdict = self.judgement.verdict
        if verdict == Verdict.FAIL:
            raise CaseFailed(self.judgement.detail)
        if verdict == Verdict.ERROR:
            raise SuiteError(self.judgement.detail)
        if verdict == Verdict.UNSUPPORTED:
            pytest.skip(f"unsupported: {self.judgement.detail}")
        if verdict == Verdict.KNOWN_FAILURE:
            pytest.xfail(self.judgement.detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: object = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.name}: expected vs observed\n{excinfo.value}"
        return f"{self.name}: error: {excinfo.value}"

    def reportinfo(self) -> tuple[Path, int, str]:
        scn = self.case.scenario
        if scn is None:
            return self.path, 0, self.name
        return self.path, scn.expect_lines.get(self.case.policy, 1) - 1, self.name

    def record(self, verdict: Verdict, detail: str) -> CaseResult:
        scn, v, j = self.case.scenario, self.verdicted, self.judgement
        expected = v.expected if v is not None and v.expected is not None else \
            scn.expected_json(self.case.policy) if scn else {}
        observed = v.observed if v is not None else _observed_of(self.outcome)
        variant = [f"variant:{self.case.variant}"] if self.case.variant != "container" else []
        return CaseResult(
            scenario=self.case.label, policy=self.case.policy, verdict=verdict, expected=expected,
            observed=observed, detail=detail, source=v.source if v is not None and v.source else
            (scn.source if scn else ""), tags=[*(scn.tags if scn else ("check",)), *variant],
            duration=time.monotonic() - self.started, links=list(j.links) if j else [],
            choice=j.choice if j else "",
        )


def _observed_of(outcome: object) -> dict:
    to_json = getattr(outcome, "to_json", None)
    return to_json() if callable(to_json) else {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Kubernetes targets run pods side by side, a scenario's container kinds in one pod: start every batch of
    selected cases at once (bounded by the runner's `parallel`); each item then waits for its own. Items
    still report in order. Not under xdist."""
    config = session.config
    if _active(config) and not _is_worker(config) and SESSION in config.stash and not config.option.collectonly:
        runner = _runner(config)
        items = {id(i.case): i for i in session.items if isinstance(i, CaseItem) and not i.restart_skipped}
        batches = runner.batches([i.case for i in items.values()])
        if len(items) > 1 and (runner.parallel > 1 or len(batches) < len(items)):
            pool = ThreadPoolExecutor(max_workers=runner.parallel, thread_name_prefix="sgp-case")
            config._sgp_pool = pool  # type: ignore[attr-defined]
            with interrupt.shielded():  # submit() starts threads, and waits on an Event for each
                for batch in batches:
                    whole = pool.submit(_timed, runner, batch)
                    for index, case in enumerate(batch):
                        items[id(case)].future = _part(whole, index)
    yield


def _timed(runner: Runner, batch: list[Case]) -> tuple[list[object], float]:
    started = time.monotonic()
    return runner.run_batch(batch), time.monotonic() - started


def _part(whole: Future, index: int) -> Future:
    """A future for one case of a batch: (its outcome, the batch's duration), or the exception that is its own
    (in its place in the outcomes) or the whole batch's."""
    part: Future = Future()

    def done(future: Future) -> None:
        if future.cancelled():
            part.cancel()
        elif future.exception() is not None:
            part.set_exception(future.exception())
        else:
            outcomes, duration = future.result()
            if isinstance(outcomes[index], BaseException):
                part.set_exception(outcomes[index])
            else:
                part.set_result((outcomes[index], duration))

    whole.add_done_callback(done)
    return part


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if not isinstance(item, CaseItem):
        return
    report = outcome.get_result()
    result = None
    if report.when == "setup" and report.failed:
        result = item.record(Verdict.ERROR, f"{call.excinfo.typename}: {call.excinfo.value}" if call.excinfo else "")
    elif report.when == "call":
        if item.judgement is not None:
            result = item.record(item.judgement.verdict, item.judgement.detail)
        else:
            detail = f"{call.excinfo.typename}: {call.excinfo.value}" if call.excinfo else "no verdict"
            result = item.record(Verdict.ERROR, detail)
    if result is not None:
        report.user_properties.append((CASE_PROPERTY, json.dumps(result.to_json())))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if not _active(config):
        return None
    keys = {k for k, _ in report.user_properties}
    if CASE_PROPERTY in keys or (NOT_RUN_PROPERTY in keys and report.when == "setup"):
        category = "xfailed" if getattr(report, "wasxfail", None) is not None else report.outcome
        return category, "", ""  # our own progress line replaces pytest's dot
    if NOT_RUN_PROPERTY in keys:
        return "", "", ""  # the not-run case's teardown: no dot, no count
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == NOT_RUN_PROPERTY and report.when == "setup":
            config = _CONFIG[0]
            progress = config.stash.get(PROGRESS, None) if config else None
            if progress is not None:
                progress.not_run(report.nodeid.rsplit("::", 1)[-1], value)
        if key == CASE_PROPERTY:
            config = _CONFIG[0]
            if config is None or RECORDS not in config.stash:
                return
            result = CaseResult.from_json(json.loads(value))
            config.stash[RECORDS].append(result)
            progress = config.stash.get(PROGRESS, None)
            if progress is not None:
                progress.case(result)


_CONFIG: list[pytest.Config | None] = [None]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG[0] = session.config


def pytest_collection_finish(session: pytest.Session) -> None:
    progress = session.config.stash.get(PROGRESS, None)
    if progress is not None:
        progress.total = sum(isinstance(i, CaseItem) for i in session.items)


def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    config = _CONFIG[0]
    progress = config.stash.get(PROGRESS, None) if config else None
    if progress is not None:
        progress.total = len(ids)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not _active(config) or _is_worker(config) or SESSION not in config.stash:
        return
    records: list[CaseResult] = config.stash[RECORDS]
    opts = config.stash[OPTIONS]
    target = config.stash[SESSION]
    write(opts.results_dir / "results.json", target.info, records, target.results_extra())
    code = exit_code([r.verdict for r in records])
    if exitstatus not in (0, 1) or (exitstatus == 1 and code == 0):
        code = 2  # interrupted, internal or usage error, no cases, or a failure outside our cases
    config.stash[PROGRESS].summary(records, code, opts.results_dir,
                                   interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
    target.failed = code != 0
    if code != 2:  # a run that broke or was interrupted is not held
        target.hold(config.stash[PROGRESS].line)
    session.exitstatus = code

"""The pytest plugin: each scenario × policy under scenarios/ is one pytest item.

Active only with --target (the console command and `make conformance` pass it), so a plain
pytest run of the project's own tests collects and starts nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from conformance.catalogue import Catalogue
from conformance.errors import SuiteError
from conformance.model import CaseResult, RuntimeInfo, Verdict, exit_code
from conformance.options import FLAGS, Options, from_mapping
from conformance.progress import Progress
from conformance.results import write
from conformance.scenario import Scenario
from conformance.session import NodeSession
from conformance.verdict import Judgement, Observation

CATALOGUE = pytest.StashKey[Catalogue]()
OPTIONS = pytest.StashKey[Options]()
SESSION = pytest.StashKey[NodeSession]()
RECORDS = pytest.StashKey[list]()
PROGRESS = pytest.StashKey[Progress]()
CASE_PROPERTY = "sgp_case"
WORKER_ENV = "SGP_WORKER_CONTEXT"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgpconf", "supplementalGroupsPolicy conformance")
    for name, _env, text in FLAGS:
        group.addoption(f"--sgp-{name}", dest=f"sgp_{name.replace('-', '_')}", default=None, help=text)


def _active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "sgp_target", None))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    opts = from_mapping({name: getattr(config.option, f"sgp_{name.replace('-', '_')}") for name, _, _ in FLAGS})
    if opts.target != "node":
        pytest.exit(f"TARGET={opts.target}: the pytest plugin runs the node target; run kind and cluster "
                    f"targets with `sgp-conformance run --target {opts.target}` (make conformance TARGET=...)",
                    returncode=2)
    try:
        catalogue = Catalogue.load(opts.scenarios_dir, opts.images_dir)
    except SuiteError as exc:
        pytest.exit(f"error: {exc}", returncode=2)
    config.stash[CATALOGUE] = catalogue
    config.stash[OPTIONS] = opts
    config.stash[RECORDS] = []
    for tag in sorted({t for s in catalogue.scenarios for t in s.tags} | {"merge", "strict", "unset"}):
        config.addinivalue_line("markers", f"{tag}: scenario tag")
    if _is_worker(config):
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    config.stash[PROGRESS] = Progress(sys.stdout)
    session = NodeSession(opts, catalogue)
    config.stash[SESSION] = session
    try:
        started = time.monotonic()
        session.start()
    except (SuiteError, KeyboardInterrupt) as exc:
        _safe_stop(session)
        pytest.exit(f"error: {exc}" if isinstance(exc, SuiteError) else "interrupted", returncode=2)
    assert session.info is not None and session.client is not None and session.target is not None
    restart_socket = ""
    if session.provisioned is not None and session.log_root is not None:  # `restart` cases: targets/node.py
        from conformance.targets.node import RestartServer

        config._sgp_restart = RestartServer(session.log_root / ".sgp-restart.sock",  # type: ignore[attr-defined]
                                            session.restart_runtime)
        restart_socket = str(config._sgp_restart.path)  # type: ignore[attr-defined]
        session.target.restart_socket = restart_socket
    # xdist workers are separate processes: they inherit this environment and reach the same runtime.
    os.environ[WORKER_ENV] = json.dumps({
        "endpoint": session.client.endpoint, "runtime": session.info.to_json(), "refs": session.image_refs,
        "log_root": str(session.log_root), "cgroup_parent": session.target.cgroup_parent,
        "run_id": session.run_id, "restart_socket": restart_socket,
    })
    config.stash[PROGRESS].header(session.info, time.monotonic() - started, session.provisioned)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _safe_stop(session: NodeSession) -> None:
    try:
        session.stop()
    except Exception as exc:
        print(f"cleanup error: {exc}", file=sys.stderr)


def pytest_unconfigure(config: pytest.Config) -> None:
    cached = getattr(config, "_sgp_target", None)
    if cached is not None and _is_worker(config):
        for problem in cached[0].drain():
            print(f"warning: {problem}", file=sys.stderr)
    restart = getattr(config, "_sgp_restart", None)
    if restart is not None:
        restart.close()
    session = config.stash.get(SESSION, None)
    if session is not None:
        _safe_stop(session)


def _worker_target(config: pytest.Config):
    """The node target as seen from a pytest process (controller or xdist worker)."""
    cached = getattr(config, "_sgp_target", None)
    if cached is not None:
        return cached
    from conformance.cri.client import CRIClient
    from conformance.targets.node import NodeTarget

    session = config.stash.get(SESSION, None)
    if session is not None and session.target is not None:
        target, info = session.target, session.info
    else:
        ctx = json.loads(os.environ[WORKER_ENV])
        target = NodeTarget(CRIClient(ctx["endpoint"]), ctx["refs"], Path(ctx["log_root"]), ctx["run_id"],
                            handler=ctx["runtime"].get("handler", ""), cgroup_parent=ctx["cgroup_parent"])
        info = RuntimeInfo.from_json(ctx["runtime"])
        target.restart_socket = ctx.get("restart_socket", "")
    config._sgp_target = (target, info)  # type: ignore[attr-defined]
    return config._sgp_target  # type: ignore[attr-defined]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not _active(config) or file_path.suffix != ".yaml" or CATALOGUE not in config.stash:
        return None
    if file_path.parent.resolve() != config.stash[OPTIONS].scenarios_dir.resolve():
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self):
        catalogue = self.config.stash[CATALOGUE]
        scn = next(s for s in catalogue.scenarios if s.path.resolve() == self.path.resolve())
        for policy in scn.policies:
            item = ScenarioItem.from_parent(self, name=f"{scn.name}[{policy}]", scenario=scn, policy=policy)
            for marker in (*scn.tags, policy.lower()):
                item.add_marker(marker)
            if scn.restart:  # restarts the runtime: keep these on one xdist worker (with --dist loadgroup)
                item.add_marker(pytest.mark.xdist_group("runtime-restart"))
            yield item


class CaseFailed(AssertionError):
    """A conformance failure: the runtime did not do what the expectation says."""


class ScenarioItem(pytest.Item):
    """One case. setup() runs it on the target (infrastructure trouble = pytest error);
    runtest() judges it (a mismatch = pytest failure)."""

    def __init__(self, *, scenario: Scenario, policy: str, **kwargs: object):
        super().__init__(**kwargs)
        self.scenario = scenario
        self.policy = policy
        self.observation: Observation | None = None
        self.judgement: Judgement | None = None
        self.started = 0.0
        self.info: RuntimeInfo | None = None

    def setup(self) -> None:
        self.started = time.monotonic()
        target, self.info = _worker_target(self.config)
        if self.scenario.restart and not target.restart_socket:
            pytest.skip("not run: restarting the runtime needs a runtime the suite started (not CRI_ENDPOINT)")
        self.observation = target.run_case(self.scenario, self.policy)

    def runtest(self) -> None:
        catalogue = self.config.stash[CATALOGUE]
        assert self.observation is not None and self.info is not None
        self.judgement = catalogue.judge(self.scenario, self.policy, self.observation, self.info)
        verdict = self.judgement.verdict
        if verdict == Verdict.FAIL:
            raise CaseFailed(self.judgement.detail)
        if verdict == Verdict.UNSUPPORTED:
            pytest.skip(f"unsupported: {self.judgement.detail}")
        if verdict == Verdict.KNOWN_FAILURE:
            pytest.xfail(self.judgement.detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: object = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.name}: expected vs observed\n{excinfo.value}"
        return f"{self.name}: error: {excinfo.value}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.expect_lines.get(self.policy, 1) - 1, self.name

    def record(self, verdict: Verdict, detail: str) -> CaseResult:
        return CaseResult(
            scenario=self.scenario.name, policy=self.policy, verdict=verdict,
            expected=self.scenario.expected_json(self.policy),
            observed=self.observation.to_json() if self.observation else {},
            detail=detail, source=self.scenario.source, tags=list(self.scenario.tags),
            duration=time.monotonic() - self.started,
            links=list(self.judgement.links) if self.judgement else [],
            choice=self.judgement.choice if self.judgement else "",
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if not isinstance(item, ScenarioItem):
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
    if _active(config) and any(k == CASE_PROPERTY for k, _ in report.user_properties):
        category = "xfailed" if getattr(report, "wasxfail", None) is not None else report.outcome
        return category, "", ""  # our own progress line replaces pytest's dot
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
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
        progress.total = sum(isinstance(i, ScenarioItem) for i in session.items)


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
    info = config.stash[SESSION].info
    write(opts.results_dir / "results.json", info, records)
    code = exit_code([r.verdict for r in records])
    if exitstatus not in (0, 1) or (exitstatus == 1 and code == 0):
        code = 2  # interrupted, internal or usage error, no cases, or a failure outside our cases
    config.stash[PROGRESS].summary(records, code, opts.results_dir)
    session.exitstatus = code

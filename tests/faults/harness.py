"""Fault injection: runtimes that lie, and a check that the suite catches every lie.

Three kinds of fault:
- wrapper: an OCI runtime wrapper in front of runc (a handler of a private containerd 2.x) rewrites
  process.user.additionalGids before `runc create`; containerd's reported user stays right, so only
  the process evidence (/proc/<pid>/status, `id`) can show it. Cases run in-process (NodeSession).
- proxy: a CRI proxy between the console command and a real containerd falsifies one message; the
  suite runs as `sgp-conformance run --cri-endpoint <proxy>` and its results.json is read back.
- kubelet: the same proxy between a real kubelet (TARGET=local, needs K8S_BIN_DIR) and the runtime, so the
  lie reaches the node's status and the pods' status; the cases and the node-features check are judged
  through the API only.

A fault is *caught* when every case it affects got an allowed verdict (never `pass`) whose detail
carries the expected evidence. Cases it does not affect must still pass (the suite fails no good case).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.core.catalogue import PROJECT, Catalogue
from conformance.core.model import Verdict
from conformance.core.options import Options, default_cache
from conformance.cri.client import CRIError
from conformance.errors import SuiteError
from conformance.runtimes import oci
from conformance.runtimes.process import cgroup_dirs, processes_mentioning, remove_cgroups
from conformance.targets.node.session import NodeSession
from conformance.targets.node.target import NodeTarget
from tests.faults import proxy as cri_proxy

if TYPE_CHECKING:
    from conformance.targets.local.session import LocalSession

SCENARIO = "blog-example"  # image group 50000 (Merge only), pod group 4000 (both policies)
DROP_GID = 4000
ADD_GID = 50000
CLI = Path(sys.executable).parent / "sgp-conformance"
WRAPPER_SOURCE = Path(__file__).with_name("oci_wrapper.py")
CLI_TIMEOUT = 120
DEFAULT_PARENT = "k8s.io"  # containerd's cgroup parent for sandboxes that name none (cgroupfs)


@dataclass(frozen=True)
class Fault:
    """One injected fault and what the suite must say about it."""

    name: str
    description: str
    kind: str  # "wrapper" or "proxy"
    version: str  # containerd version behind it
    allowed: dict[str, set[str]]  # policy -> verdicts that count as caught (affected cases only)
    evidence: dict[str, str]  # policy -> text the case detail must contain
    hidden: str = ""  # text the detail must NOT contain (wrapper: containerd's reported user stays right)
    drop: tuple[int, ...] = ()  # wrapper: gids removed from additionalGids
    add: tuple[int, ...] = ()  # wrapper: gids added to additionalGids
    request_hooks: dict[str, cri_proxy.Hook] = field(default_factory=dict)  # proxy
    response_hooks: dict[str, cri_proxy.Hook] = field(default_factory=dict)  # proxy
    node_check: str = ""  # kubelet: the verdict the node-features check must give


FAIL = {Verdict.FAIL.value}
FAULTS: list[Fault] = [
    Fault("wrapper-drop-group", f"OCI wrapper drops gid {DROP_GID} from additionalGids", "wrapper", "2",
          allowed={p: FAIL for p in ("unset", "Merge", "Strict")},
          evidence={p: "first process /proc status Groups" for p in ("unset", "Merge", "Strict")},
          hidden="status user", drop=(DROP_GID,)),
    Fault("wrapper-add-image-group", f"OCI wrapper adds image gid {ADD_GID} (only Strict lacks it)", "wrapper",
          "2", allowed={"Strict": FAIL}, evidence={"Strict": "first process /proc status Groups"}, hidden="status user",
          add=(ADD_GID,)),
    Fault("proxy-strip-policy", "(a) CreateContainer loses supplemental_groups_policy; features advertised",
          "proxy", "2", allowed={"Strict": FAIL}, evidence={"Strict": "first process /proc status Groups"},
          request_hooks={"CreateContainer": cri_proxy.strip_policy}),
    Fault("proxy-lie-status-user", f"(b) ContainerStatus.user claims extra gid {cri_proxy.LIE_GROUP}", "proxy", "2",
          allowed={p: FAIL for p in ("unset", "Merge", "Strict")},
          evidence={p: "status user: groups" for p in ("unset", "Merge", "Strict")},
          response_hooks={"ContainerStatus": cri_proxy.lie_user}),
    Fault("proxy-drop-features", "(c) Status() without features", "proxy", "2",
          allowed={"unset": FAIL, "Merge": FAIL, "Strict": {Verdict.UNSUPPORTED.value}},
          evidence={"unset": "status user reported", "Merge": "status user reported",
                    "Strict": "does not advertise"},
          response_hooks={"Status": cri_proxy.drop_features}),
    Fault("proxy-claim-features-1.7", "(d) containerd 1.7 Status() claims features=true", "proxy", "1.7",
          allowed={p: FAIL for p in ("unset", "Merge", "Strict")},
          evidence={"unset": "status user: absent", "Merge": "status user: absent",
                    "Strict": "first process /proc status Groups"},
          response_hooks={"Status": cri_proxy.claim_features}),
]
KUBELET_FAULTS: list[Fault] = [
    Fault("kubelet-strip-policy", "(a) behind the kubelet: features claimed, but Strict arrives as Merge", "kubelet",
          "2", allowed={"Strict": FAIL}, evidence={"Strict": "first process"}, node_check=Verdict.FAIL.value,
          request_hooks={"CreateContainer": cri_proxy.strip_policy}),
    Fault("kubelet-lie-status-user", f"(b) behind the kubelet: status user claims extra gid {cri_proxy.LIE_GROUP}",
          "kubelet", "2", allowed={p: FAIL for p in ("unset", "Merge", "Strict")},
          evidence={p: "status user: groups" for p in ("unset", "Merge", "Strict")}, node_check=Verdict.PASS.value,
          response_hooks={"ContainerStatus": cri_proxy.lie_user}),
    Fault("kubelet-claim-features-1.7", "(d) behind the kubelet: containerd 1.7 claims features=true", "kubelet",
          "1.7", allowed={p: FAIL for p in ("unset", "Merge", "Strict")},
          evidence={"unset": "status user: absent", "Merge": "status user: absent", "Strict": "first process"},
          node_check=Verdict.FAIL.value, response_hooks={"Status": cri_proxy.claim_features}),
]
CONTROLS: list[Fault] = [
    Fault("control-runc", "handler runc, no wrapper", "wrapper", "2", allowed={}, evidence={}),
    Fault("control-proxy", "transparent proxy, no hook", "proxy", "2", allowed={}, evidence={}),
]
KUBELET_CONTROLS: list[Fault] = [
    Fault("control-kubelet-proxy", "transparent proxy behind the kubelet, no hook", "kubelet", "2", allowed={},
          evidence={}, node_check=Verdict.PASS.value),
]


@dataclass
class Outcome:
    """What the suite said about one fault."""

    fault: Fault
    verdicts: dict[str, str] = field(default_factory=dict)  # policy -> verdict
    details: dict[str, str] = field(default_factory=dict)  # policy -> expected-vs-observed text
    exit_code: int | None = None  # console command runs only
    problems: list[str] = field(default_factory=list)  # why it was missed
    notes: list[str] = field(default_factory=list)  # unaffected cases that did not pass
    rewrites: int | None = None  # wrapper faults: config.json files the wrapper changed
    node_check: str = ""  # kubelet faults: the node-features check's verdict
    seconds: float = 0.0

    @property
    def caught(self) -> bool:
        return not self.problems

    def line(self) -> str:
        word = ("ok" if self.caught else "broken") if not self.fault.allowed else \
            ("caught" if self.caught else "missed")
        verdicts = " ".join(f"{p}={self.verdicts[p]}" for p in ("unset", "Merge", "Strict") if p in self.verdicts)
        verdicts += f" node-features={self.node_check}" if self.node_check else ""
        code = f" exit={self.exit_code}" if self.exit_code is not None else ""
        rewrites = f" rewrites={self.rewrites}" if self.rewrites is not None else ""
        return f"{word:7} {self.fault.name:26} {SCENARIO}: {verdicts}{code}{rewrites} ({self.seconds:.1f}s)"

    def diff(self) -> str:
        """The suite's own expected-vs-observed text for every case that did not pass, plus problems."""
        out = [f"{self.fault.name}: {self.fault.description}"]
        for policy, detail in self.details.items():
            verdict = self.node_check if policy == "node-features" else self.verdicts.get(policy)
            if verdict != Verdict.PASS.value:
                out.append(f"  [{policy}] {verdict}:")
                out += [f"      {line}" for line in detail.splitlines()]
        out += [f"  MISSED: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def assess(out: Outcome) -> Outcome:
    """Fill problems/notes from verdicts and details."""
    fault = out.fault
    for policy in ("unset", "Merge", "Strict"):
        verdict = out.verdicts.get(policy)
        if verdict is None:
            out.problems.append(f"{policy}: no verdict recorded")
        elif policy in fault.allowed:
            if verdict not in fault.allowed[policy]:
                out.problems.append(f"{policy}: verdict {verdict}, expected one of {sorted(fault.allowed[policy])}")
            elif fault.evidence.get(policy, "") not in out.details.get(policy, ""):
                out.problems.append(f"{policy}: detail lacks the evidence {fault.evidence[policy]!r}")
            elif fault.hidden and fault.hidden in out.details.get(policy, ""):
                out.problems.append(f"{policy}: detail mentions {fault.hidden!r}: the fault leaked into the "
                                    "runtime's report, so the process evidence was not tested alone")
        elif verdict != Verdict.PASS.value:
            target = out.problems if not fault.allowed else out.notes  # a control must pass outright
            target.append(f"{policy} (not affected by the fault): verdict {verdict}, expected pass")
    if out.rewrites == 0:
        out.problems.append("the wrapper rewrote no config.json: the fault was not injected")
    if fault.node_check and out.node_check != fault.node_check:
        out.problems.append(f"node-features check: verdict {out.node_check or 'none'}, expected {fault.node_check}")
    if out.exit_code is not None:
        want = 0 if not fault.allowed else 1
        if out.exit_code != want:
            out.problems.append(f"console command exited {out.exit_code}, expected {want}")
    return out


class Lab:
    """Private containerd runtimes for the faults, started on first use; close() removes all of them."""

    def __init__(self, root: Path | None = None):
        self.root = root or Path("/var/tmp/sgpf") / secrets.token_hex(3)
        self.root.mkdir(parents=True, exist_ok=True)
        self.catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
        self.sessions: dict[str, NodeSession] = {}
        self.handlers: dict[str, str] = {}
        # proxy runs reach a private containerd through CRI_ENDPOINT, where the suite sets no cgroup parent
        # and containerd uses its default: the Lab removes that parent if it made it
        self.default_parent_existed = bool(cgroup_dirs(DEFAULT_PARENT))

    def _wrapper(self, fault: Fault) -> str:
        """Install a copy of the wrapper named after the fault, with its settings file beside it."""
        wrappers = self.root / "wrappers"
        wrappers.mkdir(exist_ok=True)
        path = wrappers / fault.name
        body = WRAPPER_SOURCE.read_text()
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
        runc = oci.resolve("", "containerd", "2", [], default_cache()).path  # PATH's, else Debian's in the cache
        settings = {"runc": str(runc), "drop": list(fault.drop), "add": list(fault.add),
                    "log": str(wrappers / f"{fault.name}.log")}
        (wrappers / f"{fault.name}.json").write_text(json.dumps(settings))
        return str(path)

    def session(self, version: str) -> NodeSession:
        """A started NodeSession on a private containerd `version`; on 2.x the wrapper faults are its handlers."""
        if version not in self.sessions:
            extra = {}
            if version == "2":
                extra = {f.name: self._wrapper(f) for f in FAULTS if f.kind == "wrapper"}
            opts = Options(version=version, extra_handlers=extra, results_dir=self.root / f"results-{version}",
                           state_dir=self.root / "state")
            session = NodeSession(opts, self.catalogue)
            self.sessions[version] = session
            session.start()
        return self.sessions[version]

    def close(self) -> list[str]:
        """Stop every runtime; return what was left behind (processes, files)."""
        errors = []
        for session in self.sessions.values():
            try:
                session.stop()
            except SuiteError as exc:
                errors.append(str(exc))
        self.sessions.clear()
        if not self.default_parent_existed:
            remove_cgroups(DEFAULT_PARENT)
            errors += [f"cgroup dir {d}" for d in cgroup_dirs(DEFAULT_PARENT)]
        errors += [f"process {pid} mentions {self.root}" for pid in processes_mentioning(str(self.root))]
        state = self.root / "state"
        if state.exists():
            errors += [f"state left: {p}" for p in state.iterdir()]
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            self.root.parent.rmdir()  # the shared parent, once no other lab uses it
        except OSError:
            pass
        return errors

    def run(self, fault: Fault) -> Outcome:
        started = time.monotonic()
        run = {"wrapper": self._run_wrapper, "proxy": self._run_proxy, "kubelet": self._run_kubelet}[fault.kind]
        out = run(fault)
        out.seconds = time.monotonic() - started
        return assess(out)

    def _run_wrapper(self, fault: Fault) -> Outcome:
        session = self.session(fault.version)
        runtime = session.runtime
        assert runtime.client is not None and session.target is not None and session.info is not None
        handler = "runc" if not fault.allowed else fault.name
        target = NodeTarget(runtime.client, runtime.image_refs, session.target.log_root, session.run_id,
                            handler=handler, cgroup_parent=session.target.cgroup_parent)
        scn = self.catalogue.by_name(SCENARIO)
        out = Outcome(fault)
        log = self.root / "wrappers" / f"{fault.name}.log"
        acted_before = len(log.read_text().splitlines()) if log.exists() else 0
        for policy in scn.policies:
            try:
                obs = target.run_case(scn, policy)
            except (SuiteError, CRIError, ValueError) as exc:
                out.verdicts[policy], out.details[policy] = Verdict.ERROR.value, f"{type(exc).__name__}: {exc}"
                continue
            judgement = self.catalogue.judge(scn, policy, obs, session.info)
            out.verdicts[policy], out.details[policy] = judgement.verdict.value, judgement.detail
        if fault.allowed:
            out.rewrites = (len(log.read_text().splitlines()) if log.exists() else 0) - acted_before
        return out

    def _run_proxy(self, fault: Fault) -> Outcome:
        session = self.session(fault.version)
        provisioned = session.runtime.provisioned
        assert provisioned is not None
        run_dir = self.root / f"{fault.name}-{secrets.token_hex(2)}"
        (run_dir / "state").mkdir(parents=True)
        ctr_dir = str(Path(provisioned.ctr[0]).parent)  # images are in already: ctr imports nothing
        env = {**os.environ, "SGP_STATE_DIR": str(run_dir / "state"),
               "PATH": f"{ctr_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        argv = [str(CLI), "run", "--cri-endpoint", "", "--results-dir", str(run_dir / "results"), "-k",
                f"{SCENARIO} and not userns"]
        with cri_proxy.CRIProxy(run_dir / "cri.sock", provisioned.endpoint, dict(fault.request_hooks),
                                dict(fault.response_hooks)) as proxy:
            argv[3] = proxy.endpoint
            res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT, cwd=PROJECT)
        out = Outcome(fault, exit_code=res.returncode)
        results = run_dir / "results" / "results.json"
        if not results.exists():
            out.problems.append(f"no results.json; output:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
            return out
        for case in json.loads(results.read_text())["cases"]:
            out.verdicts[case["policy"]] = case["verdict"]
            out.details[case["policy"]] = case["detail"]
        leftover = list((run_dir / "state").iterdir())
        if leftover:
            out.problems.append(f"the run left {leftover}")
        shutil.rmtree(run_dir, ignore_errors=True)
        return out


    @contextlib.contextmanager
    def local_cluster(self, fault: Fault) -> Iterator[LocalSession]:
        """A TARGET=local session (not started) whose kubelet talks to the runtime through the fault's proxy;
        everything it started and the proxy go afterwards."""
        from conformance.targets.local.session import LocalSession

        run_dir = self.root / f"{fault.name}-{secrets.token_hex(2)}"
        opts = Options(target="local", version=fault.version, k8s_bin_dir=Path(os.environ["K8S_BIN_DIR"]),
                       etcd_bin=Path(os.environ["ETCD_BIN"]) if os.environ.get("ETCD_BIN") else None,
                       results_dir=run_dir / "results", state_dir=self.root / "state", parallel=1)
        proxies: list[cri_proxy.CRIProxy] = []

        def behind_proxy(runtime_endpoint: str) -> str:
            proxy = cri_proxy.CRIProxy(run_dir / "kubelet-cri.sock", runtime_endpoint, dict(fault.request_hooks),
                                       dict(fault.response_hooks))
            proxies.append(proxy.__enter__())
            return proxy.endpoint

        run_dir.mkdir(parents=True)
        session = LocalSession(opts, self.catalogue, kubelet_endpoint=behind_proxy)
        try:
            yield session
        finally:
            session.stop()
            for proxy in proxies:
                proxy.__exit__(None, None, None)
            shutil.rmtree(run_dir, ignore_errors=True)

    def shared_pod(self, fault: Fault, policy: str = "Merge") -> list[object]:
        """SCENARIO's every container kind under `policy`, as one batch (one shared pod) on a real kubelet
        behind the fault: each kind's outcome, or the exception that is its own."""
        from conformance.core.case import Case
        from conformance.kube.manifests import VARIANTS

        with self.local_cluster(fault) as session:
            session.start()
            runner = session.runner()
            scn = self.catalogue.by_name(SCENARIO)
            cases = [Case(scn, policy, v) for v in VARIANTS]
            return [o if isinstance(o, BaseException) else runner.judge(c, o).judgement
                    for c, o in zip(cases, runner.run_batch(cases), strict=True)]

    def _run_kubelet(self, fault: Fault) -> Outcome:
        """The fault between a real kubelet and the runtime (TARGET=local); everything read through the API."""
        from conformance.core.case import Case
        from conformance.kube.checks import NODE_FEATURES

        out = Outcome(fault)
        with self.local_cluster(fault) as session:
            try:
                session.start()
                runner = session.runner()
                scn = self.catalogue.by_name(SCENARIO)
                for case in [Case(None, "n/a", node=session.node_name, check=NODE_FEATURES),
                             *(Case(scn, p) for p in scn.policies)]:
                    try:
                        verdicted = runner.judge(case, runner.run(case))
                        verdict, detail = verdicted.judgement.verdict.value, verdicted.judgement.detail
                    except (SuiteError, ValueError) as exc:
                        verdict, detail = Verdict.ERROR.value, f"{type(exc).__name__}: {exc}"
                    if case.check:
                        out.node_check = verdict
                        out.details["node-features"] = detail
                    else:
                        out.verdicts[case.policy], out.details[case.policy] = verdict, detail
            except SuiteError as exc:
                out.problems.append(f"the local cluster did not start: {exc}")
        return out


def run_all(faults: list[Fault], report: Callable[[Outcome], None] | None = None,
            root: Path | None = None) -> tuple[list[Outcome], list[str]]:
    """Run faults in order (one Lab); return the outcomes and the leftovers of the Lab."""
    lab = Lab(root)
    outcomes = []
    try:
        for fault in faults:
            outcome = lab.run(fault)
            outcomes.append(outcome)
            if report:
                report(outcome)
    finally:
        leftovers = lab.close()
    return outcomes, leftovers

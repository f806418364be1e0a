"""Cases as pods: KubeTarget creates one pod per scenario and policy carrying the probe in each container kind
asked for, follows the run's pods and events through one watch, reads each kind's evidence back as raw JSON,
and judges it: admission first, then the shared identity verdict (behaviours.md items 13-17, E11, E15, E16)."""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from conformance import interrupt
from conformance.core.case import CaseError, own
from conformance.core.catalogue import Catalogue
from conformance.core.floor import BarePod
from conformance.core.model import Verdict
from conformance.core.observe import END, PROBE, ProbeError, block_source, exited_block, parse_probe
from conformance.core.scenario import Scenario
from conformance.core.verdict import Judgement, Observation
from conformance.errors import SuiteError
from conformance.kube.admission import REJECT_REASON, is_rejected, rejection_judgement
from conformance.kube.api import ApiError, KubeApi
from conformance.kube.manifests import (
    CONTAINER_CALLS,
    bare_pod_manifest,
    ephemeral_manifest,
    ephemeral_target,
    namespace_manifest,
    pod_manifest,
    probe_name,
)
from conformance.kube.status import container_status, kubelet_minor, runtime_info, status_user
from conformance.kube.waits import NotYet, Waits, WaitTimeout, not_found_is_not_yet
from conformance.kube.watch import RunWatch

# container waiting reasons after which waiting longer cannot help
CREATE_ERRORS = {"CreateContainerError", "CreateContainerConfigError", "RunContainerError"}
START_ERRORS = {"RunContainerError"}  # StartContainer failed (a container the kubelet restarts, e.g. a sidecar)
IMAGE_ERRORS = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"}


@dataclass
class PodOutcome:
    """What one pod showed: the pod JSON, events, and the probe evidence (if it ran)."""

    pod: dict
    node: dict | None
    observation: Observation = field(default_factory=Observation)
    events: list[dict] = field(default_factory=list)
    exec_applicable: bool = True


class KubeTarget:
    """Runs cases as pods in one namespace per run, read through one watch (RunWatch); cleanup() deletes the
    namespace."""

    def __init__(self, api: KubeApi, image_refs: dict[str, str], run_id: str | None = None,
                 waits: Waits | None = None, pull_policy: str = "Never", host_network: bool = False,
                 keep_pods: bool = False):
        self.api = api
        self.keep_pods = keep_pods  # KEEP=1: the cases' pods stay (e.g. for `sgp-conformance audit`)
        self.pull_policy = pull_policy
        self.host_network = host_network
        self.image_refs = image_refs
        self.run_id = run_id or secrets.token_hex(4)
        self.namespace = f"sgp-{self.run_id}"
        self.waits = waits or Waits()
        self._nodes: dict[str, dict] = {}
        self._watch: RunWatch | None = None
        self._deletes: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        """The run's namespace, with its default service account (pods are refused until it exists). The
        suite creates it rather than wait seconds for the controller-manager to; where it may not (403) or
        the controller was first (409), it waits for the controller's."""
        self.api.create_namespace(namespace_manifest(self.run_id))
        try:
            self.api.create_service_account(self.namespace, "default")
        except ApiError as exc:
            if exc.status not in (403, 409):
                raise
        self.waits.until(lambda: not_found_is_not_yet(lambda: self.api.get_service_account(self.namespace, "default")),
                         self.waits.ready, f"default service account in {self.namespace}")

    def close(self) -> None:
        """Stop watching; deletes still queued go on unless the run is stopping (the namespace goes anyway)."""
        with self._lock:
            watch, deletes = self._watch, self._deletes
            self._watch = self._deletes = None
        if watch is not None:
            watch.stop()
        if deletes is not None:
            deletes.shutdown(wait=not self.waits.stopping.is_set(), cancel_futures=self.waits.stopping.is_set())

    def stop(self) -> None:
        """The run is over: waits still running give up at their next poll, queued deletes are dropped, the
        watch stops."""
        self.waits.stopping.set()
        self.close()

    def cleanup(self) -> None:
        self.close()
        self.api.delete_namespace(self.namespace)

    def cleanup_all(self) -> list[str]:
        """Delete every namespace any run of the suite left (label app.kubernetes.io/managed-by)."""
        names = [ns["metadata"]["name"] for ns in self.api.list_namespaces("app.kubernetes.io/managed-by="
                                                                             "sgp-conformance")]
        for name in names:
            self.api.delete_namespace(name)
        return names

    def linux_nodes(self) -> list[dict]:
        return [n for n in self.api.list_nodes("kubernetes.io/os=linux")]

    def node(self, name: str, fresh: bool = False) -> dict:
        """The Node object (cached; `fresh` reads it again)."""
        if fresh or name not in self._nodes:
            for node in self.api.list_nodes():
                self._nodes[node["metadata"]["name"]] = node
        if name not in self._nodes:
            raise SuiteError(f"node {name} not found")
        return self._nodes[name]

    def watch(self) -> RunWatch:
        """The run's watch, started on first use (an xdist worker's target starts its own)."""
        with self._lock:
            if self._watch is None:
                watch = RunWatch(self.api, self.namespace, self.run_id)
                self.waits.until(watch.start, self.waits.event, f"watch pods and events in {self.namespace}")
                self._watch = watch
            return self._watch

    def until(self, fn: Callable[[], Any], timeout: float, what: str) -> Any:
        """A wait that reads the watch: it wakes as soon as a pod or event of the run changed."""
        watch = self.watch()

        def attempt() -> Any:
            if watch.refused:
                raise SuiteError(watch.refused)
            try:
                return fn()
            except NotYet as exc:
                raise NotYet(f"{exc}; {watch.problem}" if watch.problem else str(exc)) from None

        return self.waits.until(attempt, timeout, what, pause=watch.pause)

    def pod(self, name: str) -> dict:
        """The pod as the watch last saw it."""
        pod = self.watch().pod(name)
        if pod is None:
            raise NotYet(f"pod {name} not seen yet")
        return pod

    # one pod -------------------------------------------------------------------------------
    def run_pod(self, scn: Scenario, policy: str, variant: str = "container", node: str | None = None) -> PodOutcome:
        outcome = self.run_group(scn, policy, (variant,), node)[variant]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_group(self, scn: Scenario, policy: str, variants: tuple[str, ...],
                  node: str | None = None) -> dict[str, PodOutcome | CaseError]:
        """One pod carrying the scenario's probe in each of `variants`; each kind's outcome, or the error that
        is its own (CaseError). A kind another kind's failure kept from running runs again in a pod of its own;
        where a kind of a shared pod broke (an error, not evidence), every other kind runs again alone, so no
        verdict depends on a neighbour."""
        kinds = variants[0][:4] if len(variants) == 1 else "".join(v[0] for v in variants)
        name = f"{scn.name[:36]}-{policy.lower()}-{kinds}-{secrets.token_hex(3)}"
        image = self.image_refs[scn.image]
        body = pod_manifest(scn, policy, image, self.run_id, name, variants, node, self.pull_policy,
                            self.host_network)
        self.watch()
        self.waits.until(lambda: self._create(body), self.waits.event, f"create pod {name}")
        try:
            outcomes, blocked = self._observe(scn, name, variants, image)
        finally:
            if not self.keep_pods:
                self._delete_later(name)
        for variant in blocked:
            outcomes[variant] = own(functools.partial(self.run_pod, scn, policy, variant, node))
        return outcomes

    def bare_pod(self, poll: float | None = None) -> BarePod:
        """The floor's pod: created as a case's pod is, waited for until it runs through the run's watch (with
        `poll`: a GET every `poll` seconds instead, as the bench's first floor did), deleted in the background."""
        name = f"bare-{secrets.token_hex(4)}"
        body = bare_pod_manifest(self.run_id, name, self.image_refs["agnhost-like"], self.pull_policy,
                                 self.host_network)
        self.watch()
        started = time.perf_counter()
        self.waits.until(lambda: self._create(body), self.waits.event, f"create pod {name}")
        try:
            if poll is None:
                self.until(lambda: _running(self.pod(name)), self.waits.pod, f"bare pod {name} running")
            else:
                self.waits.until(lambda: _running(self.api.get_pod(self.namespace, name)), self.waits.pod,
                                 f"bare pod {name} running", pause=lambda _: time.sleep(poll))
            return BarePod(time.perf_counter() - started)
        finally:
            self._delete_later(name)

    def _delete_later(self, name: str) -> None:
        """Delete a pod in the background, as the node target removes its sandboxes: the case does not wait."""
        with self._lock:
            if self._deletes is None:
                self._deletes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sgp-delete")
            self._deletes.submit(self._delete, name)

    def _delete(self, name: str) -> None:
        """Errors are left to the namespace's deletion at the end of the run."""
        with contextlib.suppress(SuiteError, ConnectionError, TimeoutError):
            self.api.delete_pod(self.namespace, name)

    def _create(self, body: dict) -> dict:
        """Create a pod; a namespace created moments ago may not have its default service account yet (403)."""
        try:
            return self.api.create_pod(self.namespace, body)
        except ApiError as exc:
            if exc.status == 403 and "serviceaccount" in str(exc):
                raise NotYet(str(exc)) from None
            raise

    def _observe(self, scn: Scenario, name: str, variants: tuple[str, ...],
                 image: str) -> tuple[dict[str, PodOutcome | CaseError], list[str]]:
        """Each kind's outcome, and the kinds a shared pod could not run (another kind's container failed), or
        must run again alone (another kind's container broke: its error is its own case's)."""
        allowed = scn.sandbox_refusal_is_evidence()  # a refusal any policy of the scenario allows
        shared = len(variants) > 1
        # alone, `main`'s failure is the ephemeral probe's evidence where the scenario expects containers to fail
        host_may_fail = not shared and scn.may_fail_at(CONTAINER_CALLS)
        target = ephemeral_target(scn, variants)
        found: dict[str, PodOutcome | str] = {}  # kind -> failure evidence, or its probe's complete log
        broken: dict[str, CaseError] = {}  # kind -> the error its own container hit (a shared pod)
        # the ephemeral probe joins at once (the kubelet starts it with the pod's first containers), but where
        # `main` may fail: then only once `main` runs, so a failed `main` is always the evidence, never a race
        added = "ephemeral" in variants and not host_may_fail
        if added:
            self._add_ephemeral(scn, name, image)

        def settled() -> dict:
            nonlocal added
            pod = self.pod(name)
            if is_rejected(pod):
                return pod
            for variant in variants:
                if variant in found or variant in broken:
                    continue
                settle = functools.partial(self._settle_kind, scn, pod, name, variant, target, image, allowed,
                                           host_may_fail, added, found)
                now = own(settle) if shared else settle()
                if isinstance(now, CaseError):
                    broken[variant] = now
                else:
                    added = now
            missing = [v for v in variants if v not in found and v not in broken]
            failed = bool(broken) or any(isinstance(o, PodOutcome) and (o.observation.create_error or
                                                                        o.observation.start_error)
                                         for o in found.values())
            if not missing or (shared and failed) or (pod.get("status") or {}).get("phase") == "Failed":
                return pod
            raise NotYet("; ".join(f"{probe_name(v)}: {_state(container_status(pod, v))}" for v in missing))

        try:
            pod = self.until(settled, self.waits.pod, f"probes of pod {name}")
        except WaitTimeout:
            if not shared:
                raise
            return {}, list(variants)  # each kind alone: a kind that hangs then times out in its own pod
        if is_rejected(pod):
            rejected = self._finish_rejected(name, pod)
            return {v: rejected for v in variants}, []
        if broken:
            return dict(broken), [v for v in variants if v not in broken]
        outcomes: dict[str, PodOutcome | CaseError] = {}
        blocked: list[str] = []
        printed: list[tuple[str, str]] = []  # shared kinds whose probe printed: the rest of their evidence next
        for variant in variants:
            got = found.get(variant)
            if got is None and shared:
                blocked.append(variant)
            elif got is None and variant == "ephemeral":
                outcomes[variant] = self._finish_rejected(name, pod)
            elif got is None:
                status = pod.get("status") or {}
                raise SuiteError(f"pod {name} failed: {status.get('reason')} {status.get('message', '')}")
            elif isinstance(got, PodOutcome):
                outcomes[variant] = got
            elif not shared:
                outcomes[variant] = self._probed(scn, name, variant, got)
            else:
                printed.append((variant, got))
        # each kind's exec (or exit) is its own: gathered side by side, each kind's error its own
        for variant, probed in zip([v for v, _ in printed], self._side_by_side(scn, name, printed), strict=True):
            (broken if isinstance(probed, CaseError) else outcomes)[variant] = probed  # type: ignore[index]
        if broken:  # read after the pod settled (an exec that broke): the others run again alone too
            return dict(broken), [v for v in variants if v not in broken]
        return outcomes, blocked

    def _side_by_side(self, scn: Scenario, name: str, printed: list[tuple[str, str]]) -> list[PodOutcome | CaseError]:
        """_probed for each (kind, log) at once, in order; a kind's error is its CaseError."""
        if len(printed) <= 1:
            return [own(functools.partial(self._probed, scn, name, v, log)) for v, log in printed]
        with ThreadPoolExecutor(max_workers=len(printed), thread_name_prefix="sgp-probe") as pool:
            futures = [pool.submit(own, functools.partial(self._probed, scn, name, v, log)) for v, log in printed]
            return [interrupt.result(f) for f in futures]

    def _settle_kind(self, scn: Scenario, pod: dict, name: str, variant: str, target: str, image: str,
                     allowed: bool, host_may_fail: bool, added: bool, found: dict[str, PodOutcome | str]) -> bool:
        """Look at one kind of a pod: its evidence goes to `found` once complete (NotYet until then). An
        ephemeral probe not added yet is added once its target runs; returns whether it has been added."""
        if variant == "ephemeral" and not added:
            ready = self._target_running(pod, name, target, allowed, host_may_fail)
            if isinstance(ready, PodOutcome):
                found[variant] = ready
            elif (ready.get("status") or {}).get("phase") != "Failed":
                self._add_ephemeral(scn, name, image)
                return True
            return added
        with contextlib.suppress(NotYet):
            found[variant] = self._probe_state(pod, name, variant, allowed)
        return added

    def _add_ephemeral(self, scn: Scenario, name: str, image: str) -> None:
        container = ephemeral_manifest(scn, image)
        container["imagePullPolicy"] = self.pull_policy
        self.api.add_ephemeral(self.namespace, name, container)

    def _probed(self, scn: Scenario, name: str, variant: str, log: str) -> PodOutcome:
        """The evidence of a probe that printed its block: the first process, then its exit (it exits after
        the probe) or a process exec'd into it, and the status user from the pod's latest status."""
        pod = self.pod(name)
        obs = Observation(first=parse_probe(log))
        exits = variant == "init" or (variant == "container" and scn.first_exit is not None)
        if exits:  # the first process exits after the probe: judged on its exit, nothing to exec into
            obs.expected_exit = 0 if variant == "init" else scn.first_exit
            obs.first_from = block_source(log)
            try:
                pod = self.until(lambda: self._terminated(name, variant), self.waits.event,
                                 f"exit of {probe_name(variant)} in pod {name}")
            except WaitTimeout:
                pass  # judged as still running
            terminated = ((container_status(pod, variant) or {}).get("state") or {}).get("terminated")
            obs.state = "CONTAINER_EXITED" if terminated else "CONTAINER_RUNNING"
            obs.exit_code = (terminated or {}).get("exitCode")
        else:
            obs.exec = parse_probe(self.api.exec(self.namespace, name, probe_name(variant), ["/bin/sh", "-c", PROBE]))
            pod = self.pod(name)  # status.user after the exec, from the latest status
        obs.user = status_user(container_status(pod, variant))
        return PodOutcome(pod, self._node_of(pod), obs, exec_applicable=not exits)

    def _node_of(self, pod: dict) -> dict | None:
        return self.node(pod["spec"]["nodeName"]) if pod.get("spec", {}).get("nodeName") else None

    def _terminated(self, name: str, variant: str) -> dict:
        pod = self.pod(name)
        if not ((container_status(pod, variant) or {}).get("state") or {}).get("terminated"):
            raise NotYet(f"{probe_name(variant)} still running")
        return pod

    def _finish_rejected(self, name: str, pod: dict) -> PodOutcome:
        """A pod that never ran (rejected by the kubelet, or Failed), with its events."""
        watch = self.watch()

        def events() -> list[dict]:
            found = watch.events(name)
            if is_rejected(pod) and not any(e.get("reason") == REJECT_REASON for e in found):
                raise NotYet("no rejection event yet")
            return found

        try:
            found = self.until(events, self.waits.event, f"events of pod {name}")
        except WaitTimeout:
            found = watch.events(name)
        return PodOutcome(pod, self._node_of(pod), Observation(), found, exec_applicable=False)

    def _target_running(self, pod: dict, name: str, target: str, sandbox_refusal_allowed: bool,
                        may_fail: bool = False) -> dict | PodOutcome:
        """The pod once the ephemeral probe's target container runs (or the pod Failed). Where the scenario
        expects a container not to be created or started (`may_fail`: the pod's own groups, which `main`
        shares, break it) `main`'s failure is the evidence."""
        entry = container_status(pod, "container", target)
        if may_fail:
            failed = self._start_failed(pod, entry)
            if failed is not None:
                return failed
        if (pod.get("status") or {}).get("phase") == "Failed":
            return pod
        self._raise_terminal(pod, "container", target)
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS and may_fail:
            return PodOutcome(pod, self._node_of(pod), waiting_observation(waiting, f"{target}: "),
                              exec_applicable=False)
        if waiting.get("reason") in CREATE_ERRORS:
            raise SuiteError(f"pod {name}: its {target} container cannot start, so no ephemeral container can join "
                             f"it: {waiting['reason']}: {waiting.get('message', '')}")
        if not (entry and (entry.get("state") or {}).get("running")):
            refused = self._sandbox_refused(name, pod, sandbox_refusal_allowed)
            if refused is not None:
                return refused
            raise NotYet(f"{target} container not running ({_state(entry)})")
        return pod

    def _start_failed(self, pod: dict, entry: dict | None) -> PodOutcome | None:
        """A container whose start failed (terminated, reason StartError: the kubelet's StartContainer got an
        error) as evidence; the status user the kubelet still reports for it is kept too."""
        terminated = ((entry or {}).get("state") or {}).get("terminated") or {}
        if terminated.get("reason") != "StartError":
            return None
        name = (entry or {}).get("name", "")
        obs = Observation(start_error=f"{name}: StartError: {terminated.get('message', '')}", user=status_user(entry))
        return PodOutcome(pod, self._node_of(pod), obs, exec_applicable=False)

    def _sandbox_refused(self, name: str, pod: dict, allowed: bool) -> PodOutcome | None:
        """A pod whose sandbox the runtime refuses never gets better (the kubelet retries every ~15 s):
        evidence where the scenario allows the refusal, else an error at once."""
        status = pod.get("status") or {}
        if status.get("phase") != "Pending" or not pod.get("spec", {}).get("nodeName"):
            return None
        found = self.watch().events(name, "FailedCreatePodSandBox")
        if not found:
            return None
        message = found[-1].get("message", "")
        if not allowed:
            raise SuiteError(f"pod {name}: the runtime refuses its sandbox (FailedCreatePodSandBox): {message}")
        return PodOutcome(pod, self._node_of(pod), Observation(sandbox_error=message), found, exec_applicable=False)

    def _probe_state(self, pod: dict, name: str, variant: str, sandbox_refusal_allowed: bool) -> PodOutcome | str:
        """The probe's complete log once it printed its block; evidence early on a create or start error or a
        refused sandbox; NotYet while it runs towards its block."""
        entry = container_status(pod, variant)
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS:
            if (pod.get("status") or {}).get("phase") == "Failed":
                return self._finish_rejected(name, pod)
            return PodOutcome(pod, self._node_of(pod), waiting_observation(waiting))
        self._raise_terminal(pod, variant, probe_name(variant))
        state = (entry or {}).get("state") or {}
        failed = self._start_failed(pod, entry)
        if failed is not None:
            return failed
        if "terminated" in state:
            return self._exited_probe(name, variant, state["terminated"])
        if "running" in state:
            log = self.api.pod_log(self.namespace, name, probe_name(variant))
            if END in log:
                return log
            raise NotYet(f"{probe_name(variant)} has not printed its block yet")
        if (pod.get("status") or {}).get("phase") != "Failed":
            refused = self._sandbox_refused(name, pod, sandbox_refusal_allowed)
            if refused is not None:
                return refused
        raise NotYet(f"{probe_name(variant)}: {_state(entry)}")

    def _exited_probe(self, name: str, variant: str, terminated: dict) -> str:
        """An exited probe's block: from its termination message, which the kubelet reads when it sees the exit
        and reports in the same status, so it is complete (observe.exited_block); the log only where the message
        gives the block's size instead, read until it holds that much."""
        message = terminated.get("message") or ""
        log = "" if END in message else self.api.pod_log(self.namespace, name, probe_name(variant))
        try:
            text = exited_block(message, log)
        except ProbeError as exc:
            raise ProbeError(f"container {probe_name(variant)} of {name} exited (code {terminated.get('exitCode')}) "
                             f"{exc}") from None
        if text is None:
            raise NotYet(f"{probe_name(variant)} exited; its log does not hold the whole block yet")
        return text

    @staticmethod
    def _raise_terminal(pod: dict, variant: str, container: str) -> None:
        entry = container_status(pod, variant, container)
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_ERRORS:
            raise SuiteError(f"image not in the node ({waiting['reason']}): {waiting.get('message', '')}; "
                             "the image load step did not reach the runtime")


def _running(pod: dict) -> dict:
    """The pod once its phase is Running."""
    if (pod.get("status") or {}).get("phase") != "Running":
        raise NotYet(f"pod {pod['metadata']['name']} is {(pod.get('status') or {}).get('phase', 'new')}")
    return pod


def waiting_observation(waiting: dict, prefix: str = "") -> Observation:
    """A container the kubelet could not create (CreateContainer*Error) or start (RunContainerError)."""
    text = f"{prefix}{waiting['reason']}: {waiting.get('message', '')}"
    if waiting["reason"] in START_ERRORS:
        return Observation(start_error=text)
    return Observation(create_error=text)


def _state(entry: dict | None) -> str:
    if not entry:
        return "no status yet"
    state = entry.get("state") or {}
    key = next(iter(state), "unknown")
    return f"{key} {(state.get(key) or {}).get('reason', '')}".strip()


# ----------------------------------------------------------------------------- judging a case


def judge_case(catalogue: Catalogue, scn: Scenario, policy: str, outcome: PodOutcome, variant: str) -> Judgement:
    """Admission first (rejection rule), then the shared identity verdict."""
    if outcome.node is None:
        return Judgement(Verdict.ERROR, "pod was never bound to a node")
    info = runtime_info(outcome.node)
    minor = kubelet_minor(outcome.node)
    admission = rejection_judgement(policy, outcome.pod, outcome.events, info.supports_policy, minor)
    if admission is not None:
        return admission
    if is_rejected(outcome.pod):
        raise AssertionError("rejection_judgement returned None for a rejected pod")
    return catalogue.judge(scn, policy, outcome.observation, info)


def case_observed(outcome: PodOutcome) -> dict:
    """The evidence of one pod for results.json: the probes, the status user, the pod and its events."""
    observed = outcome.observation.to_json()
    status = outcome.pod.get("status") or {}
    observed["pod"] = {"name": outcome.pod.get("metadata", {}).get("name"), "phase": status.get("phase"),
                       "reason": status.get("reason"), "message": status.get("message"),
                       "node": outcome.pod.get("spec", {}).get("nodeName")}
    if outcome.events:
        observed["events"] = [{k: e.get(k) for k in ("type", "reason", "message", "count")} for e in outcome.events]
    if not outcome.exec_applicable and outcome.observation.first is not None:
        observed["exec_process"] = "not applicable: the first process exits after the probe"
    return observed


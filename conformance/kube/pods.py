"""Cases as pods: KubeTarget creates one pod per case in the run's namespace, waits for its probe,
reads the evidence back as raw JSON, and judges it: admission first, then the shared identity verdict
(behaviours.md items 13-17, E11, E15, E16)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from conformance.catalogue import Catalogue
from conformance.errors import SuiteError
from conformance.kube.admission import REJECT_REASON, is_rejected, rejection_judgement
from conformance.kube.api import ApiError, KubeApi
from conformance.kube.manifests import (
    PROBE_NAME,
    ephemeral_manifest,
    namespace_manifest,
    pod_manifest,
)
from conformance.kube.status import container_status, kubelet_minor, runtime_info, status_user
from conformance.kube.waits import NotYet, Waits, WaitTimeout, not_found_is_not_yet
from conformance.model import Verdict
from conformance.observe import END, PROBE, ProbeError, parse_probe
from conformance.scenario import Scenario
from conformance.verdict import Judgement, Observation

# container waiting reasons after which waiting longer cannot help
CREATE_ERRORS = {"CreateContainerError", "CreateContainerConfigError", "RunContainerError"}
START_ERRORS = {"RunContainerError"}  # StartContainer failed (a container the kubelet restarts, e.g. a sidecar)
LOG_GRACE = 5.0  # seconds an exited probe's log may take to hold all it printed
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
    """Runs cases as pods in one namespace per run; cleanup() deletes the namespace."""

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
        self._short_logs: dict[str, int] = {}  # pod -> polls that found its exited probe's log incomplete

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

    def cleanup(self) -> None:
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

    # one case ------------------------------------------------------------------------------
    def run_pod(self, scn: Scenario, policy: str, variant: str = "container", node: str | None = None) -> PodOutcome:
        name = f"{scn.name[:36]}-{policy.lower()}-{variant[:4]}-{secrets.token_hex(3)}"
        image = self.image_refs[scn.image]
        body = pod_manifest(scn, policy, image, self.run_id, name, variant, node, self.pull_policy, self.host_network)
        self.waits.until(lambda: self._create(body), self.waits.event, f"create pod {name}")
        try:
            return self._observe(scn, name, variant, image)
        finally:
            if not self.keep_pods:
                self._delete(name)

    def _delete(self, name: str) -> None:
        try:
            self.api.delete_pod(self.namespace, name)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def _create(self, body: dict) -> dict:
        """Create a pod; a namespace created moments ago may not have its default service account yet (403)."""
        try:
            return self.api.create_pod(self.namespace, body)
        except ApiError as exc:
            if exc.status == 403 and "serviceaccount" in str(exc):
                raise NotYet(str(exc)) from None
            raise

    def _observe(self, scn: Scenario, name: str, variant: str, image: str) -> PodOutcome:
        # a refused sandbox is evidence where the scenario allows it, or for hostUsers: false (a kubelet refuses
        # those pods on a runtime handler without user namespaces: the verdict is then unsupported)
        allowed = scn.user_namespace or any(o.error == "RunPodSandbox" for p in scn.policies for o in scn.outcomes(p))
        if variant == "ephemeral":
            main_may_fail = any(o.error in ("CreateContainer", "StartContainer") for p in scn.policies
                                for o in scn.outcomes(p))
            pod = self.waits.until(lambda: self._main_running(name, allowed, main_may_fail), self.waits.pod,
                                   f"pod {name} running")
            if isinstance(pod, PodOutcome):
                return pod
            if is_rejected(pod) or (pod.get("status") or {}).get("phase") == "Failed":
                return self._finish_rejected(name, pod)
            container = ephemeral_manifest(scn, image)
            container["imagePullPolicy"] = self.pull_policy
            self.api.add_ephemeral(self.namespace, name, container)
        done = self.waits.until(lambda: self._probe_done(name, variant, allowed), self.waits.pod,
                                f"probe of pod {name}")
        if isinstance(done, PodOutcome):
            return done
        pod, log = done
        if is_rejected(pod) or ((pod.get("status") or {}).get("phase") == "Failed" and log is None):
            return self._finish_rejected(name, pod)
        entry = container_status(pod, variant)
        node = self.node(pod["spec"]["nodeName"]) if pod.get("spec", {}).get("nodeName") else None
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS:
            return PodOutcome(pod, node, waiting_observation(waiting))
        obs = Observation(first=parse_probe(log or ""))
        exits = variant == "init" or (variant == "container" and scn.first_exit is not None)
        outcome = PodOutcome(pod, node, obs, exec_applicable=not exits)
        if exits:  # the first process exits after the probe: judged on its exit, nothing to exec into
            obs.expected_exit = 0 if variant == "init" else scn.first_exit
            try:
                pod = self.waits.until(lambda: self._terminated(name, variant), self.waits.event,
                                       f"exit of {PROBE_NAME} in pod {name}")
            except WaitTimeout:
                pass  # judged as still running
            outcome.pod = pod
            entry = container_status(pod, variant)
            terminated = ((entry or {}).get("state") or {}).get("terminated")
            obs.state = "CONTAINER_EXITED" if terminated else "CONTAINER_RUNNING"
            obs.exit_code = (terminated or {}).get("exitCode")
        else:
            obs.exec = parse_probe(self.api.exec(self.namespace, name, PROBE_NAME, ["/bin/sh", "-c", PROBE]))
            pod = self.api.get_pod(self.namespace, name)  # status.user after the exec, from the latest status
            outcome.pod = pod
        obs.user = status_user(container_status(pod, variant))
        return outcome

    def _terminated(self, name: str, variant: str) -> dict:
        pod = self.api.get_pod(self.namespace, name)
        if not ((container_status(pod, variant) or {}).get("state") or {}).get("terminated"):
            raise NotYet(f"{PROBE_NAME} still running")
        return pod

    def _finish_rejected(self, name: str, pod: dict) -> PodOutcome:
        node = self.node(pod["spec"]["nodeName"]) if pod.get("spec", {}).get("nodeName") else None
        selector = f"involvedObject.kind=Pod,involvedObject.name={name}"

        def events() -> list[dict]:
            found = self.api.list_events(self.namespace, selector)
            if is_rejected(pod) and not any(e.get("reason") == REJECT_REASON for e in found):
                raise NotYet("no rejection event yet")
            return found

        try:
            found = self.waits.until(events, self.waits.event, f"events of pod {name}")
        except WaitTimeout:
            found = self.api.list_events(self.namespace, selector)
        return PodOutcome(pod, node, Observation(), found, exec_applicable=False)

    def _main_running(self, name: str, sandbox_refusal_allowed: bool, may_fail: bool = False) -> dict | PodOutcome:
        """The pod once `main` runs. Where the scenario expects a container not to be created or started
        (`may_fail`: the pod's own groups, which `main` shares, break it) `main`'s failure is the evidence."""
        pod = self.api.get_pod(self.namespace, name)
        if may_fail:
            failed = self._start_failed(pod, container_status(pod, "container", "main"))
            if failed is not None:
                return failed
        if (pod.get("status") or {}).get("phase") == "Failed":
            return pod
        self._raise_terminal(pod, "container", "main")
        entry = container_status(pod, "container", "main")
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS and may_fail:
            node = self.node(pod["spec"]["nodeName"]) if pod.get("spec", {}).get("nodeName") else None
            return PodOutcome(pod, node, waiting_observation(waiting, "main: "), exec_applicable=False)
        if waiting.get("reason") in CREATE_ERRORS:
            raise SuiteError(f"pod {name}: its main container cannot start, so no ephemeral container can join it: "
                             f"{waiting['reason']}: {waiting.get('message', '')}")
        if not (entry and (entry.get("state") or {}).get("running")):
            refused = self._sandbox_refused(name, pod, sandbox_refusal_allowed)
            if refused is not None:
                return refused
            raise NotYet(f"main container not running ({_state(entry)})")
        return pod

    def _start_failed(self, pod: dict, entry: dict | None) -> PodOutcome | None:
        """A container whose start failed (terminated, reason StartError: the kubelet's StartContainer got an
        error) as evidence; the status user the kubelet still reports for it is kept too."""
        terminated = ((entry or {}).get("state") or {}).get("terminated") or {}
        if terminated.get("reason") != "StartError":
            return None
        node = self.node(pod["spec"]["nodeName"]) if pod.get("spec", {}).get("nodeName") else None
        name = (entry or {}).get("name", "")
        obs = Observation(start_error=f"{name}: StartError: {terminated.get('message', '')}", user=status_user(entry))
        return PodOutcome(pod, node, obs, exec_applicable=False)

    def _sandbox_refused(self, name: str, pod: dict, allowed: bool) -> PodOutcome | None:
        """A pod whose sandbox the runtime refuses never gets better (the kubelet retries every ~15 s):
        evidence where the scenario allows the refusal, else an error at once."""
        status = pod.get("status") or {}
        if status.get("phase") != "Pending" or not pod.get("spec", {}).get("nodeName"):
            return None
        found = self.api.list_events(self.namespace, f"involvedObject.kind=Pod,involvedObject.name={name},"
                                                     "reason=FailedCreatePodSandBox")
        if not found:
            return None
        message = found[-1].get("message", "")
        if not allowed:
            raise SuiteError(f"pod {name}: the runtime refuses its sandbox (FailedCreatePodSandBox): {message}")
        node = self.node(pod["spec"]["nodeName"])
        return PodOutcome(pod, node, Observation(sandbox_error=message), found, exec_applicable=False)

    def _probe_done(self, name: str, variant: str,
                    sandbox_refusal_allowed: bool) -> tuple[dict, str | None] | PodOutcome:
        """(pod, log) once the probe printed its block; early on Failed, a create error or a refused sandbox."""
        pod = self.api.get_pod(self.namespace, name)
        if (pod.get("status") or {}).get("phase") == "Failed" and is_rejected(pod):
            return pod, None
        entry = container_status(pod, variant)
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS:
            return pod, None
        self._raise_terminal(pod, variant, PROBE_NAME)
        state = (entry or {}).get("state") or {}
        failed = self._start_failed(pod, entry)
        if failed is not None:
            return failed
        if "running" in state or "terminated" in state:
            log = self.api.pod_log(self.namespace, name, PROBE_NAME)
            if END in log:
                return pod, log
            if "terminated" in state:
                # the runtime may still be copying the last output into the log file the API reads
                self._short_logs[name] = polls = self._short_logs.get(name, 0) + 1
                if polls * self.waits.interval < LOG_GRACE:
                    raise NotYet(f"container {PROBE_NAME} exited; its log is not complete yet")
                raise ProbeError(f"container {PROBE_NAME} of {name} exited without probe output:\n{log[-800:]}")
        if (pod.get("status") or {}).get("phase") == "Failed":
            raise SuiteError(f"pod {name} failed: {(pod.get('status') or {}).get('reason')} "
                             f"{(pod.get('status') or {}).get('message', '')}")
        if not state.get("running") and not state.get("terminated"):
            refused = self._sandbox_refused(name, pod, sandbox_refusal_allowed)
            if refused is not None:
                return refused
        raise NotYet(f"container {PROBE_NAME}: {_state(entry)}")

    @staticmethod
    def _raise_terminal(pod: dict, variant: str, container: str) -> None:
        entry = container_status(pod, variant, container)
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_ERRORS:
            raise SuiteError(f"image not in the node ({waiting['reason']}): {waiting.get('message', '')}; "
                             "the image load step did not reach the runtime")


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


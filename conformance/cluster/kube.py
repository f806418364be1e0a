"""Kubernetes-level checks: the scenarios delivered as pods, read through the API as raw JSON.

Verdicts reuse conformance.verdict (identity comparisons) and add the kubelet's admission rule:
Strict on a node that does not advertise the feature is rejected from kubelet 1.33 on
(behaviours.md items 13-17, E11, E15, E16, E23)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from conformance.catalogue import Catalogue
from conformance.cluster.versions import vkey
from conformance.errors import SuiteError
from conformance.model import Expectation, RuntimeInfo, Verdict
from conformance.observe import END, PROBE, ProbeError, parse_probe
from conformance.scenario import Scenario
from conformance.verdict import Judgement, Observation

RUN_LABEL = "sgp.conformance/run-id"
MANAGED = {"app.kubernetes.io/managed-by": "sgp-conformance"}
FIELD = "spec.securityContext.supplementalGroupsPolicy"
REJECT_REASON = "SupplementalGroupsPolicyNotSupported"
REJECT_MESSAGE = "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node"
REJECT_FROM_MINOR = 33  # kubelet admission rejects from Beta (1.33) on; alpha falls back to Merge silently
VARIANTS = ("container", "init", "sidecar", "ephemeral")
STATUS_KEY = {"container": "containerStatuses", "init": "initContainerStatuses",
              "sidecar": "initContainerStatuses", "ephemeral": "ephemeralContainerStatuses"}
PROBE_NAME = "probe"
# container waiting reasons after which waiting longer cannot help
CREATE_ERRORS = {"CreateContainerError", "CreateContainerConfigError", "RunContainerError"}
IMAGE_ERRORS = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"}
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class KubeApi(Protocol):
    """The API calls the checks make; every read returns the raw JSON the API server sent."""

    def create_namespace(self, body: dict) -> dict: ...
    def delete_namespace(self, name: str) -> None: ...
    def list_namespaces(self, label_selector: str) -> list[dict]: ...
    def create_pod(self, namespace: str, body: dict, dry_run: bool = False) -> dict: ...
    def patch_pod(self, namespace: str, name: str, body: dict, dry_run: bool = False) -> dict: ...
    def add_ephemeral(self, namespace: str, name: str, container: dict) -> dict: ...
    def get_pod(self, namespace: str, name: str) -> dict: ...
    def delete_pod(self, namespace: str, name: str) -> None: ...
    def list_pods(self, namespace: str, label_selector: str = "") -> list[dict]: ...
    def pod_log(self, namespace: str, name: str, container: str) -> str: ...
    def exec(self, namespace: str, name: str, container: str, argv: list[str]) -> str: ...
    def list_events(self, namespace: str, field_selector: str) -> list[dict]: ...
    def list_nodes(self, label_selector: str = "") -> list[dict]: ...
    def get_service_account(self, namespace: str, name: str) -> dict: ...
    def create_service_account(self, namespace: str, name: str) -> dict: ...


class ApiError(SuiteError):
    """An API call failed: HTTP status plus the Status object the server returned."""

    def __init__(self, status: int, body: dict, what: str = ""):
        self.status = status
        self.body = body
        super().__init__(f"{what}: HTTP {status}: {body.get('message', body)}")

    @property
    def causes(self) -> list[dict]:
        return list((self.body.get("details") or {}).get("causes") or [])


class NotYet(Exception):
    """Waiting goes on (retried by tenacity; never escapes a wait)."""


class WaitTimeout(SuiteError):
    """A bounded wait ran out."""


def transient(exc: BaseException) -> bool:
    """Retry these: throttling, server errors, dropped connections. Never assertion failures."""
    if isinstance(exc, ApiError):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | TimeoutError)


def not_found_is_not_yet(fn: Callable[[], Any]) -> Any:
    """404 while waiting for something to appear means: not yet."""
    try:
        return fn()
    except ApiError as exc:
        if exc.status == 404:
            raise NotYet(str(exc)) from None
        raise


class Stopped(SuiteError):
    """The run is ending (Ctrl-C, a failure that stops the run): waits give up at once."""


@dataclass
class Waits:
    """Bounds for every wait (seconds); tests shrink them and pass a fake sleep. Setting `stopping` ends
    every wait at its next poll (cases still running when the run ends must not hold it up)."""

    pod: float = 120.0
    event: float = 30.0
    ready: float = 300.0
    interval: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    stopping: threading.Event = field(default_factory=threading.Event)

    def until(self, fn: Callable[[], Any], timeout: float, what: str) -> Any:
        """Call fn until it returns without NotYet; transient API errors are retried too."""
        retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(self.interval), reraise=True,
                            retry=retry_if_exception(lambda e: isinstance(e, NotYet) or transient(e)),
                            sleep=self.sleep)

        def attempt() -> Any:
            if self.stopping.is_set():
                raise Stopped(f"{what}: the run is stopping")
            return fn()

        try:
            return retrying(attempt)
        except NotYet as exc:
            raise WaitTimeout(f"{what}: not done after {timeout:.0f}s: {exc}") from None


# ----------------------------------------------------------------------------- manifests


def namespace_manifest(run_id: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": f"sgp-{run_id}", "labels": {RUN_LABEL: run_id, **MANAGED}}}


def pod_security_context(scn: Scenario, policy: str) -> dict:
    sc: dict[str, Any] = {}
    if scn.pod.run_as_user is not None:
        sc["runAsUser"] = scn.pod.run_as_user
    if scn.pod.run_as_group is not None:
        sc["runAsGroup"] = scn.pod.run_as_group
    if scn.pod.supplemental_groups:
        sc["supplementalGroups"] = list(scn.pod.supplemental_groups)
    if scn.pod.fs_group is not None:
        sc["fsGroup"] = scn.pod.fs_group
    if policy != "unset":
        sc["supplementalGroupsPolicy"] = policy
    return sc


def pod_command(script: str) -> list[str]:
    """A shell command for a pod spec: the API expands $(VAR) in command and args and turns $$ into $, so
    every $ is doubled to reach the shell unchanged."""
    return ["/bin/sh", "-c", script.replace("$", "$$")]


def container_manifest(scn: Scenario, name: str, image: str, keep_running: bool, exit_code: int = 0) -> dict:
    tail = "exec sleep 3600" if keep_running else f"exit {exit_code}"
    ctr: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never",
                           "command": pod_command(f"{PROBE}; {tail}")}
    sc = {k: v for k, v in (("runAsUser", scn.container.run_as_user), ("runAsGroup", scn.container.run_as_group))
          if v is not None}
    if sc:
        ctr["securityContext"] = sc
    return ctr


def pod_manifest(scn: Scenario, policy: str, image: str, run_id: str, name: str, variant: str = "container",
                 node: str | None = None, pull_policy: str = "Never", host_network: bool = False) -> dict:
    """One pod per case; the probed container is named `probe` in every variant (for ephemeral
    containers the pod starts with only `main` and the probe is added later). `host_network`: for a
    cluster without a pod network (TARGET=local); process identity does not depend on the network."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    main = container_manifest(scn, "main", image, keep_running=True)
    main["command"] = pod_command("exec sleep 3600")
    # `main` only hosts the probe (init, sidecar, ephemeral): as root it starts whatever the scenario's user
    main["securityContext"] = {"runAsUser": 0, "runAsGroup": 0}
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                            "securityContext": pod_security_context(scn, policy),
                            "tolerations": [{"operator": "Exists"}], "automountServiceAccountToken": False}
    if variant == "container":
        exits = scn.first_exit is not None
        spec["containers"] = [container_manifest(scn, PROBE_NAME, image, keep_running=not exits,
                                                 exit_code=scn.first_exit or 0)]
    elif variant == "init":
        spec["initContainers"] = [container_manifest(scn, PROBE_NAME, image, keep_running=False)]
        spec["containers"] = [main]
    elif variant == "sidecar":
        sidecar = container_manifest(scn, PROBE_NAME, image, keep_running=True)
        sidecar["restartPolicy"] = "Always"
        spec["initContainers"] = [sidecar]
        spec["containers"] = [main]
    else:
        spec["containers"] = [main]
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    for ctr in (*spec.get("initContainers", []), *spec["containers"]):
        ctr["imagePullPolicy"] = pull_policy
    labels = {RUN_LABEL: run_id, "sgp.conformance/scenario": scn.name, "sgp.conformance/policy": policy.lower(),
              "sgp.conformance/variant": variant}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def ephemeral_manifest(scn: Scenario, image: str) -> dict:
    ctr = container_manifest(scn, PROBE_NAME, image, keep_running=True)
    ctr["targetContainerName"] = "main"
    return ctr


# ----------------------------------------------------------------------------- reading raw JSON


def container_status(pod: dict, variant: str, name: str = PROBE_NAME) -> dict | None:
    for entry in (pod.get("status") or {}).get(STATUS_KEY[variant]) or []:
        if entry.get("name") == name:
            return entry
    return None


def status_user(entry: dict | None) -> dict | None:
    """status.*ContainerStatuses[].user.linux in the judge's shape; None when `user` is absent,
    {} when `user` is present without `linux`."""
    if entry is None or entry.get("user") is None:
        return None
    linux = entry["user"].get("linux")
    if linux is None:
        return {}
    return {"uid": linux.get("uid"), "gid": linux.get("gid"),
            "supplemental_groups": list(linux.get("supplementalGroups") or [])}


def node_feature(node: dict) -> bool | None:
    """node.status.features.supplementalGroupsPolicy: None when the field (or `features`) is absent."""
    features = (node.get("status") or {}).get("features")
    if features is None:
        return None
    value = features.get("supplementalGroupsPolicy")
    return None if value is None else bool(value)


def node_info(node: dict) -> dict:
    return (node.get("status") or {}).get("nodeInfo") or {}


def node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def runtime_info(node: dict) -> RuntimeInfo:
    """What the node says about its runtime, shaped like the node target's RuntimeInfo."""
    scheme, _, version = node_info(node).get("containerRuntimeVersion", "").partition("://")
    feature = node_feature(node)
    return RuntimeInfo(name=scheme, version=version,
                       features=None if feature is None else {"supplemental_groups_policy": feature},
                       endpoint=f"node/{node.get('metadata', {}).get('name', '')}")


def kubelet_minor(node: dict) -> int:
    key = vkey(node_info(node).get("kubeletVersion", "v0.0.0"))
    return key[1] if len(key) > 1 else 0


def crictl_feature(info: dict) -> bool | None:
    """`crictl info` JSON -> features.supplemental_groups_policy (either JSON name); None when absent."""
    features = info.get("features")
    if not isinstance(features, dict):
        return None
    for key in ("supplemental_groups_policy", "supplementalGroupsPolicy"):
        if key in features:
            return bool(features[key])
    return None


def feature_problems(node: dict, advertised: bool | None) -> list[str]:
    """node.status.features must mirror the runtime: the same bool, or absent (not false) when the
    runtime's Status carries no features (behaviours.md 15, E16)."""
    name = node.get("metadata", {}).get("name", "?")
    features = (node.get("status") or {}).get("features")
    have = node_feature(node)
    if advertised is None:
        if features is None or "supplementalGroupsPolicy" not in features:
            return []
        return [f"node {name}: status.features.supplementalGroupsPolicy={have} but the runtime advertises no "
                "features: expected the field absent"]
    if have is None:
        return [f"node {name}: status.features.supplementalGroupsPolicy absent, runtime advertises {advertised}"]
    if have != advertised:
        return [f"node {name}: status.features.supplementalGroupsPolicy={have}, runtime advertises {advertised}"]
    return []


# ----------------------------------------------------------------------------- verdicts


def expects_rejection(policy: str, supported: bool, minor: int) -> bool:
    return policy == "Strict" and not supported and minor >= REJECT_FROM_MINOR


def expected_outcome(policy: str, supported: bool, minor: int, expectation: Expectation) -> str:
    """What a case should end as: rejected, unsupported (silent Merge), error (CreateContainer) or identity."""
    if expects_rejection(policy, supported, minor):
        return "rejected"
    if policy == "Strict" and not supported:
        return "unsupported"
    return "create-error" if expectation.error else "identity"


def is_rejected(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == REJECT_REASON


def rejection_judgement(policy: str, pod: dict, events: list[dict], supported: bool,
                        minor: int) -> Judgement | None:
    """The admission part of the verdict; None when admission was as expected and the identity decides."""
    rejected = is_rejected(pod)
    if not expects_rejection(policy, supported, minor):
        if rejected:
            why = "the node advertises the feature" if supported else f"kubelet 1.{minor} predates the rejection"
            return Judgement(Verdict.FAIL, f"pod rejected ({REJECT_REASON}) although {why}"
                             + ("" if policy == "Strict" else f"; only Strict may be rejected, policy {policy}"))
        return None
    if not rejected:
        phase = (pod.get("status") or {}).get("phase")
        return Judgement(Verdict.FAIL, f"Strict pod admitted (phase {phase}) on a node without "
                         f"supplementalGroupsPolicy support; kubelet 1.{minor} must reject it with {REJECT_REASON}")
    problems = []
    message = (pod.get("status") or {}).get("message")
    if message != REJECT_MESSAGE:
        problems.append(f"status.message {message!r}, expected {REJECT_MESSAGE!r}")
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") == REJECT_REASON]
    total = sum(int(e.get("count") or 1) for e in warnings)
    if total != 1:
        problems.append(f"{total} Warning events with reason {REJECT_REASON}, expected exactly 1")
    for event in warnings:
        if event.get("message") != REJECT_MESSAGE.removeprefix("Pod was rejected: "):
            problems.append(f"event message {event.get('message')!r}")
    if problems:
        return Judgement(Verdict.FAIL, "rejected, but: " + "; ".join(problems))
    return Judgement(Verdict.REJECTED, f"rejected as expected: {REJECT_MESSAGE}")


# ----------------------------------------------------------------------------- running cases


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
        allowed = any(o.error == "RunPodSandbox" for p in scn.policies for o in scn.outcomes(p))
        if variant == "ephemeral":
            pod = self.waits.until(lambda: self._main_running(name, allowed), self.waits.pod, f"pod {name} running")
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
            return PodOutcome(pod, node, Observation(create_error=f"{waiting['reason']}: {waiting.get('message', '')}"))
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

    def _main_running(self, name: str, sandbox_refusal_allowed: bool) -> dict | PodOutcome:
        pod = self.api.get_pod(self.namespace, name)
        if (pod.get("status") or {}).get("phase") == "Failed":
            return pod
        self._raise_terminal(pod, "container", "main")
        entry = container_status(pod, "container", "main")
        waiting = ((entry or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CREATE_ERRORS:
            raise SuiteError(f"pod {name}: its main container cannot start, so no ephemeral container can join it: "
                             f"{waiting['reason']}: {waiting.get('message', '')}")
        if not (entry and (entry.get("state") or {}).get("running")):
            refused = self._sandbox_refused(name, pod, sandbox_refusal_allowed)
            if refused is not None:
                return refused
            raise NotYet(f"main container not running ({_state(entry)})")
        return pod

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
        if "running" in state or "terminated" in state:
            log = self.api.pod_log(self.namespace, name, PROBE_NAME)
            if END in log:
                return pod, log
            if "terminated" in state:
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


def kube_cases(catalogue: Catalogue, variants: Iterable[str] = VARIANTS) -> list[tuple[Scenario, str, str]]:
    """Every scenario a kubelet can express × policy × container kind. Raw-CRI scenarios (requests no
    kubelet sends) and runtime-restart scenarios are node-target only."""
    scenarios = [s for s in catalogue.scenarios if s.raw_cri is None and not s.restart]
    return [(s, p, v) for v in variants for s in scenarios for p in s.policies]

"""The node target: cases run straight over the CRI v1 API, sent the way the kubelet sends them."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conformance import interrupt
from conformance.core.case import CaseError, own
from conformance.core.floor import BarePod
from conformance.core.model import USERNS_LENGTH
from conformance.core.observe import (
    END,
    EXITING_PROBE,
    MESSAGE_PATH,
    PROBE,
    ProbeError,
    ProcessIdentity,
    block_source,
    exited_block,
    parse_probe,
)
from conformance.core.oracle import kubelet_user, supplemental_groups
from conformance.core.scenario import Scenario
from conformance.core.verdict import Observation
from conformance.cri import api_pb2 as pb
from conformance.cri.client import CRIClient, CRIError
from conformance.cri.sandboxes import remove_sandbox
from conformance.errors import RuntimeBroken, Stopped, SuiteError
from conformance.targets.node.restart import RESTART_WAIT, request_restart

POLICY_ENUM = {"unset": None, "Merge": pb.Merge, "Strict": pb.Strict}
RUN_LABEL = "sgpconf.run"
LOG_WAIT = 30.0
EXIT_WAIT = 30.0
RESTART_LABEL = "after runtime restart"
PROBE_NAME = "probe"
SELINUX = Path("/sys/fs/selinux/enforce").exists()  # the kubelet relabels the message file where SELinux is on


@dataclass
class CaseSpec:
    """How one case is delivered: what the container runs and how it is read."""

    keep_running: bool = True  # False: the first process exits after the probe
    exit_code: int = 0
    restart: bool = False  # restart the runtime daemon, then read the status user (and exec) again

    @classmethod
    def for_scenario(cls, scn: Scenario) -> CaseSpec:
        """first_process.exit and the `restart` tag of a scenario."""
        if scn.first_exit is not None:
            return cls(keep_running=False, exit_code=scn.first_exit, restart=scn.restart)
        return cls(restart=scn.restart)


class CaseLock:
    """A readers-writer lock shared by every pytest process of a run (flock on files in the log root).

    Ordinary cases hold it shared; a case that restarts the runtime holds it exclusive, so no other
    case talks to the runtime meanwhile. A gate lock gives the writer precedence over new readers."""

    def __init__(self, directory: Path):
        self.gate = directory / ".sgp-gate.lock"
        self.main = directory / ".sgp-cases.lock"

    @contextlib.contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        with open(self.gate, "a") as gate, open(self.main, "a") as main:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                if not exclusive:
                    fcntl.flock(gate, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(main, fcntl.LOCK_UN)
                if exclusive:
                    fcntl.flock(gate, fcntl.LOCK_UN)


def namespace_options(scn: Scenario, host_id: int) -> pb.NamespaceOption:
    """What the kubelet sends: host network; for hostUsers: false a pod network and a user namespace of the
    pod's own mapping container IDs 0..65535 to host IDs from `host_id` (the same on sandbox and
    container)."""
    if not scn.user_namespace:
        return pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
    mapping = pb.IDMapping(host_id=host_id, container_id=0, length=USERNS_LENGTH)
    return pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD,
                              userns_options=pb.UserNamespace(mode=pb.POD, uids=[mapping], gids=[mapping]))


def userns_host_id() -> int:
    """A 65536-aligned host range, as the kubelet allocates one per pod (never the host's own 0..65535)."""
    return USERNS_LENGTH * (16 + secrets.randbelow(16384))


def shared_sandbox(scn: Scenario, policy: str) -> bytes | None:
    """What a case's sandbox is made of, where cases whose sandboxes agree can share one (each its own
    container, as a pod carries several): the pod-level security context as sent, policy included (unset and
    Merge send the same bytes, as a kubelet does: Merge is the enum's zero). None: the case needs a sandbox of its
    own (a runtime restart, a user namespace, raw CRI values, a sandbox the scenario expects refused)."""
    if scn.restart or scn.raw_cri or scn.sandbox_refusal_is_evidence(policy):
        return None
    return NodeTarget.sandbox_context(scn, policy).SerializeToString(deterministic=True)


def status_user(status: pb.ContainerStatus) -> dict | None:
    """ContainerStatus.user.linux as a dict; {} for a user without linux, None when absent."""
    if status.HasField("user") and status.user.HasField("linux"):
        lu = status.user.linux
        return {"uid": lu.uid, "gid": lu.gid, "supplemental_groups": list(lu.supplemental_groups)}
    if status.HasField("user"):
        return {}
    return None


def termination_mount(path: Path) -> pb.Mount:
    """A file for the exiting probe's block at the kubelet's terminationMessagePath, writable by any user the
    case runs as (the kubelet creates it 0666 too)."""
    path.touch()
    path.chmod(0o666)
    return pb.Mount(container_path=MESSAGE_PATH, host_path=str(path), selinux_relabel=SELINUX)


class NodeTarget:
    """Runs cases on one CRI runtime; every sandbox it creates is labelled with the run id."""

    def __init__(self, client: CRIClient, image_refs: dict[str, str], log_root: Path, run_id: str,
                 handler: str = "", cgroup_parent: str = ""):
        self.client = client
        self.image_refs = image_refs
        self.log_root = log_root
        self.run_id = run_id
        self.handler = handler
        self.cgroup_parent = cgroup_parent
        self.restart_socket = ""  # restart.RestartServer path; set by whoever owns the runtime daemon
        self.lock = CaseLock(log_root)
        self._cleanup = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sgp-cleanup")
        self._pending: list[Future] = []
        self._pending_lock = threading.Lock()  # two batches at once queue removals while a restart case drains
        self.stopping = threading.Event()  # the run is ending: a shared sandbox runs no further case

    @classmethod
    def sandbox_context(cls, scn: Scenario, policy: str) -> pb.LinuxSandboxSecurityContext:
        """The pod-level security context the kubelet sends for the case's pod (a user namespace of its own)."""
        sc = pb.LinuxSandboxSecurityContext(
            namespace_options=namespace_options(scn, userns_host_id()),
            supplemental_groups=supplemental_groups(scn),
        )
        if scn.pod.run_as_user is not None:
            sc.run_as_user.value = scn.pod.run_as_user
        if scn.pod.run_as_group is not None:
            sc.run_as_group.value = scn.pod.run_as_group
        cls._set_policy(sc, scn, policy)
        return sc

    def _sandbox_config(self, name: str, scn: Scenario, policy: str) -> pb.PodSandboxConfig:
        linux = pb.LinuxPodSandboxConfig(security_context=self.sandbox_context(scn, policy))
        if self.cgroup_parent:
            linux.cgroup_parent = f"/{self.cgroup_parent}/{name}"
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=secrets.token_hex(8), namespace=f"sgpconf-{self.run_id}"),
            log_directory=str(self.log_root / name), labels={RUN_LABEL: self.run_id, "sgpconf.case": name},
            linux=linux,
        )

    @staticmethod
    def policy_value(scn: Scenario, policy: str) -> int | None:
        """The enum value sent for the case (a raw_cri value wins); None leaves the field unset."""
        if scn.raw_cri and scn.raw_cri.policy_value is not None:
            return scn.raw_cri.policy_value
        return POLICY_ENUM[policy]

    @classmethod
    def _set_policy(cls, sc: pb.LinuxSandboxSecurityContext | pb.LinuxContainerSecurityContext, scn: Scenario,
                    policy: str) -> None:
        value = cls.policy_value(scn, policy)
        if value is not None:
            sc.supplemental_groups_policy = value  # type: ignore[assignment]

    def _container_config(self, scn: Scenario, policy: str, ref: str, spec: CaseSpec,
                          namespaces: pb.NamespaceOption, message: Path, name: str) -> pb.ContainerConfig:
        image = self.client.image_status(ref)
        if image is None:
            raise SuiteError(f"image {ref} is not in the runtime")
        user = kubelet_user(scn, image.uid.value if image.HasField("uid") else None, image.username)
        sc = pb.LinuxContainerSecurityContext(
            namespace_options=namespaces,
            supplemental_groups=supplemental_groups(scn),
        )
        if not (scn.raw_cri and scn.raw_cri.omit_user):
            if user.run_as_username:
                sc.run_as_username = user.run_as_username
            elif user.run_as_user is not None:
                sc.run_as_user.value = user.run_as_user
        if user.run_as_group is not None:
            sc.run_as_group.value = user.run_as_group
        self._set_policy(sc, scn, policy)
        script = f"{PROBE}; exec sleep 3600" if spec.keep_running else f"{EXITING_PROBE}; exit {spec.exit_code}"
        mounts = [] if spec.keep_running else [termination_mount(message)]
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=ref, user_specified_image=ref),
            command=["/bin/sh", "-c", script],
            mounts=mounts,
            log_path=f"{name}/0.log",
            labels={RUN_LABEL: self.run_id},
            linux=pb.LinuxContainerConfig(security_context=sc),
        )

    def run_case(self, scn: Scenario, policy: str, spec: CaseSpec | None = None) -> Observation:
        """Create a sandbox and a container for the case, read every piece of evidence, clean up.
        A restart case runs alone: no other case of the run talks to the runtime meanwhile."""
        spec = spec or CaseSpec.for_scenario(scn)
        if spec.restart:
            self.drain()
        with self.lock.hold(exclusive=spec.restart):
            name = f"{scn.name[:40]}-{policy.lower()}-{secrets.token_hex(3)}"
            sandbox_config = self._sandbox_config(name, scn, policy)
            try:
                sandbox_id = self.client.run_pod_sandbox(sandbox_config, self.handler)
            except CRIError as exc:  # evidence where the scenario allows this refusal or needs a user namespace
                if not scn.sandbox_refusal_is_evidence(policy):
                    raise
                return Observation(sandbox_error=exc.details, sent_policy=self.policy_value(scn, policy))
            try:
                obs = self._observe(scn, policy, spec, sandbox_id, sandbox_config, PROBE_NAME)
            finally:
                if spec.restart:
                    self.remove_sandbox(sandbox_id)
                else:
                    self._remove_later(sandbox_id)
            return obs

    def run_shared(self, cases: list[tuple[Scenario, str]]) -> list[Observation | BaseException]:
        """Cases whose sandboxes would be the same (shared_sandbox) in one sandbox, a container each, read one
        after the other; each case's outcome, or the error that is its own. A case that broke there, and every
        case where the shared sandbox was refused, runs again alone, so no verdict depends on a neighbour."""
        if len(cases) == 1:
            return [own(lambda: self.run_case(*cases[0]), CRIError)]
        scn, policy = cases[0]
        outcomes: list[Observation | BaseException | None] = [None] * len(cases)
        with self.lock.hold(exclusive=False):
            name = f"{scn.name[:32]}-{policy.lower()}-and-{len(cases) - 1}-{secrets.token_hex(3)}"
            sandbox_config = self._sandbox_config(name, scn, policy)
            try:
                sandbox_id = self.client.run_pod_sandbox(sandbox_config, self.handler)
            except CRIError:
                sandbox_id = ""
            if sandbox_id:
                try:
                    for index, (each, each_policy) in enumerate(cases):
                        if self.stopping.is_set():
                            break
                        outcomes[index] = own(functools.partial(
                            self._observe, each, each_policy, CaseSpec.for_scenario(each), sandbox_id,
                            sandbox_config, f"{PROBE_NAME}-{index}"), CRIError)
                finally:
                    self._remove_later(sandbox_id)
        if self.stopping.is_set():
            return [o if isinstance(o, Observation) else CaseError(Stopped("the run is stopping")) for o in outcomes]
        return [own(lambda c=case: self.run_case(*c), CRIError) if not isinstance(o, Observation) else o
                for case, o in zip(cases, outcomes, strict=True)]

    def bare_pod(self) -> BarePod:
        """The floor's pod: a sandbox and a container running /bin/true as user 1000, waited for as a case's
        first process is (its exit), then removed as a restart case's sandbox is (at once, timed)."""
        name = f"bare-{secrets.token_hex(3)}"
        ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
        linux = pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns))
        if self.cgroup_parent:
            linux.cgroup_parent = f"/{self.cgroup_parent}/{name}"
        sandbox = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=secrets.token_hex(8), namespace="bare"),
            log_directory=str(self.log_root / name), labels={RUN_LABEL: self.run_id}, linux=linux)
        ref = self.image_refs["agnhost-like"]
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=ref, user_specified_image=ref),
            command=["/bin/true"], log_path="c.log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                namespace_options=ns, run_as_user=pb.Int64Value(value=1000))))
        with self.lock.hold(exclusive=False):
            started = time.perf_counter()
            sandbox_id = self.client.run_pod_sandbox(sandbox, self.handler)
            try:
                container_id = self.client.create_container(sandbox_id, container, sandbox)
                self.client.start_container(container_id)
                self._wait_exit(container_id)
                exited = time.perf_counter()
            finally:
                self.remove_sandbox(sandbox_id)
        return BarePod(exited - started, time.perf_counter() - exited)

    def _observe(self, scn: Scenario, policy: str, spec: CaseSpec, sandbox_id: str,
                 sandbox_config: pb.PodSandboxConfig, container: str) -> Observation:
        """One case's container in a sandbox (its own, or one it shares): every piece of its evidence."""
        (Path(sandbox_config.log_directory) / container).mkdir(parents=True, exist_ok=True)
        obs = self._evidence(scn, policy, spec, sandbox_id, sandbox_config, container)
        obs.sent_policy = self.policy_value(scn, policy)
        return obs

    def _evidence(self, scn: Scenario, policy: str, spec: CaseSpec, sandbox_id: str,
                  sandbox_config: pb.PodSandboxConfig, container: str) -> Observation:
        namespaces = sandbox_config.linux.security_context.namespace_options
        message = Path(sandbox_config.log_directory) / container / "termination-log"
        config = self._container_config(scn, policy, self.image_refs[scn.image], spec, namespaces, message, container)
        try:
            container_id = self.client.create_container(sandbox_id, config, sandbox_config)
        except CRIError as exc:
            return Observation(create_error=exc.details)
        try:
            self.client.start_container(container_id)
        except CRIError as exc:  # evidence for user-namespace cases and where the scenario expects it; else an error
            if not (scn.user_namespace or any(o.error == "StartContainer" for o in scn.outcomes(policy))):
                raise
            return Observation(start_error=exc.details)
        log_path = Path(sandbox_config.log_directory) / config.log_path
        if spec.keep_running:
            obs = Observation(first=self._wait_probe(container_id, log_path))
            obs.exec = self._exec_probe(container_id)
            status = self.client.container_status(container_id)
        else:
            status = self._wait_exit(container_id)
            first, source = self._exited_probe(message, log_path)
            obs = Observation(first=first, first_from=source, expected_exit=spec.exit_code)
            obs.state, obs.exit_code = pb.ContainerState.Name(status.state), status.exit_code
        obs.user = status_user(status)
        if spec.restart:
            self.restart_runtime()
            obs.later_users[RESTART_LABEL] = status_user(self.client.container_status(container_id))
            if spec.keep_running:
                obs.later_execs[RESTART_LABEL] = self._exec_probe(container_id)
        return obs

    def _exec_probe(self, container_id: str) -> ProcessIdentity:
        res = self.client.exec_sync(container_id, ["/bin/sh", "-c", PROBE])
        if res.exit_code != 0:
            raise SuiteError(f"exec'd probe exited {res.exit_code}: {res.stderr.decode(errors='replace')}")
        return parse_probe(res.stdout.decode(errors="replace"))

    def _wait_exit(self, container_id: str) -> pb.ContainerStatus:
        """Poll ContainerStatus until the container has exited."""
        deadline = time.monotonic() + EXIT_WAIT
        while True:
            status = self.client.container_status(container_id)
            if status.state == pb.CONTAINER_EXITED:
                return status
            if time.monotonic() > deadline:
                raise SuiteError(f"container {container_id} still {pb.ContainerState.Name(status.state)} "
                                 f"{EXIT_WAIT:.0f}s after its probe; it should have exited")
            time.sleep(0.01)

    def restart_runtime(self) -> None:
        """Have the runtime's owner restart it, then wait until the CRI answers again."""
        request_restart(self.restart_socket)
        deadline = time.monotonic() + RESTART_WAIT
        while True:
            try:
                self.client.version(timeout=2)
                return
            except (CRIError, RuntimeBroken) as exc:
                if time.monotonic() > deadline:
                    raise SuiteError(f"the runtime does not answer after its restart: {exc}") from exc
                time.sleep(0.1)

    @staticmethod
    def _exited_probe(message: Path, log_path: Path) -> tuple[ProcessIdentity, str]:
        """The probe of a first process that exited: from the message file it wrote before exiting (complete
        once the runtime reports the exit), else from its log once that holds the size the message gives."""
        text = message.read_text(errors="replace") if message.exists() else ""
        deadline = time.monotonic() + LOG_WAIT
        while True:
            log = "" if END in text else (log_path.read_text(errors="replace") if log_path.exists() else "")
            block = exited_block(text, log)
            if block is not None:
                return parse_probe(block), block_source(text)
            if time.monotonic() > deadline:
                raise ProbeError(f"{log_path} does not hold the probe's whole block {LOG_WAIT:.0f}s after the "
                                 f"container exited ({text.strip()}):\n{log[-800:]}")
            time.sleep(0.005)

    def _wait_probe(self, container_id: str, log_path: Path) -> ProcessIdentity:
        """Read the probe from the log of a container that keeps running; fail early if it exited without it."""
        deadline = time.monotonic() + LOG_WAIT
        polls = 0
        while True:
            exited = polls % 20 == 19 and self.client.container_status(container_id).state == pb.CONTAINER_EXITED
            text = log_path.read_text(errors="replace") if log_path.exists() else ""
            if END in text:
                return parse_probe(text)
            if exited or time.monotonic() > deadline:
                state = "exited" if exited else f"still running after {LOG_WAIT:.0f}s"
                raise ProbeError(f"no probe output in {log_path} (container {state}):\n{text[-800:]}")
            polls += 1
            time.sleep(0.005)

    def _remove_later(self, sandbox_id: str) -> None:
        """Remove a finished case's sandbox in the background, so the next case starts at once."""

        def work() -> None:
            with self.lock.hold(exclusive=False):
                self.remove_sandbox(sandbox_id)

        with interrupt.shielded(), self._pending_lock:  # submit() may start a thread and wait for it to run
            self._pending.append(self._cleanup.submit(work))

    def drain(self, timeout: float = 60.0) -> list[str]:
        """Wait (at most `timeout` in all) for background removals, also those queued meanwhile; the problems
        they hit."""
        problems = []
        deadline = time.monotonic() + timeout
        while True:
            with self._pending_lock:
                pending, self._pending = self._pending, []
            if not pending:
                break
            for future in pending:
                try:
                    interrupt.result(future, timeout=max(0.1, deadline - time.monotonic()))
                except Exception as exc:
                    problems.append(f"sandbox removal failed: {type(exc).__name__}: {exc}".rstrip(": "))
        return problems

    def remove_sandbox(self, sandbox_id: str) -> None:
        remove_sandbox(self.client, sandbox_id)

"""The node target: cases run straight over the CRI v1 API, sent the way the kubelet sends them."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.cri import api_pb2 as pb
from conformance.cri.client import CRIClient, CRIError
from conformance.errors import RuntimeBroken, SuiteError
from conformance.model import RuntimeInfo
from conformance.observe import END, PROBE, ProbeError, ProcessIdentity, parse_probe
from conformance.oracle import kubelet_user, supplemental_groups
from conformance.scenario import Scenario
from conformance.verdict import Observation

POLICY_ENUM = {"unset": None, "Merge": pb.Merge, "Strict": pb.Strict}
RUN_LABEL = "sgpconf.run"
LOG_WAIT = 30.0


@dataclass
class CaseSpec:
    """How one case is delivered: what the container runs and how it is read."""

    keep_running: bool = True  # False: the first process exits after the probe
    exit_code: int = 0


def runtime_info(client: CRIClient, handler: str = "") -> RuntimeInfo:
    """Version() and Status().features, as the kubelet reads them."""
    version = client.version()
    status = client.status()
    features = None
    if status.HasField("features"):
        features = {"supplemental_groups_policy": status.features.supplemental_groups_policy}
    return RuntimeInfo(name=version.runtime_name, version=version.runtime_version,
                       api_version=version.runtime_api_version, features=features, handler=handler,
                       endpoint=client.endpoint)


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

    def _sandbox_config(self, name: str, scn: Scenario, policy: str) -> pb.PodSandboxConfig:
        sc = pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD),
            supplemental_groups=supplemental_groups(scn),
        )
        if scn.pod.run_as_user is not None:
            sc.run_as_user.value = scn.pod.run_as_user
        if scn.pod.run_as_group is not None:
            sc.run_as_group.value = scn.pod.run_as_group
        self._set_policy(sc, scn, policy)
        linux = pb.LinuxPodSandboxConfig(security_context=sc)
        if self.cgroup_parent:
            linux.cgroup_parent = f"/{self.cgroup_parent}/{name}"
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=secrets.token_hex(8), namespace=f"sgpconf-{self.run_id}"),
            log_directory=str(self.log_root / name), labels={RUN_LABEL: self.run_id, "sgpconf.case": name},
            linux=linux,
        )

    @staticmethod
    def _set_policy(sc: pb.LinuxSandboxSecurityContext | pb.LinuxContainerSecurityContext, scn: Scenario,
                    policy: str) -> None:
        if scn.raw_cri and scn.raw_cri.policy_value is not None:
            sc.supplemental_groups_policy = scn.raw_cri.policy_value  # type: ignore[assignment]
        elif POLICY_ENUM[policy] is not None:
            sc.supplemental_groups_policy = POLICY_ENUM[policy]  # type: ignore[assignment]

    def _container_config(self, scn: Scenario, policy: str, ref: str, spec: CaseSpec) -> pb.ContainerConfig:
        image = self.client.image_status(ref)
        if image is None:
            raise SuiteError(f"image {ref} is not in the runtime")
        user = kubelet_user(scn, image.uid.value if image.HasField("uid") else None, image.username)
        sc = pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD),
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
        tail = "exec sleep 3600" if spec.keep_running else f"exit {spec.exit_code}"
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="probe"),
            image=pb.ImageSpec(image=ref, user_specified_image=ref),
            command=["/bin/sh", "-c", f"{PROBE}; {tail}"],
            log_path="probe/0.log",
            labels={RUN_LABEL: self.run_id},
            linux=pb.LinuxContainerConfig(security_context=sc),
        )

    def run_case(self, scn: Scenario, policy: str, spec: CaseSpec | None = None) -> Observation:
        """Create a sandbox and a container for the case, read every piece of evidence, clean up."""
        spec = spec or CaseSpec()
        name = f"{scn.name[:40]}-{policy.lower()}-{secrets.token_hex(3)}"
        (self.log_root / name / "probe").mkdir(parents=True, exist_ok=True)
        sandbox_config = self._sandbox_config(name, scn, policy)
        sandbox_id = self.client.run_pod_sandbox(sandbox_config, self.handler)
        try:
            return self._observe(scn, policy, spec, sandbox_id, sandbox_config)
        finally:
            self.remove_sandbox(sandbox_id)

    def _observe(self, scn: Scenario, policy: str, spec: CaseSpec, sandbox_id: str,
                 sandbox_config: pb.PodSandboxConfig) -> Observation:
        config = self._container_config(scn, policy, self.image_refs[scn.image], spec)
        try:
            container_id = self.client.create_container(sandbox_id, config, sandbox_config)
        except CRIError as exc:
            return Observation(create_error=exc.details)
        self.client.start_container(container_id)
        log_path = Path(sandbox_config.log_directory) / config.log_path
        obs = Observation(first=self._wait_probe(container_id, log_path))
        if spec.keep_running:
            res = self.client.exec_sync(container_id, ["/bin/sh", "-c", PROBE])
            if res.exit_code != 0:
                raise SuiteError(f"exec'd probe exited {res.exit_code}: {res.stderr.decode(errors='replace')}")
            obs.exec = parse_probe(res.stdout.decode(errors="replace"))
        status = self.client.container_status(container_id)
        if status.HasField("user") and status.user.HasField("linux"):
            lu = status.user.linux
            obs.user = {"uid": lu.uid, "gid": lu.gid, "supplemental_groups": list(lu.supplemental_groups)}
        elif status.HasField("user"):
            obs.user = {}
        if not spec.keep_running:
            obs.extra = {"state": pb.ContainerState.Name(status.state), "exit_code": status.exit_code}
        return obs

    def _wait_probe(self, container_id: str, log_path: Path) -> ProcessIdentity:
        """Read the probe from the container log; fail early if the container exited without it."""
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

    def remove_sandbox(self, sandbox_id: str) -> None:
        try:
            self.client.stop_pod_sandbox(sandbox_id)
        finally:
            self.client.remove_pod_sandbox(sandbox_id)

    def remove_leftovers(self) -> int:
        """Remove every sandbox labelled with this run (after an interruption)."""
        count = 0
        try:
            for sandbox in self.client.list_pod_sandbox({RUN_LABEL: self.run_id}):
                try:
                    self.remove_sandbox(sandbox.id)
                    count += 1
                except (CRIError, RuntimeBroken):
                    pass
        except (CRIError, RuntimeBroken):
            pass
        return count

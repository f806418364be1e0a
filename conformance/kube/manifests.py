"""The scenarios as Kubernetes objects: the run's namespace, one pod per scenario and policy carrying its probe
in each container kind (container, init, sidecar, ephemeral), which cases share a pod, and which scenarios a
kubelet can express at all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conformance.core.case import Case
from conformance.core.catalogue import Catalogue
from conformance.core.observe import EXITING_PROBE, PROBE
from conformance.core.scenario import Scenario

RUN_LABEL = "sgp.conformance/run-id"
MANAGED = {"app.kubernetes.io/managed-by": "sgp-conformance"}
FIELD = "spec.securityContext.supplementalGroupsPolicy"
VARIANTS = ("container", "init", "sidecar", "ephemeral")
PROBE_NAME = "probe"
HOST_NAME = "main"
SCENARIO_LABEL = "sgp.conformance/scenario"
POLICY_LABEL = "sgp.conformance/policy"
VARIANTS_LABEL = "sgp.conformance/variants"  # the container kinds a pod carries, dot-separated
CONTAINER_CALLS = ("CreateContainer", "StartContainer")  # a container's own refusals


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
    """A probe container; one whose first process exits leaves its block in the termination message too
    (observe.EXITING_PROBE), which the kubelet reports with the exit."""
    script = f"{PROBE}; exec sleep 3600" if keep_running else f"{EXITING_PROBE}; exit {exit_code}"
    ctr: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never",
                           "command": pod_command(script)}
    sc = {k: v for k, v in (("runAsUser", scn.container.run_as_user), ("runAsGroup", scn.container.run_as_group))
          if v is not None}
    if sc:
        ctr["securityContext"] = sc
    return ctr


def probe_name(variant: str) -> str:
    """The probed container of a container kind: `probe`, `probe-init`, `probe-sidecar`, `probe-ephemeral`."""
    return PROBE_NAME if variant == "container" else f"{PROBE_NAME}-{variant}"


def needs_host(scn: Scenario, variants: tuple[str, ...]) -> bool:
    """A pod gets `main` (root, sleeping) where nothing else keeps it running: without the container kind, or
    where that container's first process exits while other kinds still need the pod."""
    return "container" not in variants or (scn.first_exit is not None and len(variants) > 1)


def ephemeral_target(scn: Scenario, variants: tuple[str, ...]) -> str:
    """The container that keeps the pod running for the ephemeral probe: `main` where the pod has one, else the
    scenario's `probe`."""
    return HOST_NAME if needs_host(scn, variants) else PROBE_NAME


def bare_pod_manifest(run_id: str, name: str, image: str, pull_policy: str = "Never",
                      host_network: bool = False) -> dict:
    """The floor's pod (`make bench`): one container that sleeps, no security context, no probe; the run's label
    so the run's watch sees it."""
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                            "tolerations": [{"operator": "Exists"}], "automountServiceAccountToken": False,
                            "containers": [{"name": "c", "image": image, "imagePullPolicy": pull_policy,
                                            "command": pod_command("exec sleep 3600")}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
            "spec": spec}


def pod_manifest(scn: Scenario, policy: str, image: str, run_id: str, name: str,
                 variants: tuple[str, ...] = ("container",), node: str | None = None, pull_policy: str = "Never",
                 host_network: bool = False) -> dict:
    """One pod for a scenario under a policy, carrying its probe in each container kind of `variants` (the pod's
    one security context is the same request in every place): `probe` in the containers, `probe-init` then
    `probe-sidecar` in the init containers; `probe-ephemeral` is added once the pod runs. `host_network`: for
    a cluster without a pod network (TARGET=local); process identity does not depend on the network. A
    user-namespace scenario gets hostUsers: false and the pod network (TARGET=local: podnet.py)."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"unknown variants {variants!r}")
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                            "securityContext": pod_security_context(scn, policy),
                            "tolerations": [{"operator": "Exists"}], "automountServiceAccountToken": False}
    inits: list[dict] = []
    if "init" in variants:
        inits.append(container_manifest(scn, probe_name("init"), image, keep_running=False))
    if "sidecar" in variants:
        sidecar = container_manifest(scn, probe_name("sidecar"), image, keep_running=True)
        sidecar["restartPolicy"] = "Always"
        inits.append(sidecar)
    if inits:
        spec["initContainers"] = inits
    containers = []
    if "container" in variants:
        exits = scn.first_exit is not None
        containers.append(container_manifest(scn, PROBE_NAME, image, keep_running=not exits,
                                             exit_code=scn.first_exit or 0))
    if needs_host(scn, variants):
        # `main` only hosts the pod (and the ephemeral probe): as root it starts whatever the scenario's user
        main = container_manifest(scn, HOST_NAME, image, keep_running=True)
        main["command"] = pod_command("exec sleep 3600")
        main["securityContext"] = {"runAsUser": 0, "runAsGroup": 0}
        containers.append(main)
    spec["containers"] = containers
    if node:
        spec["nodeName"] = node
    if scn.user_namespace:  # a user namespace of its own; the API forbids it with hostNetwork
        spec["hostUsers"] = False
    elif host_network:
        spec["hostNetwork"] = True
    for ctr in (*spec.get("initContainers", []), *spec["containers"]):
        ctr["imagePullPolicy"] = pull_policy
    labels = {RUN_LABEL: run_id, SCENARIO_LABEL: scn.name, POLICY_LABEL: policy.lower(),
              VARIANTS_LABEL: ".".join(variants)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def ephemeral_manifest(scn: Scenario, image: str) -> dict:
    """The ephemeral probe. No targetContainerName: it runs in the pod's shared namespaces, so the kubelet can
    start it before any other container exists (a target must have a status first); its identity comes from its
    own and the pod's security context either way."""
    return container_manifest(scn, probe_name("ephemeral"), image, keep_running=True)


def blocks_others(scn: Scenario, policy: str) -> bool:
    """The scenario expects its container not to be created or started under `policy`: a failed init or
    sidecar holds up the rest of a pod, so each container kind gets a pod of its own."""
    return scn.may_fail_at(CONTAINER_CALLS, policy)


def pod_groups(cases: list[Case]) -> list[list[Case]]:
    """The cases that share one pod, in the order their first case comes: a scenario's container kinds under
    one policy on one node; a target's own checks and a scenario that blocks others each alone."""
    groups: dict[tuple, list[Case]] = {}
    for index, case in enumerate(cases):
        scn = case.scenario
        shared = scn is not None and not case.check and not blocks_others(scn, case.policy)
        key = (scn.name, case.policy, case.node) if shared and scn is not None else (index,)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


# ----------------------------------------------------------------------------- reading raw JSON


def kube_cases(catalogue: Catalogue, variants: Iterable[str] = VARIANTS) -> list[tuple[Scenario, str, str]]:
    """Every scenario a kubelet can express × policy × container kind. Raw-CRI scenarios (requests no
    kubelet sends) and runtime-restart scenarios are node-target only."""
    scenarios = [s for s in catalogue.scenarios if s.raw_cri is None and not s.restart]
    return [(s, p, v) for v in variants for s in scenarios for p in s.policies]

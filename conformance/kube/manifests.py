"""The scenarios as Kubernetes objects: the run's namespace, one pod per case in each container kind
(container, init, sidecar, ephemeral), and which scenarios a kubelet can express at all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conformance.catalogue import Catalogue
from conformance.observe import PROBE
from conformance.scenario import Scenario

RUN_LABEL = "sgp.conformance/run-id"
MANAGED = {"app.kubernetes.io/managed-by": "sgp-conformance"}
FIELD = "spec.securityContext.supplementalGroupsPolicy"
VARIANTS = ("container", "init", "sidecar", "ephemeral")
PROBE_NAME = "probe"


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
    cluster without a pod network (TARGET=local); process identity does not depend on the network. A
    user-namespace scenario gets hostUsers: false and the pod network (TARGET=local: podnet.py)."""
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
    if scn.user_namespace:  # a user namespace of its own; the API forbids it with hostNetwork
        spec["hostUsers"] = False
    elif host_network:
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


def kube_cases(catalogue: Catalogue, variants: Iterable[str] = VARIANTS) -> list[tuple[Scenario, str, str]]:
    """Every scenario a kubelet can express × policy × container kind. Raw-CRI scenarios (requests no
    kubelet sends) and runtime-restart scenarios are node-target only."""
    scenarios = [s for s in catalogue.scenarios if s.raw_cri is None and not s.restart]
    return [(s, p, v) for v in variants for s in scenarios for p in s.policies]

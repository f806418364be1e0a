"""Before any case: can every node get the suite's test images? One probe pod per node holds one container
per image (as root, running `exit 0`); an image a node cannot get fails the run once, with the remedy,
instead of one error per case."""

from __future__ import annotations

import contextlib
import secrets

from conformance.errors import ProvisionError, SuiteError
from conformance.kube.manifests import MANAGED, RUN_LABEL
from conformance.kube.pods import KubeTarget
from conformance.kube.waits import NotYet

PULL_ERRORS = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ImageInspectError",
               "RegistryUnavailable"}
NOT_PULLED_YET = {"ContainerCreating", "PodInitializing", ""}
PROBE_TIMEOUT = 300.0  # pulling every test image on a cold node
REMEDY = ("put the test images where the nodes can pull them: IMAGE_REGISTRY=<registry>[/<prefix>] pushes them "
          "there before the cases (or `sgp-conformance images push <registry>` once); for nodes that cannot pull, "
          "load the archives of `sgp-conformance images export <folder>` with the names in its images.txt")


def probe_manifest(run_id: str, node: str, refs: dict[str, str], pull_policy: str, host_network: bool) -> dict:
    containers = [{"name": f"img-{i}", "image": ref, "imagePullPolicy": pull_policy, "command": ["/bin/sh", "-c",
                                                                                                  "exit 0"]}
                  for i, ref in enumerate(sorted(set(refs.values())))]
    spec = {"restartPolicy": "Never", "nodeName": node, "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False, "tolerations": [{"operator": "Exists"}],
            "securityContext": {"runAsUser": 0, "runAsGroup": 0}, "containers": containers}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"sgp-images-{secrets.token_hex(3)}", "labels": {RUN_LABEL: run_id, **MANAGED}},
            "spec": spec}


def pull_problems(pod: dict) -> list[str] | None:
    """The images this pod's node could not get; None while some image is still being pulled."""
    problems, waiting = [], False
    for entry in (pod.get("status") or {}).get("containerStatuses") or []:
        state = (entry.get("state") or {}).get("waiting")
        if state is None:
            continue  # running or terminated: pulled
        reason = state.get("reason") or ""
        if reason in PULL_ERRORS:
            problems.append(f"{entry.get('image')}: {reason}: {(state.get('message') or '').strip()[:200]}")
        elif reason in NOT_PULLED_YET:
            waiting = True
    if not problems and (waiting or not (pod.get("status") or {}).get("containerStatuses")):
        return None
    return problems


def check_images(target: KubeTarget, nodes: list[str], refs: dict[str, str]) -> None:
    """Every node can get every test image, or ProvisionError with the first problems and the remedy. The probe
    pods carry the run's label, so their waits read the run's watch like every case's."""
    pods = {node: probe_manifest(target.run_id, node, refs, target.pull_policy, target.host_network) for node in nodes}
    for body in pods.values():
        target.api.create_pod(target.namespace, body)
    try:
        found: dict[str, list[str]] = {}
        for node, body in pods.items():
            name = body["metadata"]["name"]

            def decided(name: str = name) -> list[str]:
                problems = pull_problems(target.pod(name))
                if problems is None:
                    raise NotYet("images still being pulled")
                return problems

            found[node] = target.until(decided, PROBE_TIMEOUT, f"test images on node {node}")
    finally:
        for body in pods.values():  # the namespace goes at the end of the run anyway
            with contextlib.suppress(SuiteError, ConnectionError, TimeoutError):
                target.api.delete_pod(target.namespace, body["metadata"]["name"])
    bad = {node: problems for node, problems in found.items() if problems}
    if bad:
        node, problems = next(iter(bad.items()))
        more = f" (and {len(problems) - 1} more image(s))" if len(problems) > 1 else ""
        others = f"; {len(bad) - 1} other node(s) too" if len(bad) > 1 else ""
        raise ProvisionError(f"node {node} cannot get the test images: {problems[0]}{more}{others}; {REMEDY}")

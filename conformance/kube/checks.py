"""A Kubernetes target's own checks, beside the scenarios: the API server's validation of the field, and the
node's feature claim judged against the runtime and against what its Strict pods actually get."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from conformance.core.case import Verdicted
from conformance.core.catalogue import Catalogue
from conformance.core.model import Verdict
from conformance.core.verdict import Judgement
from conformance.kube.admission import REJECT_FROM_MINOR as FIRST_REJECTING_MINOR
from conformance.kube.admission import is_rejected
from conformance.kube.api import ApiError, KubeApi
from conformance.kube.manifests import FIELD, RUN_LABEL
from conformance.kube.pods import KubeTarget
from conformance.kube.status import feature_problems, kubelet_minor, node_feature, node_info
from conformance.kube.waits import transient

NODE_FEATURES = "node-features"
FEATURE_SOURCE = "behaviours.md items 13, 15; E15, E16"
API_SOURCE = "behaviours.md items 1, 3, 5 (E23)"


@dataclass(frozen=True)
class ApiNegative:
    name: str
    policy: str
    reason: str  # expected details.causes[].reason
    field: str
    message: str  # substring of the cause message


API_NEGATIVES = (
    ApiNegative("api-wrong-case", "strict", "FieldValueNotSupported", FIELD, 'Unsupported value: "strict"'),
    ApiNegative("api-unknown-value", "Foo", "FieldValueNotSupported", FIELD, 'Unsupported value: "Foo"'),
    ApiNegative("api-windows-pod", "Strict", "FieldValueForbidden", FIELD, "cannot be set for a windows pod"),
)
UPDATE_MESSAGE = "pod updates may not change fields"


def _negative_pod(run_id: str, name: str, policy: str, image: str, windows: bool) -> dict:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}],
                            "securityContext": {"supplementalGroupsPolicy": policy}, "restartPolicy": "Never"}
    if windows:
        spec["os"] = {"name": "windows"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
            "spec": spec}


def cause_problems(exc: ApiError, neg: ApiNegative) -> list[str]:
    if exc.status != 422:
        return [f"HTTP {exc.status}, expected 422 Unprocessable Entity"]
    if any(c.get("reason") == neg.reason and c.get("field") == neg.field and neg.message in c.get("message", "")
           for c in exc.causes):
        return []
    return [f"no cause {neg.reason} at {neg.field} containing {neg.message!r}; causes: {exc.causes}"]


API_CHECKS = (*(n.name for n in API_NEGATIVES), "api-update-immutable")


def _verdicted(verdict: Verdict, detail: str, observed: dict, expected: dict, source: str) -> Verdicted:
    return Verdicted(Judgement(verdict, detail), observed, expected, source)


def api_check(api: KubeApi, namespace: str, run_id: str, image: str, name: str) -> Verdicted:
    """One API negative: an invalid value or a Windows pod (server-side dry run, nothing stored), or a
    change of the field on an existing pod."""
    if name == "api-update-immutable":
        return _update_negative(api, namespace, run_id, image)
    neg = next(n for n in API_NEGATIVES if n.name == name)
    expected = {"status": 422, "reason": neg.reason, "field": neg.field, "message": neg.message}
    body = _negative_pod(run_id, f"{neg.name}-{secrets.token_hex(3)}", neg.policy, image,
                         windows=neg.name == "api-windows-pod")
    try:
        api.create_pod(namespace, body, dry_run=True)
        return _verdicted(Verdict.FAIL, "the API server accepted the pod", {"accepted": True}, expected, API_SOURCE)
    except ApiError as exc:
        problems = cause_problems(exc, neg)
        verdict = Verdict.ERROR if transient(exc) else Verdict.FAIL if problems else Verdict.PASS
        return _verdicted(verdict, "; ".join(problems), {"status": exc.status, "body": exc.body}, expected,
                          API_SOURCE)


def _update_negative(api: KubeApi, namespace: str, run_id: str, image: str) -> Verdicted:
    name = f"api-update-{secrets.token_hex(3)}"
    expected = {"status": 422, "message": UPDATE_MESSAGE}
    try:
        api.create_pod(namespace, _negative_pod(run_id, name, "Merge", image, windows=False))
    except ApiError as exc:
        return _verdicted(Verdict.ERROR, f"could not create the pod to update: {exc}", {"body": exc.body}, expected,
                          API_SOURCE)
    try:
        api.patch_pod(namespace, name, {"spec": {"securityContext": {"supplementalGroupsPolicy": "Strict"}}},
                      dry_run=True)
        return _verdicted(Verdict.FAIL, "the API server accepted the change", {"accepted": True}, expected,
                          API_SOURCE)
    except ApiError as exc:
        ok = exc.status == 422 and UPDATE_MESSAGE in json.dumps(exc.body)
        verdict = Verdict.ERROR if transient(exc) else Verdict.PASS if ok else Verdict.FAIL
        return _verdicted(verdict, "" if ok else f"HTTP {exc.status}: {exc.body.get('message')}",
                          {"status": exc.status, "body": exc.body}, expected, API_SOURCE)
    finally:
        try:
            api.delete_pod(namespace, name)
        except ApiError:
            pass


def node_features_check(target: KubeTarget, catalogue: Catalogue, node_name: str,
                        advertised: bool | None, runtime_known: bool) -> Verdicted:
    """node.status.features.supplementalGroupsPolicy against the runtime (where the suite can ask it: the
    field mirrors Status().features, absent and not false when the runtime has none) and against a Strict
    pod on that node: a node claiming the feature must keep image groups out of it; a node without the
    claim must reject it (kubelet >= 1.33)."""
    node = target.node(node_name, fresh=True)
    claim = node_feature(node)
    minor = kubelet_minor(node)
    observed: dict[str, Any] = {"status.features": (node.get("status") or {}).get("features"),
                                "containerRuntimeVersion": node_info(node).get("containerRuntimeVersion"),
                                "kubeletVersion": node_info(node).get("kubeletVersion")}
    problems = []
    if runtime_known:
        observed["runtime Status().features.supplemental_groups_policy"] = advertised
        problems += feature_problems(node, advertised)
    probe = next((s for s in catalogue.scenarios if "upstream-e2e" in s.tags and "Strict" in s.policies), None)
    if probe is None:
        return _verdicted(Verdict.ERROR, "no upstream-e2e scenario to probe Strict with", observed, {}, FEATURE_SOURCE)
    outcome = target.run_pod(probe, "Strict", "container", node_name)
    strict, merge = probe.expect["Strict"].identity, probe.expect["Merge"].identity
    first = outcome.observation.first
    groups = set(first.status_groups) if first else None
    observed["strict probe pod"] = {"scenario": probe.name, "rejected": is_rejected(outcome.pod),
                                    "groups": sorted(groups) if groups is not None else None}
    assert strict is not None and merge is not None
    image_groups = merge.groups - strict.groups
    if claim:
        if is_rejected(outcome.pod):
            problems.append("the node claims supplementalGroupsPolicy but rejected a Strict pod")
        elif groups is not None and groups & image_groups:
            problems.append(f"the node claims supplementalGroupsPolicy but its Strict pod got the image groups "
                            f"{sorted(groups & image_groups)} (groups {sorted(groups)}): Strict behaves as Merge")
    elif minor >= FIRST_REJECTING_MINOR and not is_rejected(outcome.pod):
        problems.append(f"the node does not claim supplementalGroupsPolicy ({'false' if claim is False else 'absent'})"
                        f" but its Strict pod was admitted and ran (groups {sorted(groups or [])}); kubelet 1.{minor} "
                        "must reject it")
    expected = {"supplementalGroupsPolicy": advertised if runtime_known else "as its Strict pods show",
                "strict_pod": "runs without image groups" if claim else "rejected"}
    if problems:
        return _verdicted(Verdict.FAIL, "\n".join(problems), observed, expected, FEATURE_SOURCE)
    if not claim and minor < FIRST_REJECTING_MINOR:
        return _verdicted(Verdict.UNSUPPORTED, f"kubelet 1.{minor} predates the rejection: Strict falls back to Merge",
                          observed, expected, FEATURE_SOURCE)
    return _verdicted(Verdict.PASS, "", observed, expected, FEATURE_SOURCE)

"""Readers of the raw JSON the API server sends: container statuses and their `user`, node readiness,
runtime and kubelet versions, `status.features` (and `crictl info`'s), and whether they agree."""

from __future__ import annotations

from conformance.core.model import RuntimeInfo
from conformance.core.versions import version_key
from conformance.kube.manifests import probe_name

STATUS_KEY = {"container": "containerStatuses", "init": "initContainerStatuses",
              "sidecar": "initContainerStatuses", "ephemeral": "ephemeralContainerStatuses"}


def container_status(pod: dict, variant: str, name: str = "") -> dict | None:
    """The status of container `name` (default: the probe of that kind) in the list its kind reports in."""
    for entry in (pod.get("status") or {}).get(STATUS_KEY[variant]) or []:
        if entry.get("name") == (name or probe_name(variant)):
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
                       endpoint=f"node/{node.get('metadata', {}).get('name', '')}",
                       handler_features=node_handler_features(node))


def node_handler_features(node: dict, handler: str = "") -> dict[str, bool] | None:
    """node.status.runtimeHandlers[name].features of the handler pods use ("": the default, no RuntimeClass);
    None when the node lists no handlers."""
    for entry in (node.get("status") or {}).get("runtimeHandlers") or []:
        if entry.get("name", "") == handler:
            features = entry.get("features") or {}
            return {"user_namespaces": bool(features.get("userNamespaces")),
                    "recursive_read_only_mounts": bool(features.get("recursiveReadOnlyMounts"))}
    return None


def kubelet_minor(node: dict) -> int:
    key = version_key(node_info(node).get("kubeletVersion", "v0.0.0"))
    return key[1] if len(key) > 1 else 0


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

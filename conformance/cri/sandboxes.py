"""What the suite asks of any CRI runtime besides running cases: what it is (Version, Status().features),
and removing its sandboxes, one or many."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conformance.core.model import RuntimeInfo
from conformance.cri import api_pb2 as pb
from conformance.cri.client import CRIClient, CRIError
from conformance.errors import RuntimeBroken

REMOVALS_AT_ONCE = 8  # sandboxes removed at once when a run ends


def runtime_info(client: CRIClient, handler: str = "") -> RuntimeInfo:
    """Version(), Status().features and the features of `handler` (Status().runtime_handlers), as the
    kubelet reads them."""
    version = client.version()
    status = client.status()
    features = None
    if status.HasField("features"):
        features = {"supplemental_groups_policy": status.features.supplemental_groups_policy}
    return RuntimeInfo(name=version.runtime_name, version=version.runtime_version,
                       api_version=version.runtime_api_version, features=features, handler=handler,
                       endpoint=client.endpoint, handler_features=handler_features(status, handler))


def handler_features(status: pb.StatusResponse, handler: str) -> dict[str, bool] | None:
    """The features one runtime handler reports ("" is the default handler); None when the runtime lists
    no handlers (runtimes older than the field)."""
    for entry in status.runtime_handlers:
        if entry.name == handler:
            return {"user_namespaces": entry.features.user_namespaces,
                    "recursive_read_only_mounts": entry.features.recursive_read_only_mounts}
    return None


def remove_sandbox(client: CRIClient, sandbox_id: str) -> None:
    """Stop and remove one sandbox and its containers. Running containers are stopped first with no
    grace period, as the kubelet does before StopPodSandbox (CRI-O's StopPodSandbox would otherwise
    wait its 30 s stop timeout for a first process that ignores SIGTERM)."""
    try:
        for container in client.list_containers(sandbox_id):
            if container.state == pb.CONTAINER_RUNNING:
                client.stop_container(container.id, timeout=0)
        client.stop_pod_sandbox(sandbox_id)
    finally:
        client.remove_pod_sandbox(sandbox_id)


def remove_sandboxes(client: CRIClient, labels: dict[str, str] | None, most: int | None = None) -> int:
    """Remove the sandboxes carrying `labels` (every sandbox the runtime has when None), several at once;
    none when there are more than `most` (the caller removes the whole runtime instead). How many went."""

    def remove(sandbox_id: str) -> int:
        try:
            remove_sandbox(client, sandbox_id)
            return 1
        except (CRIError, RuntimeBroken):
            return 0

    try:
        sandboxes = client.list_pod_sandbox(labels)
    except (CRIError, RuntimeBroken):
        return 0
    if most is not None and len(sandboxes) > most:
        return 0
    with ThreadPoolExecutor(max_workers=REMOVALS_AT_ONCE, thread_name_prefix="sgp-leftover") as pool:
        return sum(pool.map(remove, [s.id for s in sandboxes]))

"""A KubeApi fake that answers with objects shaped exactly as the API server returns them (JSON)."""

from __future__ import annotations

import copy
import json
import time
import weakref
from collections.abc import Callable, Iterator

from conformance.kube.admission import REJECT_MESSAGE, REJECT_REASON
from conformance.kube.api import ApiError

TS = "2026-08-21T10:00:00Z"


def node(name: str, runtime: str = "containerd://2.1.1", kubelet: str = "v1.33.1",
         features: dict | None = None, ready: bool = True) -> dict:
    status: dict = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastHeartbeatTime": TS,
                        "lastTransitionTime": TS, "reason": "KubeletReady",
                        "message": "kubelet is posting ready status"}],
        "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.8.0",
                     "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": runtime,
                     "kubeletVersion": kubelet, "kubeProxyVersion": kubelet, "operatingSystem": "linux",
                     "architecture": "amd64"},
    }
    if features is not None:
        status["features"] = features
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "uid": f"uid-{name}", "labels": {"kubernetes.io/os": "linux",
                                                                       "kubernetes.io/hostname": name}},
            "spec": {"podCIDR": "10.244.1.0/24"}, "status": status}


def probe(uid: int, gid: int, groups: list[int]) -> str:
    g = " ".join(str(x) for x in groups)
    return (f"SGP-BEGIN\nSGP-ID uid={uid} gid={gid} groups={','.join(str(x) for x in groups)}\n"
            f"SGP-STATUS Uid: {uid} {uid} {uid} {uid}\nSGP-STATUS Gid: {gid} {gid} {gid} {gid}\n"
            f"SGP-STATUS Groups: {g}\nSGP-END\n")


def user(uid: int, gid: int, groups: list[int]) -> dict:
    return {"linux": {"uid": uid, "gid": gid, "supplementalGroups": groups}}


def running_status(name: str, usr: dict | None, key: str = "containerStatuses", image: str = "img") -> dict:
    entry = {"name": name, "state": {"running": {"startedAt": TS}}, "lastState": {}, "ready": True,
             "restartCount": 0, "image": image, "imageID": "sha256:" + "1" * 64,
             "containerID": "containerd://" + "c" * 64, "started": True}
    if usr is not None:
        entry["user"] = usr
    return entry


def terminated_status(name: str, usr: dict | None, code: int = 0) -> dict:
    entry = running_status(name, usr)
    entry["state"] = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": TS, "finishedAt": TS, "containerID": entry["containerID"]}}
    entry["ready"] = False
    return entry


def waiting_status(name: str, reason: str, message: str) -> dict:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}, "lastState": {},
            "ready": False, "restartCount": 0, "image": "img", "imageID": "", "started": False}


def rejected_status() -> dict:
    return {"phase": "Failed", "reason": REJECT_REASON, "message": REJECT_MESSAGE, "startTime": TS}


def rejection_event(ns: str, pod: str, count: int = 1) -> dict:
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": f"{pod}.17f0a", "namespace": ns, "uid": "e1", "resourceVersion": "1"},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "uid": "p1", "apiVersion": "v1",
                               "resourceVersion": "1"},
            "reason": REJECT_REASON, "message": "SupplementalGroupsPolicy=Strict is not supported in this node",
            "source": {"component": "kubelet", "host": "w1"}, "firstTimestamp": TS, "lastTimestamp": TS,
            "count": count, "type": "Warning", "eventTime": None, "reportingComponent": "kubelet",
            "reportingInstance": "w1"}


def status_422(name: str, reason: str, field: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'Pod "{name}" is invalid: {field}: {message}', "reason": "Invalid",
            "details": {"name": name, "kind": "Pod", "causes": [{"reason": reason, "message": message,
                                                                  "field": field}]},
            "code": 422}


Behaviour = Callable[[dict, int], dict]  # (pod manifest, poll number) -> status


WATCH_TICKS = 500  # a fake watch looks this many times (1 ms apart) before it ends, as a server's does


class FakeApi:
    """Pods get their status from `behaviour` (called each time a pod is read or a watch looks again); logs/exec
    from `log`/`exec_out`; calls are recorded. `end_all_watches()` ends every watch of every fake (a test's end)."""

    made: weakref.WeakSet[FakeApi] = weakref.WeakSet()

    def __init__(self, nodes: list[dict], behaviour: Behaviour | None = None, log: str = "", exec_out: str = "",
                 events: Callable[[str, str], list[dict]] | None = None):
        self.nodes = nodes
        self.behaviour = behaviour
        self.log = log
        self.exec_out = exec_out
        self.events_fn = events or (lambda ns, pod: [])
        self.pods: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.calls: list[tuple] = []
        self.namespaces: dict[str, dict] = {}
        self.fail_next: list[ApiError] = []
        self.create_errors: dict[str, ApiError] = {}
        self.patch_error: ApiError | None = None
        self.unpullable: set[str] = set()  # image references the nodes cannot get (the image probe pod)
        self.watching = True
        self.watch_epoch = 0
        FakeApi.made.add(self)

    @classmethod
    def end_all_watches(cls) -> None:
        for api in list(cls.made):
            api.watching = False

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def create_namespace(self, body: dict) -> dict:
        self.calls.append(("create_namespace", body))
        self.namespaces[body["metadata"]["name"]] = body
        return body

    def delete_namespace(self, name: str) -> None:
        self.calls.append(("delete_namespace", name))
        self.namespaces.pop(name, None)

    def list_namespaces(self, label_selector: str) -> list[dict]:
        key, _, value = label_selector.partition("=")
        return [ns for ns in self.namespaces.values() if ns["metadata"].get("labels", {}).get(key) == value]

    def create_pod(self, namespace: str, body: dict, dry_run: bool = False) -> dict:
        self.calls.append(("create_pod", body, dry_run))
        if not dry_run:
            self._maybe_fail()
        err = self.create_errors.get(body["spec"]["securityContext"].get("supplementalGroupsPolicy", ""))
        if dry_run and err is not None:
            raise err
        if dry_run:
            return body
        pod = copy.deepcopy(body)
        pod["metadata"].update({"namespace": namespace, "uid": "p1", "resourceVersion": "1"})
        pod["spec"].setdefault("nodeName", self.nodes[-1]["metadata"]["name"])
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self.pods[body["metadata"]["name"]] = pod
        return pod

    def patch_pod(self, namespace: str, name: str, body: dict, dry_run: bool = False) -> dict:
        self.calls.append(("patch_pod", name, body, dry_run))
        if self.patch_error is not None:
            raise self.patch_error
        return self.pods[name]

    def add_ephemeral(self, namespace: str, name: str, container: dict) -> dict:
        self.calls.append(("add_ephemeral", name, container))
        self.pods[name]["spec"].setdefault("ephemeralContainers", []).append(container)
        return self.pods[name]

    def get_pod(self, namespace: str, name: str) -> dict:
        self._maybe_fail()
        return self._observed(name)

    def _observed(self, name: str) -> dict:
        pod = self.pods[name]
        self.polls[name] = self.polls.get(name, 0) + 1
        if name.startswith("sgp-images-"):  # the image probe: each container pulled, or refused
            pod["status"] = {"phase": "Pending", "containerStatuses": [
                {"name": c["name"], "image": c["image"], "imageID": "",
                 "state": {"waiting": {"reason": "ErrImageNeverPull", "message": f"{c['image']} is not present"}}}
                if c["image"] in self.unpullable else
                {"name": c["name"], "image": c["image"], "imageID": "sha256:1",
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}} for c in pod["spec"]["containers"]]}
            return copy.deepcopy(pod)
        if self.behaviour is not None:
            pod["status"] = self.behaviour(pod, self.polls[name])
        return copy.deepcopy(pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_pod", name))
        self.pods.pop(name, None)

    def list_pods(self, namespace: str, label_selector: str = "") -> list[dict]:
        return list(self.pods.values())

    def pod_log(self, namespace: str, name: str, container: str) -> str:
        self.calls.append(("pod_log", name, container))
        return self.log

    def exec(self, namespace: str, name: str, container: str, argv: list[str]) -> str:
        self.calls.append(("exec", name, container, argv))
        return self.exec_out

    def list_nodes(self, label_selector: str = "") -> list[dict]:
        return copy.deepcopy(self.nodes)

    def _events_now(self, namespace: str) -> list[dict]:
        return [e for name in list(self.pods) for e in self.events_fn(namespace, name)]

    def list_versioned(self, kind: str, namespace: str, label_selector: str = "") -> tuple[list[dict], str]:
        if kind == "pods":
            return [self._observed(name) for name in list(self.pods)], "1"
        return self._events_now(namespace), "1"

    def stop_watches(self) -> None:
        """The watches open now end (as their connections shut); later ones run."""
        self.watch_epoch += 1

    def watch(self, kind: str, namespace: str, label_selector: str, resource_version: str) -> Iterator[dict]:
        """Every pod looked at again each tick, a change sent as MODIFIED; events sent once as ADDED."""
        sent: dict[str, str] = {}
        epoch = self.watch_epoch
        for _ in range(WATCH_TICKS):
            if not self.watching or self.watch_epoch != epoch:
                raise ConnectionError("fake watch stopped")
            if kind == "pods":
                objects = [self._observed(name) for name in list(self.pods) if name in self.pods]
            else:
                objects = self._events_now(namespace)
            for obj in objects:
                key, text = obj["metadata"]["name"], json.dumps(obj, sort_keys=True)
                if sent.get(key) != text:
                    sent[key] = text
                    yield {"type": "MODIFIED", "object": obj}
            time.sleep(0.001)

    def create_service_account(self, namespace: str, name: str) -> dict:
        self.calls.append(("create_service_account", namespace, name))
        raise ApiError(409, {"reason": "AlreadyExists", "message": f'serviceaccounts "{name}" already exists'})

    def get_service_account(self, namespace: str, name: str) -> dict:
        return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace}}

"""The API client every Kubernetes target and the audit use: the KubeApi protocol (the calls the suite
makes), ApiError, and ClientApi over the official kubernetes client. Every read uses
_preload_content=False and parses the raw JSON, because generated models drop fields they do not know
(status.features, user)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from conformance import interrupt
from conformance.errors import ProvisionError, SuiteError

REQUEST_TIMEOUT = 60  # seconds for one API call (a wedged API server must not hang the run)
WATCH_SECONDS = 240  # the server ends a watch after this long; the watcher starts the next from where it was
WATCHABLE = ("pods", "events")


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
    def list_nodes(self, label_selector: str = "") -> list[dict]: ...
    def list_versioned(self, kind: str, namespace: str, label_selector: str = "") -> tuple[list[dict], str]: ...
    def watch(self, kind: str, namespace: str, label_selector: str, resource_version: str) -> Iterator[dict]: ...
    def get_service_account(self, namespace: str, name: str) -> dict: ...
    def create_service_account(self, namespace: str, name: str) -> dict: ...
    def stop_watches(self) -> None: ...


class ApiError(SuiteError):
    """An API call failed: HTTP status plus the Status object the server returned."""

    def __init__(self, status: int, body: dict, what: str = ""):
        self.status = status
        self.body = body
        super().__init__(f"{what}: HTTP {status}: {body.get('message', body)}")

    @property
    def causes(self) -> list[dict]:
        return list((self.body.get("details") or {}).get("causes") or [])


def status_body(exc: Any) -> dict:
    """The Status object a failed call returned (at least its message)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {"message": str(exc.body)}
    return body or {"message": str(getattr(exc, "reason", "") or exc)}


class ClientApi:
    """The KubeApi protocol on a kubernetes.client.CoreV1Api."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        # cases side by side, two watches and the background deletes each hold a connection
        api_client.configuration.connection_pool_maxsize = 32
        api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
        self.core = client.CoreV1Api(api_client)
        self.configuration = api_client.configuration
        self._streams: set[Any] = set()  # the open watches' responses (stop_watches shuts them)

    def _raw(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        """The body of one call; ApiError for an error status, ConnectionError when the server is not reached."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            with interrupt.shielded():  # a Ctrl-C inside urllib3's pool locking would wedge the client
                return fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs).data
        except ApiException as exc:
            raise ApiError(exc.status or 0, status_body(exc), what) from exc
        except HTTPError as exc:
            raise ConnectionError(f"{what}: {exc}") from exc

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        data = self._raw(what, fn, *args, **kwargs)
        return json.loads(data) if data else {}

    def create_namespace(self, body: dict) -> dict:
        return self._call("create namespace", self.core.create_namespace, body)

    def delete_namespace(self, name: str) -> None:
        self._call(f"delete namespace {name}", self.core.delete_namespace, name)

    def list_namespaces(self, label_selector: str) -> list[dict]:
        return self._call("list namespaces", self.core.list_namespace, label_selector=label_selector)["items"]

    def create_pod(self, namespace: str, body: dict, dry_run: bool = False) -> dict:
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"create pod {body['metadata']['name']}", self.core.create_namespaced_pod, namespace, body,
                          **extra)

    def patch_pod(self, namespace: str, name: str, body: dict, dry_run: bool = False) -> dict:
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"patch pod {name}", self.core.patch_namespaced_pod, name, namespace, body, **extra)

    def add_ephemeral(self, namespace: str, name: str, container: dict) -> dict:
        body = {"spec": {"ephemeralContainers": [container]}}
        return self._call(f"add ephemeral container to {name}", self.core.patch_namespaced_pod_ephemeralcontainers,
                          name, namespace, body)

    def get_pod(self, namespace: str, name: str) -> dict:
        return self._call(f"get pod {name}", self.core.read_namespaced_pod, name, namespace)

    def delete_pod(self, namespace: str, name: str) -> None:
        self._call(f"delete pod {name}", self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)

    def list_pods(self, namespace: str, label_selector: str = "") -> list[dict]:
        return self._call("list pods", self.core.list_namespaced_pod, namespace,
                          label_selector=label_selector)["items"]

    def pod_log(self, namespace: str, name: str, container: str) -> str:
        return self._raw(f"log of {name}/{container}", self.core.read_namespaced_pod_log, name, namespace,
                         container=container).decode(errors="replace")

    def exec(self, namespace: str, name: str, container: str, argv: list[str]) -> str:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        # stream() swaps the ApiClient's request method for a websocket one while it runs: an ApiClient of
        # its own keeps calls made meanwhile from other threads on plain HTTP.
        core = client.CoreV1Api(client.ApiClient(self.configuration))
        try:
            with interrupt.shielded():
                return stream(core.connect_get_namespaced_pod_exec, name, namespace, container=container,
                              command=argv, stderr=True, stdin=False, stdout=True, tty=False,
                              _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise ApiError(exc.status or 0, status_body(exc), f"exec in {name}/{container}") from exc
        finally:
            core.api_client.close()

    def list_nodes(self, label_selector: str = "") -> list[dict]:
        return self._call("list nodes", self.core.list_node, label_selector=label_selector)["items"]

    def _lister(self, kind: str) -> Callable[..., Any]:
        if kind not in WATCHABLE:
            raise ValueError(f"cannot watch {kind!r}")
        return self.core.list_namespaced_pod if kind == "pods" else self.core.list_namespaced_event

    def list_versioned(self, kind: str, namespace: str, label_selector: str = "") -> tuple[list[dict], str]:
        """The items and the list's resourceVersion, from which a watch starts."""
        found = self._call(f"list {kind}", self._lister(kind), namespace, label_selector=label_selector)
        return found["items"], found["metadata"]["resourceVersion"]

    def watch(self, kind: str, namespace: str, label_selector: str, resource_version: str) -> Iterator[dict]:
        """The raw watch events ({"type", "object"}) after `resource_version`, until the server ends the watch
        (WATCH_SECONDS) or the connection drops; bookmarks carry the newest resourceVersion."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        what = f"watch {kind}"
        try:
            resp = self._lister(kind)(namespace, label_selector=label_selector, watch=True,
                                      resource_version=resource_version, allow_watch_bookmarks=True,
                                      timeout_seconds=WATCH_SECONDS, _preload_content=False,
                                      _request_timeout=(REQUEST_TIMEOUT, WATCH_SECONDS + REQUEST_TIMEOUT))
        except ApiException as exc:
            raise ApiError(exc.status or 0, status_body(exc), what) from exc
        except HTTPError as exc:
            raise ConnectionError(f"{what}: {exc}") from exc
        self._streams.add(resp)
        try:
            buffer = b""
            for chunk in resp.stream(amt=None, decode_content=False):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except HTTPError as exc:
            raise ConnectionError(f"{what}: {exc}") from exc
        finally:
            self._streams.discard(resp)
            resp.release_conn()

    def stop_watches(self) -> None:
        """End every open watch now: its connection is shut, so a follower blocked reading it wakes (an API
        server being stopped would otherwise wait for the stream before it exits)."""
        for resp in list(self._streams):
            with contextlib.suppress(OSError, AttributeError):
                resp.shutdown()

    def create_service_account(self, namespace: str, name: str) -> dict:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        return self._call(f"create serviceaccount {name}", self.core.create_namespaced_service_account, namespace,
                          body)

    def get_service_account(self, namespace: str, name: str) -> dict:
        return self._call(f"get serviceaccount {name}", self.core.read_namespaced_service_account, name, namespace)


def _import_client() -> None:
    with contextlib.suppress(Exception):  # client() reports what fails
        from kubernetes import client, config  # noqa: F401

        client.CoreV1Api  # noqa: B018 - the largest module, imported on first use


def warm() -> None:
    """Import the kubernetes client in the background (about a second of CPU: its CoreV1Api module is large)
    while a target starts its cluster, so client() finds it imported."""
    threading.Thread(target=_import_client, name="sgp-import-client", daemon=True).start()


def client(kubeconfig: str | None, context: str | None = None) -> KubeApi:
    """The API client; a kubeconfig that cannot be read or has no such context is a ProvisionError."""
    try:
        return ClientApi(kubeconfig, context)
    except Exception as exc:
        if isinstance(exc, SuiteError):
            raise
        where = kubeconfig or "the default kubeconfig (~/.kube/config)"
        raise ProvisionError(f"cannot use {where}{f' context {context}' if context else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; set KUBECONFIG "
                             "(and CONTEXT)") from exc

"""What the audit reads, and nothing else: `list` on pods, nodes, replicasets (apps) and jobs (batch).

Every list is paged and parsed from the raw JSON (generated models drop fields they do not know, such as
status.features and the containers' `user`). A refusal names the verb, resource and scope to grant."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from conformance.errors import SuiteError
from conformance.kube.api import REQUEST_TIMEOUT, status_body

PAGE = 500  # objects per list call
OWNER_KINDS = {"ReplicaSet": ("apps", "replicasets"), "Job": ("batch", "jobs")}


class AuditError(SuiteError):
    """The audit could not read what it needs (exit 2)."""


class MissingPermission(AuditError):
    """The API server refused a read: carries the verb, resource and scope to grant."""

    def __init__(self, verb: str, resource: str, namespace: str | None, message: str):
        self.verb, self.resource, self.namespace = verb, resource, namespace
        scope = f"in namespace {namespace}" if namespace else "cluster-wide"
        super().__init__(f"missing permission: {verb} {resource} {scope} (the server said: {message}); "
                         "grant the ClusterRole sgp-conformance-audit (docs/audit.md)")


class ReadApi(Protocol):
    """The reads the audit makes. namespace None = all namespaces."""

    def pods(self, namespace: str | None, selector: str) -> list[dict]: ...
    def nodes(self) -> list[dict]: ...
    def owners(self, kind: str, namespace: str | None) -> list[dict]: ...


def kubeconfig_context(kubeconfig: str | None, context: str | None) -> tuple[str, str]:
    """(name, namespace) of the context the client will use; its namespace is the default for -n."""
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception as exc:
        raise AuditError(f"cannot read {kubeconfig or 'the default kubeconfig (KUBECONFIG or ~/.kube/config)'}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    chosen = next((c for c in contexts if c["name"] == context), None) if context else current
    if chosen is None:
        names = ", ".join(c["name"] for c in contexts)
        raise AuditError(f"context {context!r} is not in the kubeconfig (it has: {names})")
    return chosen["name"], (chosen.get("context") or {}).get("namespace") or "default"


class ClusterReader:
    """ReadApi over the official kubernetes client, from a kubeconfig (and context)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config

        try:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        except Exception as exc:
            raise AuditError(f"cannot use {kubeconfig or 'the default kubeconfig'}"
                             f"{f' context {context}' if context else ''}: {exc}") from exc
        self.server = api_client.configuration.host
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)

    def _list(self, resource: str, namespace: str | None, fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> list[dict]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        items: list[dict] = []
        token = None
        while True:
            paging = {"limit": PAGE, **({"_continue": token} if token else {})}
            try:
                resp = fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **paging, **kwargs)
            except ApiException as exc:
                message = str(status_body(exc).get("message") or exc.reason)
                if exc.status == 403:
                    raise MissingPermission("list", resource, namespace, message) from exc
                if exc.status == 401:
                    raise AuditError(f"unauthorized at {self.server}: the kubeconfig's credentials were refused "
                                     f"({message})") from exc
                raise AuditError(f"list {resource}: HTTP {exc.status}: {message}") from exc
            except HTTPError as exc:
                raise AuditError(f"cannot reach the cluster at {self.server}: {exc}") from exc
            doc = json.loads(resp.data)
            items += doc.get("items") or []
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items

    def pods(self, namespace: str | None, selector: str) -> list[dict]:
        if namespace is None:
            return self._list("pods", None, self.core.list_pod_for_all_namespaces, label_selector=selector)
        return self._list("pods", namespace, self.core.list_namespaced_pod, namespace, label_selector=selector)

    def nodes(self) -> list[dict]:
        return self._list("nodes", None, self.core.list_node)

    def owners(self, kind: str, namespace: str | None) -> list[dict]:
        group, plural = OWNER_KINDS[kind]
        api = self.apps if group == "apps" else self.batch
        resource = f"{plural}.{group}"
        if namespace is None:
            return self._list(resource, None, getattr(api, f"list_{_snake(kind)}_for_all_namespaces"))
        return self._list(resource, namespace, getattr(api, f"list_namespaced_{_snake(kind)}"), namespace)


def _snake(kind: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")


"""One watch on the run's pods and one on its namespace's events, followed in the background: every case's
wait reads this cache (no GET per poll) and wakes when something changed."""

from __future__ import annotations

import threading

from conformance.kube.api import ApiError, KubeApi
from conformance.kube.manifests import RUN_LABEL

GONE = 410  # the resourceVersion a watch asked for is too old: list again
REFUSED = (401, 403)  # the credentials may list but not watch: no wait can end well
RETRY = 0.5  # seconds before a watch that broke starts again


class RunWatch:
    """Pods (by name) with the run's label and the namespace's events (by the pod they are about), as the API
    server last sent them. start() lists both and follows them; stop() ends the followers."""

    def __init__(self, api: KubeApi, namespace: str, run_id: str):
        self.api = api
        self.namespace = namespace
        self.selector = f"{RUN_LABEL}={run_id}"
        self.pods: dict[str, dict] = {}
        self._events: dict[str, dict[str, dict]] = {}  # pod name -> event name -> event
        self.generation = 0  # counts changes; a waiter that saw this number sleeps until it moves
        self.problem = ""  # why a follower is not following right now ("" while it is)
        self.refused = ""  # why the API server will not let the suite watch (set once, for good)
        self._changed = threading.Condition()
        self._seen = threading.local()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """List both kinds (an error here is the caller's), then follow them in daemon threads."""
        versions = {kind: self._relist(kind) for kind in ("pods", "events")}
        for kind, version in versions.items():
            thread = threading.Thread(target=self._follow, args=(kind, version), daemon=True,
                                      name=f"sgp-watch-{kind}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self.api.stop_watches()
        with self._changed:
            self._changed.notify_all()

    # reading -------------------------------------------------------------------------------
    def pod(self, name: str) -> dict | None:
        return self.pods.get(name)

    def events(self, pod: str, reason: str = "") -> list[dict]:
        found = list(self._events.get(pod, {}).values())
        return [e for e in found if not reason or e.get("reason") == reason]

    def pause(self, seconds: float) -> None:
        """A wait's sleep: returns at once when something changed since this thread last looked, else at the
        next change or after `seconds`."""
        with self._changed:
            if getattr(self._seen, "generation", -1) == self.generation and not self._stopping.is_set():
                self._changed.wait(seconds)
            self._seen.generation = self.generation

    # following -----------------------------------------------------------------------------
    def _relist(self, kind: str) -> str:
        items, version = self.api.list_versioned(kind, self.namespace, self.selector if kind == "pods" else "")
        with self._changed:
            if kind == "pods":
                self.pods = {p["metadata"]["name"]: p for p in items}
            else:
                self._events = {}
                for event in items:
                    self._store_event(event)
            self._bump()
        return version

    def _follow(self, kind: str, version: str) -> None:
        while not self._stopping.is_set():
            try:
                for change in self.api.watch(kind, self.namespace, self.selector if kind == "pods" else "", version):
                    if self._stopping.is_set():
                        return
                    version = self._apply(kind, change) or version
                self.problem = ""
            except ApiError as exc:
                if exc.status == GONE:
                    version = self._relist_quietly(kind, version)
                    continue
                if exc.status in REFUSED:
                    self.refused = f"the API server refuses to let the suite watch {kind} in {self.namespace}: {exc}"
                    self.stop()
                    return
                self._broke(f"{kind}: {exc}")
            except (ConnectionError, TimeoutError, ValueError) as exc:
                self._broke(f"{kind}: {exc}")
            except _Gone:
                version = self._relist_quietly(kind, version)

    def _relist_quietly(self, kind: str, version: str) -> str:
        try:
            return self._relist(kind)
        except (ApiError, ConnectionError, TimeoutError) as exc:
            self._broke(f"{kind}: {exc}")
            return version

    def _broke(self, why: str) -> None:
        self.problem = f"watching the run's {why}"
        self._stopping.wait(RETRY)

    def _apply(self, kind: str, change: dict) -> str | None:
        """Store one change; the resourceVersion to go on from."""
        obj = change.get("object") or {}
        kind_of = change.get("type")
        if kind_of == "ERROR":
            if obj.get("code") == GONE:
                raise _Gone()
            raise ApiError(int(obj.get("code") or 0), obj, f"watch {kind}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind_of == "BOOKMARK":
            return version
        with self._changed:
            if kind == "pods":
                name = obj["metadata"]["name"]
                if kind_of == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = obj
            elif kind_of != "DELETED":
                self._store_event(obj)
            self._bump()
        return version

    def _store_event(self, event: dict) -> None:
        about = (event.get("involvedObject") or {}).get("name", "")
        self._events.setdefault(about, {})[event["metadata"]["name"]] = event

    def _bump(self) -> None:
        self.generation += 1
        self._changed.notify_all()


class _Gone(Exception):
    """The watch's resourceVersion expired."""


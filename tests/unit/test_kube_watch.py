"""The run's watch (conformance/kube/watch.py) against scripted API answers: relists, refusals, wake-ups."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from conformance.errors import SuiteError
from conformance.kube.api import ApiError
from conformance.kube.pods import KubeTarget
from conformance.kube.waits import NotYet, Waits
from conformance.kube.watch import RunWatch


def pod(name: str, version: str, phase: str = "Pending") -> dict:
    return {"metadata": {"name": name, "resourceVersion": version}, "status": {"phase": phase}}


class Scripted:
    """list_versioned answers from `lists` (per kind, in turn); each watch call plays the next script of its kind:
    a list of watch events, or an exception to raise. A kind out of scripts blocks until `done`."""

    def __init__(self, lists: dict[str, list[tuple[list[dict], str]]], scripts: dict[str, list]):
        self.lists = lists
        self.scripts = scripts
        self.watched: list[tuple[str, str]] = []
        self.done = threading.Event()

    def list_versioned(self, kind: str, namespace: str, label_selector: str = "") -> tuple[list[dict], str]:
        return self.lists[kind].pop(0) if len(self.lists[kind]) > 1 else self.lists[kind][0]

    def stop_watches(self) -> None:
        pass

    def watch(self, kind: str, namespace: str, label_selector: str, resource_version: str) -> Iterator[dict]:
        self.watched.append((kind, resource_version))
        if not self.scripts.get(kind):
            self.done.wait(5)
            raise ConnectionError("closed")
        script = self.scripts[kind].pop(0)
        if isinstance(script, Exception):
            raise script
        yield from script


def settle(check, seconds: float = 3.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("not settled")


def test_changes_deletes_and_a_relist_after_gone() -> None:
    api = Scripted({"pods": [([pod("a", "1")], "1"), ([pod("b", "7")], "7")], "events": [([], "1")]},
                   {"pods": [[{"type": "MODIFIED", "object": pod("a", "2", "Running")},
                              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}},
                              {"type": "ERROR", "object": {"code": 410, "message": "too old"}}],
                             [{"type": "ADDED", "object": pod("c", "8")},
                              {"type": "DELETED", "object": pod("b", "9")}]]})
    watch = RunWatch(api, "ns", "r1")  # type: ignore[arg-type]
    try:
        watch.start()
        settle(lambda: "c" in watch.pods and "b" not in watch.pods)
        assert watch.pod("a") is None  # gone with the relist, which no longer had it
        assert [v for k, v in api.watched if k == "pods"][:2] == ["1", "7"]  # after the relist, from its version
    finally:
        api.done.set()
        watch.stop()


def test_pause_returns_at_the_next_change() -> None:
    api = Scripted({"pods": [([], "1")], "events": [([], "1")]}, {})
    watch = RunWatch(api, "ns", "r1")  # type: ignore[arg-type]
    watch.start()
    try:
        watch.pause(0)  # this thread has now seen the current state
        threading.Timer(0.1, lambda: watch._apply("pods", {"type": "ADDED", "object": pod("a", "2")})).start()
        began = time.monotonic()
        watch.pause(5)
        assert time.monotonic() - began < 2 and watch.pod("a") is not None
        began = time.monotonic()
        watch.pause(0.05)  # nothing new since: sleeps the whole interval
        assert time.monotonic() - began >= 0.04
    finally:
        api.done.set()
        watch.stop()


def test_a_watch_the_server_refuses_ends_every_wait_at_once() -> None:
    forbidden = ApiError(403, {"message": 'pods is forbidden: User "ci" cannot watch resource "pods"'}, "watch pods")
    api = Scripted({"pods": [([], "1")], "events": [([], "1")]}, {"pods": [forbidden]})
    target = KubeTarget(api, {}, run_id="r1", waits=Waits(pod=30, event=30, ready=30, interval=0.01))  # type: ignore[arg-type]
    try:
        settle(lambda: bool(target.watch().refused))

        def never() -> None:
            raise NotYet("still pending")

        began = time.monotonic()
        with pytest.raises(SuiteError, match="refuses to let the suite watch pods"):
            target.until(never, 30, "a pod")
        assert time.monotonic() - began < 1
    finally:
        api.done.set()
        target.close()

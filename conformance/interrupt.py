"""Ctrl-C and SIGTERM: a KeyboardInterrupt, but never in the middle of a runtime or API call.

Python raises a signal's exception at whatever line the main thread is on. Inside a library's own locking
(gRPC's channel state and urllib3's connection pool use `threading.Condition`, whose `__exit__` is Python
code) that can leave a lock held, and every later call on that channel, from any thread, waits on it
forever: the run printed its summary and then hung in its cleanup. So while the main thread is inside
`shielded()` the handler only notes the signal; the KeyboardInterrupt is raised when it leaves. Calls are
bounded by their own deadlines, so a shielded section ends soon. A signal that arrives while the run is
already removing what it started (`shielded(deliver=False)`) changes nothing: the run ends with exit 2 anyway.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import Future, wait
from typing import TypeVar

T = TypeVar("T")
POLL = 0.2  # seconds a wait for a future stays shielded before a noted signal is delivered


class _State:
    depth = 0  # shielded sections the main thread is in
    pending: int | None = None  # a signal noted while shielded


def _handle(signum: int, frame: object) -> None:
    if _State.depth:
        _State.pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def install(*signums: signal.Signals) -> None:
    """Handle these signals (default: SIGINT and SIGTERM) in this process."""
    for signum in signums or (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)


class shielded:
    """A section of the main thread a signal must not break into; other threads pass through unchanged.
    With `deliver` (the default) a signal noted inside is raised as KeyboardInterrupt on leaving it."""

    def __init__(self, deliver: bool = True):
        self.deliver = deliver
        self.main = False

    def __enter__(self) -> shielded:
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            _State.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.main:
            return
        _State.depth -= 1
        if _State.depth or _State.pending is None:
            return
        signum, _State.pending = _State.pending, None
        if self.deliver:  # also over an exception on its way out: the interrupt is what the run must see
            raise KeyboardInterrupt(f"signal {signum}")


def result(future: Future[T], timeout: float | None = None) -> T:
    """The future's result (TimeoutError after `timeout`); a signal meanwhile is raised within POLL seconds,
    never inside the future's lock."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
        with shielded():
            if wait((future,), timeout=max(0.0, left)).done:
                return future.result()
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"not done after {timeout:.0f}s")

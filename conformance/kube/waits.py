"""Waits that fail early: bounded, retried on transient API errors, ended at once when the run stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from conformance.errors import Stopped, SuiteError
from conformance.kube.api import ApiError

TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class NotYet(Exception):
    """Waiting goes on (retried by tenacity; never escapes a wait)."""


class WaitTimeout(SuiteError):
    """A bounded wait ran out."""


def transient(exc: BaseException) -> bool:
    """Retry these: throttling, server errors, dropped connections. Never assertion failures."""
    if isinstance(exc, ApiError):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | TimeoutError)


def not_found_is_not_yet(fn: Callable[[], Any]) -> Any:
    """404 while waiting for something to appear means: not yet."""
    try:
        return fn()
    except ApiError as exc:
        if exc.status == 404:
            raise NotYet(str(exc)) from None
        raise


@dataclass
class Waits:
    """Bounds for every wait (seconds); tests shrink them and pass a fake sleep. Setting `stopping` ends
    every wait at its next poll (cases still running when the run ends must not hold it up)."""

    pod: float = 120.0
    event: float = 30.0
    ready: float = 300.0
    interval: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    stopping: threading.Event = field(default_factory=threading.Event)

    def until(self, fn: Callable[[], Any], timeout: float, what: str,
              pause: Callable[[float], None] | None = None) -> Any:
        """Call fn until it returns without NotYet; transient API errors are retried too. `pause` replaces the
        sleep between calls (a watch's: it returns as soon as something changed)."""
        retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(self.interval), reraise=True,
                            retry=retry_if_exception(lambda e: isinstance(e, NotYet) or transient(e)),
                            sleep=pause or self.sleep)

        def attempt() -> Any:
            if self.stopping.is_set():
                raise Stopped(f"{what}: the run is stopping")
            return fn()

        try:
            return retrying(attempt)
        except NotYet as exc:
            raise WaitTimeout(f"{what}: not done after {timeout:.0f}s: {exc}") from None


# ----------------------------------------------------------------------------- manifests

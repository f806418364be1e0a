"""The floor a target sets: bare pods (no checks, no evidence), created and observed the way its runner runs a
case, one at a time or side by side. `make bench` sets the suite's cases against it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class BarePod:
    """Seconds from creating a bare pod to the state a case waits for (the node target: its container exited;
    Kubernetes targets: the pod running); its removal's seconds where the runner waits for that."""

    seconds: float
    removal: float | None = None


def measure(one: Callable[[], BarePod], count: int, side_by_side: int) -> list[BarePod]:
    """`count` bare pods, `side_by_side` at once."""
    if side_by_side <= 1:
        return [one() for _ in range(count)]
    with ThreadPoolExecutor(max_workers=side_by_side, thread_name_prefix="sgp-floor") as pool:
        return list(pool.map(lambda _: one(), range(count)))

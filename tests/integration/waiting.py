"""Polling with a deadline: tests wait for a state, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float = 60.0,
    what: str = "the expected state",
    interval: float = 0.25,
) -> T:
    """Observe until `done(observation)`; on timeout fail showing the last observation."""
    deadline = time.monotonic() + timeout
    while True:
        seen = observe()
        if done(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen!r}"
            )
        time.sleep(interval)

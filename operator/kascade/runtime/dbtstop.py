"""Stopping a dbt invocation on SIGTERM: promptly, with the warehouse query cancelled, and
always with exit code 143.

The signal raises Terminated in the main thread, as everywhere in the runtime; dbt takes
it as a KeyboardInterrupt, cancels the queries of its threads and unwinds. dbt cancels
once, though, and a query that its thread had not yet sent at that moment would then run
to its end while dbt waits for it. So, from the signal on, a watchdog thread keeps
cancelling the adapters' queries until dbt has unwound, and ends the process itself if
dbt has not unwound within GRACE_SECONDS.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from kascade.runtime.errors import Terminated

CANCEL_EVERY_SECONDS = 0.2
GRACE_SECONDS = 10.0


class Stop:
    """Whether SIGTERM arrived during the invocation; `unwound` ends the watchdog."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.unwound = threading.Event()


@contextmanager
def stoppable(cleanup: Callable[[], None]) -> Iterator[Stop]:
    """Handle SIGTERM for the duration of the block as described above; `cleanup` runs
    before a forced exit."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if not stop.requested.is_set():
            stop.requested.set()
            watchdog = threading.Thread(target=_watch, args=(stop, cleanup), daemon=True)
            watchdog.start()
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield stop
    finally:
        stop.unwound.set()
        signal.signal(signal.SIGTERM, previous)


def _watch(stop: Stop, cleanup: Callable[[], None]) -> None:
    waited = 0.0
    while not stop.unwound.wait(CANCEL_EVERY_SECONDS):
        waited += CANCEL_EVERY_SECONDS
        if waited >= GRACE_SECONDS:
            _force_exit(cleanup)
        _cancel_queries()


def _cancel_queries() -> None:
    from dbt.adapters.base.impl import BaseAdapter
    from dbt.adapters.factory import FACTORY

    for adapter in list(FACTORY.adapters.values()):
        if not isinstance(adapter, BaseAdapter):
            continue
        try:
            adapter.connections.cancel_open()
        except Exception:  # a connection closing meanwhile: the next round sees it gone
            continue


def _force_exit(cleanup: Callable[[], None]) -> None:
    print(
        f"error: dbt did not stop within {GRACE_SECONDS:.0f} s of SIGTERM; exiting",
        file=sys.stderr,
    )
    try:
        cleanup()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(Terminated.exit_code)

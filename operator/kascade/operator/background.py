"""Best-effort work started off the decision path (an Event, a bookkeeping write): kept
referenced until it ends, and its failure logged instead of left for asyncio to print as
an unretrieved exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from kascade.operator.kube import passing

log = logging.getLogger("kascade.operator")


def start_background(
    tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None], what: str
) -> asyncio.Task[None]:
    """Start `work`, hold it in `tasks` while it runs, and log how it failed, if it did."""
    task = asyncio.get_running_loop().create_task(work)
    tasks.add(task)

    def ended(done: asyncio.Task[None]) -> None:
        tasks.discard(done)
        if done.cancelled():
            return
        err = done.exception()
        if err is None:
            return
        if passing(err):  # the API server is away: the next change writes it again
            log.warning("event=background-failed work=%s error=%s", what, err)
        else:
            log.error("event=background-failed work=%s error=%s", what, err, exc_info=err)

    task.add_done_callback(ended)
    return task

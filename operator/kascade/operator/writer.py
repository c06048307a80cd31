"""Status writes off the decision path: a worker hands over the status it wants each
object to have and moves on; the writer sends the latest one per object, coalescing
changes that arrive while a write is in flight, and retries after API errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kascade.operator.kube import Kube, KubeError

log = logging.getLogger("kascade.operator")
RETRY_SECONDS = 1.0


class StatusWriter:
    """Latest-wins status writes for one run's objects."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.written: dict[tuple[str, str], dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, plural: str, name: str, status: dict[str, Any]) -> None:
        """Make `status` the one to write for an object (unless it is written already)."""
        key = (plural, name)
        if self.written.get(key) == status:
            self.pending.pop(key, None)
            return
        self.pending[key] = status
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, {}
            results = await asyncio.gather(
                *(
                    self.kube.patch_status(plural, self.namespace, name, status)
                    for (plural, name), status in batch.items()
                ),
                return_exceptions=True,
            )
            failed = False
            for (key, status), result in zip(batch.items(), results, strict=True):
                if isinstance(result, KubeError) and result.permanent:
                    # refused for good (the object is gone, or the status does not fit
                    # its schema): asking again every second would change nothing
                    log.warning(
                        "object=%s/%s/%s event=status-write-refused error=%s",
                        key[0],
                        self.namespace,
                        key[1],
                        result,
                    )
                elif isinstance(result, BaseException):
                    failed = True
                    log.warning(
                        "object=%s/%s/%s event=status-write-failed error=%s",
                        key[0],
                        self.namespace,
                        key[1],
                        result,
                    )
                    self.pending.setdefault(key, status)
                else:
                    self.written[key] = status
            if failed:
                await asyncio.sleep(RETRY_SECONDS)
        self._idle.set()

    async def flush(self) -> None:
        """Wait until every submitted status is written."""
        await self._idle.wait()

    def forget(self) -> None:
        """Drop what is known to be written (after the objects were re-read)."""
        self.written.clear()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

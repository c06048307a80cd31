"""The local runner: the host loop on this machine. The run's record lives in the state
dir, attempts are processes (host.processes), time is the wall clock.

Ctrl-C or SIGTERM asks for an abort (ABORTING, attempts stopped, ABORTED); a second one
stops every attempt at once. The CLI exits 130 after Ctrl-C and 143 after SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from kascade.api import TaskType
from kascade.engine.attempts import Observation
from kascade.engine.launch import Launch
from kascade.host.loop import RunLoop
from kascade.host.ports import Requests, StartFailed
from kascade.host.processes import ProcessRunner
from kascade.host.records import Changes, RunRecord, TaskRecord
from kascade.local.store import RunLock, StateDir

TICK_SECONDS = 0.5
PERSIST_INTERVAL_SECONDS = 0.5


class Reporter(Protocol):
    """Presentation of a run in progress (the CLI's live view or plain lines)."""

    def changed(self, record: RunRecord, changes: Changes) -> None: ...

    def tick(self, record: RunRecord) -> None: ...


@dataclass(frozen=True)
class Finished:
    """How a local run ended: its record, and the signal that stopped it, if any."""

    record: RunRecord
    signal: signal.Signals | None = None


class LocalRun:
    """The local adapter of the host loop for one run (store, attempts and clock)."""

    def __init__(
        self,
        record: RunRecord,
        state: StateDir,
        reporter: Reporter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.record = record
        self.state = state
        self.reporter = reporter
        self.clock = clock
        self.processes = ProcessRunner("a local run")
        self.stopped_by: signal.Signals | None = None
        self._interrupts = 0
        self._woken: asyncio.Event | None = None
        self._last_save = 0.0
        self._dirty = True

    # --- interrupts ------------------------------------------------------------------

    def interrupt(self, received: signal.Signals) -> None:
        """Ctrl-C or SIGTERM: the first asks for an abort, the next stops every attempt."""
        self._interrupts += 1
        self.stopped_by = self.stopped_by or received
        if self._interrupts > 1:
            self.processes.stop_all(force=True)
        self.wake()

    def wake(self) -> None:
        """Something changed (an attempt ended, an interrupt): look again now."""
        if self._woken is not None:
            self._woken.set()

    # --- the store -------------------------------------------------------------------

    async def load(self) -> RunRecord | None:
        return self.record

    def requests(self, record: RunRecord) -> Requests:
        return Requests(abort=self._interrupts > 0)

    async def save(self, record: RunRecord, changes: Changes) -> None:
        if changes:
            self._dirty = True
            if changes.tasks or changes.run:
                self.reporter.changed(record, changes)
        self._persist(force=False)

    async def close(self, record: RunRecord) -> None:
        self._persist(force=True)

    def _persist(self, force: bool) -> None:
        if not self._dirty:
            return
        moment = time.monotonic()
        if force or moment - self._last_save >= PERSIST_INTERVAL_SECONDS:
            self.state.save(self.record)
            self._last_save = moment
            self._dirty = False

    # --- attempts --------------------------------------------------------------------

    def attempt_name(self, task: TaskRecord, attempt: int) -> str:
        return f"{task.id}.{attempt}"

    async def start(self, task: TaskRecord, launch: Launch) -> str | None:
        if launch.kind == TaskType.FLOW:
            raise StartFailed(
                f"task `{task.id}` starts flow `{task.target}`: child flows run only on a "
                "cluster (kascade operator), not in a local run"
            )
        assert self.record.project is not None
        log = await self.processes.start(
            self.attempt_name(task, launch.attempt),
            launch,
            project=Path(self.record.project),
            folder=self.state.attempts_dir(self.record.id),
            on_end=self.wake,
        )
        return str(log)

    async def stop(self, task: TaskRecord, attempt: int, reason: str) -> None:
        self.processes.stop(self.attempt_name(task, attempt))

    def observe(self, task: TaskRecord, attempt: int) -> Observation:
        return self.processes.observe(self.attempt_name(task, attempt))

    # --- the clock -------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    async def wait(self, timeout: float) -> None:
        if self._woken is None:
            self._woken = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), min(timeout, TICK_SECONDS))
        self._woken.clear()
        self.reporter.tick(self.record)

    # --- running ---------------------------------------------------------------------

    async def run(self) -> RunRecord:
        """Run until the run has ended; if the runner itself fails (say the state dir
        fills up), its attempts are killed before the error propagates."""
        self._woken = asyncio.Event()
        loop = RunLoop(self, self, self, warehouse=self.record.warehouse)
        with _signals_call(self.interrupt):
            try:
                final = await loop.run()
            except BaseException:
                self.processes.stop_all(force=True)
                raise
            finally:
                await self.processes.close()
        assert final is not None
        return final


def run_local(
    record: RunRecord,
    state: StateDir,
    reporter: Reporter,
    lock: RunLock,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Finished:
    """Run a stored run to its end on this machine, holding its lock throughout."""
    adapter = LocalRun(record, state, reporter, clock)
    try:
        final = asyncio.run(adapter.run())
    finally:
        lock.release()
    return Finished(final, adapter.stopped_by)


@contextlib.contextmanager
def _signals_call(handler: Callable[[signal.Signals], None]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call `handler` (in the event loop) instead of
    ending the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    for received in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(received, handler, received)
    try:
        yield
    finally:
        for received in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(received)

"""What the run loop runs on, as three small interfaces an adapter implements: where the
run's record lives (RunStore), how attempts start, stop and are seen (Attempts), and how
time passes (Clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kascade.engine.attempts import Observation
from kascade.engine.errors import KascadeError
from kascade.engine.launch import Launch
from kascade.host.records import Changes, RunRecord, TaskRecord


class StartFailed(KascadeError):
    """An attempt that could not be started; the message names the cause."""


@dataclass(frozen=True)
class Requests:
    """What the outside world asks of a run right now."""

    abort: bool = False
    admitted: bool = True
    """Whether a waiting run may start (admission across runs is the host's)."""


class RunStore(Protocol):
    """Where a run's record lives: a state dir, or Run and Task objects."""

    async def load(self) -> RunRecord | None:
        """The run's record (planned if it was new); None when the run is gone."""
        ...

    def requests(self, record: RunRecord) -> Requests:
        """Abort requested? May a waiting run start? (cheap: called every round)"""
        ...

    async def save(self, record: RunRecord, changes: Changes) -> None:
        """Keep what one round changed (and show or announce it)."""
        ...

    async def close(self, record: RunRecord) -> None:
        """The run has ended and no attempt runs: make everything durable."""
        ...


class Attempts(Protocol):
    """How attempts run: Jobs, local processes or child runs."""

    def attempt_name(self, task: TaskRecord, attempt: int) -> str:
        """The deterministic name of an attempt (its Job, child Run or process key)."""
        ...

    async def start(self, task: TaskRecord, launch: Launch) -> str | None:
        """Start an attempt (starting one that exists is not an error); returns where its
        log goes, if the host keeps one. StartFailed when it cannot start."""
        ...

    async def stop(self, task: TaskRecord, attempt: int, reason: str) -> None:
        """Ask a running attempt to stop."""
        ...

    def observe(self, task: TaskRecord, attempt: int) -> Observation:
        """How the attempt stands now."""
        ...


class Clock(Protocol):
    """How time passes for a run."""

    def now(self) -> datetime:
        """The current time (UTC)."""
        ...

    async def wait(self, timeout: float) -> None:
        """Return when something of the run may have changed, or after `timeout` seconds."""
        ...

"""What becomes of an attempt as its host sees it: ended (with exit code, reason,
message and outputs), still running, or not seen at all. An attempt not seen for longer
than a grace period (its Job or process is gone) is lost; an attempt seen that no
record knows of (the host stopped between starting it and recording it) is adopted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kascade.api import TaskPhase
from kascade.engine.runstate import AttemptState, RunState, TaskState
from kascade.engine.statemachine import task_is_terminal

LOST = "AttemptLost"
START_ERROR = "StartError"
ADOPTED = "Adopted"


class Progress(StrEnum):
    """Where an attempt stands, as its host sees it."""

    UNSEEN = "unseen"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True)
class Observation:
    """An attempt as seen now: started, ended, exit code, why, details, outputs."""

    progress: Progress
    started: datetime | None = None
    ended: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    outputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class AttemptEnd:
    """The end of an attempt, to record."""

    ended: datetime
    exit_code: int | None
    reason: str
    message: str | None = None
    outputs: dict[str, Any] | None = None


def attempt_end(
    seen: Observation,
    *,
    started: datetime,
    stop_reason: str | None,
    now: datetime,
    grace_seconds: float,
) -> AttemptEnd | None:
    """How an open attempt ended, or None while it runs (or may just not be visible
    yet). `stop_reason` is why the host stopped it, if it did: that reason wins, and a
    stopped attempt that vanished has simply ended."""
    if seen.progress == Progress.ENDED:
        succeeded = seen.exit_code == 0 and stop_reason is None
        return AttemptEnd(
            ended=seen.ended or now,
            exit_code=seen.exit_code,
            reason=stop_reason or seen.reason or "Error",
            message=seen.message,
            outputs=seen.outputs if succeeded else None,
        )
    if seen.progress == Progress.UNSEEN and (
        stop_reason is not None or now - started > timedelta(seconds=grace_seconds)
    ):
        return AttemptEnd(
            ended=now,
            exit_code=None,
            reason=stop_reason or LOST,
            message=None if stop_reason else "its Job or process disappeared",
        )
    return None


def start_failure(message: str, now: datetime) -> AttemptEnd:
    """The end of an attempt that could not be started."""
    return AttemptEnd(ended=now, exit_code=None, reason=START_ERROR, message=message)


def adopt(state: RunState, found: Mapping[str, Observation], now: datetime) -> RunState:
    """Take over attempts that run (or ran) although no record shows them: `found` maps a
    task to what was seen of its next attempt. Terminal tasks and tasks with an open
    attempt are left alone; an unseen attempt is no attempt."""
    tasks = dict(state.tasks)
    for task_id, seen in found.items():
        task = tasks.get(task_id)
        if task is None or task_is_terminal(task.phase) or task.open_attempt is not None:
            continue
        if seen.progress == Progress.UNSEEN:
            continue
        number = len(task.attempts) + 1
        tasks[task_id] = TaskState(
            phase=TaskPhase.RUNNING,
            attempts=(*task.attempts, AttemptState(number, seen.started or now)),
            reason=ADOPTED,
            message=f"attempt {number} found running",
        )
    return replace(state, tasks=tasks)

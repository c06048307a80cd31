"""What a run worker keeps of each Task object and its attempts, and how it reads them
back from a Task's status after a restart."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kascade.api import TaskPhase
from kascade.engine.runstate import AttemptState, TaskState
from kascade.operator.facts import timestamp


@dataclass
class AttemptInfo:
    """What the worker knows of one attempt beyond the engine's AttemptState."""

    number: int
    job: str
    launched: float = field(default_factory=time.monotonic)
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    kill_reason: str | None = None


@dataclass
class TaskInfo:
    """A Task object of the run."""

    name: str
    uid: str
    spec: dict[str, Any]
    attempts: list[AttemptInfo] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def task_from_object(obj: dict[str, Any]) -> tuple[TaskInfo, TaskState]:
    """A Task object as the worker's TaskInfo and the engine's TaskState."""
    meta, spec, status = obj["metadata"], obj["spec"], obj.get("status") or {}
    infos: list[AttemptInfo] = []
    states: list[AttemptState] = []
    for attempt in status.get("attempts") or []:
        number = int(attempt["number"])
        infos.append(
            AttemptInfo(
                number,
                attempt.get("jobName") or "",
                launched=0.0,
                exit_code=attempt.get("exitCode"),
                reason=attempt.get("reason"),
                message=attempt.get("message"),
            )
        )
        states.append(
            AttemptState(
                number,
                timestamp(attempt.get("startTime")) or datetime.now(UTC),
                timestamp(attempt.get("endTime")),
                attempt.get("exitCode"),
                attempt.get("reason"),
            )
        )
    task = TaskInfo(meta["name"], meta["uid"], spec, infos, dict(status.get("outputs") or {}))
    phase = TaskPhase(status["phase"]) if status.get("phase") else TaskPhase.PENDING
    state = TaskState(
        phase=phase,
        attempts=tuple(states),
        retry_at=timestamp(status.get("nextRetryTime")),
        reason=status.get("reason"),
        message=status.get("message"),
    )
    return task, state

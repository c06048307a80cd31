"""The status the operator writes: Task status from the engine's task state and what the
worker knows of each attempt; Run status from the run state (counts, not task detail)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kascade.api import TaskPhase
from kascade.engine.plan import Plan
from kascade.engine.runstate import RunState, TaskState
from kascade.engine.statemachine import task_is_terminal
from kascade.operator.facts import rfc3339

if TYPE_CHECKING:
    from kascade.operator.taskobjects import AttemptInfo

_DONE = frozenset(
    {
        TaskPhase.SUCCEEDED,
        TaskPhase.REUSED,
        TaskPhase.SKIPPED,
        TaskPhase.FAILED,
        TaskPhase.UPSTREAM_FAILED,
        TaskPhase.ABORTED,
        TaskPhase.TIMED_OUT,
    }
)


def task_status(
    state: TaskState, infos: Sequence[AttemptInfo], outputs: dict[str, Any]
) -> dict[str, Any]:
    """The status of one Task object."""
    attempts = []
    for attempt, info in zip(state.attempts, infos, strict=False):
        entry: dict[str, Any] = {
            "number": attempt.number,
            "jobName": info.job,
            "startTime": rfc3339(attempt.started_at),
        }
        if attempt.ended_at is not None:
            entry["endTime"] = rfc3339(attempt.ended_at)
            entry["exitCode"] = attempt.exit_code
            entry["reason"] = attempt.reason
            if info.message:
                entry["message"] = info.message[:1024]
        attempts.append(entry)
    status: dict[str, Any] = {
        "phase": state.phase.value,
        "reason": state.reason,
        "message": _message(state, infos),
        "attempts": attempts,
        "attemptCount": len(attempts),
        "nextRetryTime": rfc3339(state.retry_at) if state.phase == TaskPhase.RETRYING else None,
        "startTime": rfc3339(state.attempts[0].started_at) if state.attempts else None,
        "completionTime": rfc3339(state.attempts[-1].ended_at)
        if state.attempts and task_is_terminal(state.phase)
        else None,
        "outputs": outputs or None,
    }
    return status


def _message(state: TaskState, infos: Sequence[AttemptInfo]) -> str | None:
    last = infos[-1] if infos else None
    failed = state.phase in (TaskPhase.FAILED, TaskPhase.RETRYING, TaskPhase.TIMED_OUT)
    if failed and last is not None and last.message and state.message:
        return f"{state.message}: {last.message}"[:1024]
    return state.message


def run_status(
    state: RunState,
    plan: Plan | None,
    history: Sequence[dict[str, Any]],
    parameters: dict[str, Any],
    settings: dict[str, Any],
    conditions: list[dict[str, Any]] | None,
    now: datetime,
) -> dict[str, Any]:
    """The status of the Run: phase, history, times, task counts and progress."""
    main = [t.id for t in plan.tasks] if plan else []
    counts = Counter(state.tasks[i].phase.value for i in main)
    done = sum(state.tasks[i].phase in _DONE for i in main)
    end = state.finished_at
    duration = None
    if state.started_at is not None:
        seconds = int(((end or now) - state.started_at).total_seconds())
        duration = _duration(seconds)
    status: dict[str, Any] = {
        "phase": state.phase.value if state.phase else None,
        "reason": state.reason,
        "message": state.message,
        "history": list(history),
        "startTime": rfc3339(state.started_at),
        "completionTime": rfc3339(end),
        "duration": duration if end is not None else None,
        "totalTasks": len(main),
        "taskCounts": dict(sorted(counts.items())),
        "progress": f"{done}/{len(main)}",
        "parameters": parameters or None,
        "settings": settings or None,
    }
    if conditions:
        status["conditions"] = conditions
    return status


def invalid_condition(message: str, when: datetime) -> dict[str, Any]:
    """The Valid=False condition of a run that cannot start."""
    return {
        "type": "Valid",
        "status": "False",
        "reason": "InvalidRun",
        "message": message[:1024],
        "lastTransitionTime": rfc3339(when),
    }


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

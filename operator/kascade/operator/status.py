"""The Run status the operator writes from a run's record: phase, history, times, task
counts and progress (counts and references, never task detail: a Run stays small)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kascade.api.run import RunSettings
from kascade.engine.progress import progress, task_counts
from kascade.host.records import RunRecord
from kascade.operator.facts import rfc3339


def settings_of(record: RunRecord, config_map: str | None) -> RunSettings:
    """The Flow settings the run took (and the project ConfigMap its tasks use)."""
    return RunSettings(
        max_parallel_tasks=record.max_parallel_tasks,
        fail_fast=record.fail_fast,
        timeout_seconds=record.timeout_seconds,
        project_config_map=config_map,
    )


def stored_settings(status: Mapping[str, Any]) -> RunSettings:
    """The settings a Run's status holds (the defaults when it was never planned)."""
    return RunSettings.model_validate(status.get("settings") or {"maxParallelTasks": 8})


def history_of(record: RunRecord) -> list[dict[str, Any]]:
    """The run's phase history as Run status shows it."""
    return [entry.model_dump(mode="json") for entry in record.history]


def run_status(
    record: RunRecord,
    config_map: str | None,
    conditions: list[dict[str, Any]] | None,
    now: datetime,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status of the Run (`history`: history_of(record), when the caller keeps it).
    taskCounts names every phase (zeros included), so a merge patch never leaves a stale
    count behind."""
    phases = [task.phase for task in record.main_tasks]
    end = record.finished_at
    duration = None
    if record.started_at is not None and end is not None:
        duration = format_duration(int((end - record.started_at).total_seconds()))
    status: dict[str, Any] = {
        "phase": record.phase.value if record.phase else None,
        "reason": record.reason,
        "message": record.message,
        "history": history if history is not None else history_of(record),
        "startTime": rfc3339(record.started_at),
        "completionTime": rfc3339(end),
        "duration": duration,
        "totalTasks": len(phases),
        "taskCounts": task_counts(phases),
        "progress": progress(phases),
        "parameters": record.parameters or None,
        "settings": settings_of(record, config_map).to_wire(),
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


def format_duration(seconds: int) -> str:
    """4m12s, 1h02m03s, 9s."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

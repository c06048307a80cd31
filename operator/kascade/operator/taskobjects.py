"""Task objects and the host's task records: a Task's spec is the record's plan entry and
settings, its status the record's phase, attempts and outputs. Reading one back after a
restart gives the same record the operator last wrote."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kascade.api import TaskPhase
from kascade.engine.naming import task_object_name
from kascade.engine.progress import MESSAGE_LIMIT
from kascade.engine.statemachine import task_is_terminal
from kascade.host.records import AttemptRecord, TaskRecord
from kascade.operator.facts import rfc3339, timestamp
from kascade.operator.labels import API_VERSION, PLAN_INDEX, TASK_ID, task_labels

# Task spec keys that are the plan entry (the rest are the task's settings).
_PLAN_KEYS = {
    "runRef",
    "id",
    "node",
    "type",
    "target",
    "dependsOn",
    "trigger",
    "retries",
    "retryDelaySeconds",
    "timeoutSeconds",
    "hook",
    "path",
}


@dataclass(frozen=True)
class TaskObject:
    """Which Task object holds a task (a Job's owner)."""

    name: str
    uid: str


def in_plan_order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task objects sorted by their place in the plan."""
    return sorted(
        objects,
        key=lambda t: int((t["metadata"].get("annotations") or {}).get(PLAN_INDEX, 0)),
    )


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether an object's owner references name the object with this uid."""
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def task_record_of(obj: dict[str, Any]) -> TaskRecord:
    """The record of a Task object (its spec and status)."""
    spec, status = obj["spec"], obj.get("status") or {}
    attempts = [
        AttemptRecord(
            number=int(attempt["number"]),
            start_time=timestamp(attempt.get("startTime")) or datetime.now(UTC),
            end_time=timestamp(attempt.get("endTime")),
            exit_code=attempt.get("exitCode"),
            reason=attempt.get("reason"),
            message=attempt.get("message"),
            job=attempt.get("jobName"),
        )
        for attempt in status.get("attempts") or []
    ]
    return TaskRecord(
        id=spec["id"],
        node=spec["node"],
        type=spec["type"],
        target=spec["target"],
        depends_on=list(spec.get("dependsOn") or []),
        trigger=spec.get("trigger") or "allSuccess",
        retries=int(spec.get("retries", 0)),
        retry_delay_seconds=int(spec.get("retryDelaySeconds", 30)),
        timeout_seconds=spec.get("timeoutSeconds"),
        hook=spec.get("hook"),
        path=spec.get("path"),
        settings={key: value for key, value in spec.items() if key not in _PLAN_KEYS},
        phase=status.get("phase") or TaskPhase.PENDING,
        reason=status.get("reason"),
        message=status.get("message"),
        retry_at=timestamp(status.get("nextRetryTime")),
        attempts=attempts,
        outputs=dict(status.get("outputs") or {}),
        reused_from=status.get("reusedFrom"),
    )


def task_body(
    task: TaskRecord, run: str, namespace: str, flow: str, owner: dict[str, Any], index: int
) -> dict[str, Any]:
    """The Task object of a task record of a run: its plan entry and settings."""
    spec: dict[str, Any] = {
        **task.settings,
        "runRef": {"name": run},
        "id": task.id,
        "node": task.node,
        "type": task.type.value,
        "target": task.target,
        "dependsOn": list(task.depends_on),
        "trigger": task.trigger.value,
        "retries": task.retries,
        "retryDelaySeconds": task.retry_delay_seconds,
    }
    for key, value in (
        ("timeoutSeconds", task.timeout_seconds),
        ("hook", task.hook),
        ("path", task.path),
    ):
        if value is not None:
            spec[key] = value
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": task_object_name(run, task.id),
            "namespace": namespace,
            "labels": task_labels(run, flow, task.id),
            "annotations": {TASK_ID: task.id, PLAN_INDEX: str(index)},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def task_status(task: TaskRecord) -> dict[str, Any]:
    """The status of a Task object, whole (every field, so a merge patch replaces it)."""
    attempts = []
    for attempt in task.attempts:
        entry: dict[str, Any] = {
            "number": attempt.number,
            "jobName": attempt.job,
            "startTime": rfc3339(attempt.start_time),
        }
        if attempt.end_time is not None:
            entry["endTime"] = rfc3339(attempt.end_time)
            entry["exitCode"] = attempt.exit_code
            entry["reason"] = attempt.reason
            if attempt.message:
                entry["message"] = attempt.message[:MESSAGE_LIMIT]
        attempts.append(entry)
    started = task.attempts[0].start_time if task.attempts else None
    ended = task.attempts[-1].end_time if task.attempts else None
    return {
        "phase": task.phase.value,
        "reason": task.reason,
        "message": task.message,
        "attempts": attempts,
        "attemptCount": len(attempts),
        "nextRetryTime": rfc3339(task.retry_at) if task.phase == TaskPhase.RETRYING else None,
        "startTime": rfc3339(started),
        "completionTime": rfc3339(ended) if task_is_terminal(task.phase) else None,
        "outputs": task.outputs or None,
        "reusedFrom": task.reused_from,
    }

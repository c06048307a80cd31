"""The record of a run: what both hosts keep of it and show (a local run's run.json, the
Run and Task statuses on a cluster), and how it maps to the engine's plan and state.

`sync_record` is the recording step of the host loop: it copies what the engine decided
into the record, with the same task messages, attempt entries and history everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from kascade.api import RunPhase, RunType, TaskPhase, TaskType, TriggerRule
from kascade.api.run import HISTORY_LIMIT
from kascade.engine.launch import RunIdentity
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.progress import task_message
from kascade.engine.runstate import AttemptState, Limits, RunState, SetRunPhase, TaskState
from kascade.engine.statemachine import TASK_SUCCESSFUL

RECORD_KIND = "LocalRun"


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class AttemptRecord(_Record):
    """One attempt of a task: one Job, one local process or one child run."""

    number: int
    start_time: datetime
    end_time: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    job: str | None = None
    """The Job, child Run or process key of the attempt."""
    log: str | None = None
    """Where a local attempt's output went."""


class TaskRecord(_Record):
    """A task of the run: what the plan says of it, its settings, and what happened."""

    id: str
    node: str
    type: TaskType
    target: str
    depends_on: list[str] = Field(default_factory=list)
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS
    retries: int = 0
    retry_delay_seconds: int = 30
    timeout_seconds: int | None = None
    hook: str | None = None
    path: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    phase: TaskPhase = TaskPhase.PENDING
    reason: str | None = None
    message: str | None = None
    retry_at: datetime | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    reused_from: str | None = None


class PhaseRecord(_Record):
    """One phase change of the run."""

    phase: RunPhase
    time: datetime
    reason: str | None = None
    message: str | None = None


class RunRecord(_Record):
    """Everything about one run; `kascade run -o json` prints it."""

    kind: str = RECORD_KIND
    id: str
    flow: str
    flow_file: str | None = None
    project: str | None = None
    warehouse: str | None = None
    type: RunType = RunType.MANUAL
    rerun_of: str | None = None
    rerun_task: str | None = None
    downstream: bool = False
    reruns: list[str] = Field(default_factory=list)
    lineage: list[str] = Field(default_factory=list)
    """The flows from the top-level run down to this one (empty: a top-level run)."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_parallel_tasks: int = 8
    fail_fast: bool = False
    timeout_seconds: int | None = None
    start_error: str | None = None
    phase: RunPhase | None = None
    reason: str | None = None
    message: str | None = None
    created_at: datetime
    scheduled_time: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    history: list[PhaseRecord] = Field(default_factory=list)
    tasks: list[TaskRecord] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data, camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)

    _index: dict[str, TaskRecord] = PrivateAttr(default_factory=dict)

    def task(self, task_id: str) -> TaskRecord:
        """One task by id (KeyError when the run has no such task)."""
        found = self._index.get(task_id)
        if found is None or len(self._index) != len(self.tasks):
            self._index = {task.id: task for task in self.tasks}
            found = self._index[task_id]
        return found

    @property
    def main_tasks(self) -> list[TaskRecord]:
        """The tasks that are not hooks (what counts and progress are about)."""
        return [task for task in self.tasks if task.hook is None]


# Fields a task record copies from its plan entry, and gives back to rebuild the plan.
_PLAN_FIELDS = (
    "id",
    "node",
    "type",
    "target",
    "trigger",
    "retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "hook",
    "path",
)


def task_record(
    task: PlannedTask, settings: Mapping[str, Any], phase: TaskPhase = TaskPhase.PENDING
) -> TaskRecord:
    """A record for a planned task and its settings."""
    fields = {name: getattr(task, name) for name in _PLAN_FIELDS}
    return TaskRecord(
        **fields, depends_on=list(task.depends_on), settings=dict(settings), phase=phase
    )


def unstarted(task: TaskRecord) -> TaskRecord:
    """The same task, not run yet: its plan entry and settings only (a rerun's copy)."""
    return TaskRecord(
        **{name: getattr(task, name) for name in _PLAN_FIELDS},
        depends_on=list(task.depends_on),
        settings=dict(task.settings),
    )


def planned_task(task: TaskRecord) -> PlannedTask:
    """The plan entry a task record was made from."""
    return PlannedTask(
        **{name: getattr(task, name) for name in _PLAN_FIELDS}, depends_on=tuple(task.depends_on)
    )


def plan_of(record: RunRecord) -> Plan:
    """The plan a record was made from, in the record's (plan) order."""
    return plan_of_tasks(record.flow, record.tasks)


def plan_of_tasks(flow: str, tasks: Sequence[TaskRecord]) -> Plan:
    """The plan of a flow's task records, in their (plan) order."""
    planned = [planned_task(t) for t in tasks]
    return Plan(
        flow=flow,
        tasks=tuple(t for t in planned if t.hook is None),
        hooks=tuple(t for t in planned if t.hook is not None),
    )


def state_of(record: RunRecord, *, abort_requested: bool = False) -> RunState:
    """The engine's view of a record."""
    return RunState(
        phase=record.phase,
        tasks={
            t.id: TaskState(
                phase=t.phase,
                attempts=tuple(
                    AttemptState(a.number, a.start_time, a.end_time, a.exit_code, a.reason)
                    for a in t.attempts
                ),
                retry_at=t.retry_at,
                reason=t.reason,
                message=t.message,
            )
            for t in record.tasks
        },
        started_at=record.started_at,
        finished_at=record.finished_at,
        scheduled_time=record.scheduled_time,
        abort_requested=abort_requested,
        start_error=record.start_error,
        reason=record.reason,
        message=record.message,
    )


def limits_of(record: RunRecord) -> Limits:
    """The run-wide limits the run took from its Flow."""
    return Limits(record.max_parallel_tasks, record.fail_fast, record.timeout_seconds)


def identity_of(record: RunRecord) -> RunIdentity:
    """What templates and the task contract know of the run."""
    return RunIdentity(
        name=record.id,
        flow=record.flow,
        type=record.type.value,
        scheduled_time=record.scheduled_time,
        created=record.created_at,
        lineage=tuple(record.lineage) or (record.flow,),
    )


def template_outputs(record: RunRecord, state: RunState) -> dict[str, dict[str, Any]]:
    """The outputs templates may read: those of tasks that succeeded (or were reused),
    by the engine's latest state (the record catches up after the decision)."""
    return {
        task.id: task.outputs
        for task in record.tasks
        if state.tasks[task.id].phase in TASK_SUCCESSFUL
    }


@dataclass(frozen=True)
class TaskChange:
    """A task entered a phase."""

    task: str
    phase: TaskPhase
    message: str | None


@dataclass
class Changes:
    """What one round of the loop changed: for the record's store to show and tell."""

    time: datetime
    tasks: list[TaskChange] = field(default_factory=list)
    updated: set[str] = field(default_factory=set)
    """Tasks whose record changed (phase, attempts, outputs)."""
    run: list[SetRunPhase] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tasks or self.updated or self.run)


def sync_record(
    record: RunRecord,
    state: RunState,
    now: datetime,
    run_changes: list[SetRunPhase],
    seen: dict[str, TaskState],
    touched: set[str],
) -> Changes:
    """Copy the engine's state into the record and every run phase change into its
    history (the last HISTORY_LIMIT kept). `seen` holds the task states already copied
    (only tasks whose state object changed, or that are `touched`, are looked at)."""
    changes = Changes(time=now, run=list(run_changes))
    for task in record.tasks:
        current = state.tasks[task.id]
        if seen.get(task.id) is current and task.id not in touched:
            continue
        seen[task.id] = current
        changes.updated.add(task.id)
        _copy_attempts(task, current)
        if current.phase == task.phase and current.retry_at == task.retry_at:
            continue
        task.phase, task.reason, task.retry_at = current.phase, current.reason, current.retry_at
        last = task.attempts[-1].message if task.attempts else None
        task.message = task_message(current.phase, current.message, last)
        changes.tasks.append(TaskChange(task.id, current.phase, task.message))
    for change in run_changes:
        record.history.append(
            PhaseRecord(phase=change.phase, time=now, reason=change.reason, message=change.message)
        )
    del record.history[:-HISTORY_LIMIT]
    record.phase, record.reason, record.message = state.phase, state.reason, state.message
    record.started_at, record.finished_at = state.started_at, state.finished_at
    return changes


def _copy_attempts(task: TaskRecord, state: TaskState) -> None:
    for index, attempt in enumerate(state.attempts):
        if index < len(task.attempts):
            entry = task.attempts[index]
            entry.end_time, entry.exit_code = attempt.ended_at, attempt.exit_code
            entry.reason = attempt.reason
        else:
            task.attempts.append(
                AttemptRecord(number=attempt.number, start_time=attempt.started_at)
            )

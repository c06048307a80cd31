"""The run record of a local run, as stored in <state-dir>/runs/<id>/run.json, and its
conversion to and from the engine's plan and run state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kascade.api import RunPhase, RunType, TaskPhase, TaskType, TriggerRule
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.runstate import AttemptState, RunState, TaskState

RECORD_KIND = "LocalRun"


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class AttemptRecord(_Record):
    """One attempt of a task: one local process."""

    number: int
    start_time: datetime
    end_time: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    log: str | None = None


class TaskRecord(_Record):
    """A task of the run: what the plan says of it and what happened to it."""

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
    """Everything about one local run; `kascade run -o json` prints it."""

    kind: str = RECORD_KIND
    id: str
    flow: str
    flow_file: str | None = None
    project: str
    warehouse: str
    type: RunType = RunType.MANUAL
    rerun_of: str | None = None
    rerun_task: str | None = None
    downstream: bool = False
    reruns: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    start_error: str | None = None
    phase: RunPhase | None = None
    reason: str | None = None
    message: str | None = None
    created_at: datetime
    scheduled_time: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    history: list[PhaseRecord] = Field(default_factory=list)
    flow_spec: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskRecord] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data, camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)

    def task(self, task_id: str) -> TaskRecord:
        """One task by id."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


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


def task_record(task: PlannedTask, phase: TaskPhase = TaskPhase.PENDING) -> TaskRecord:
    """A record for a planned task."""
    fields = {name: getattr(task, name) for name in _PLAN_FIELDS}
    return TaskRecord(**fields, depends_on=list(task.depends_on), phase=phase)


def plan_of(record: RunRecord) -> Plan:
    """The plan a record was made from."""
    planned = [
        PlannedTask(
            **{name: getattr(t, name) for name in _PLAN_FIELDS}, depends_on=tuple(t.depends_on)
        )
        for t in record.tasks
    ]
    return Plan(
        flow=record.flow,
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

"""The Task resource: one unit of work of a Run, holding its attempts (one Job each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from kascade.api.base import ApiModel, StatusModel
from kascade.api.enums import TaskPhase, TaskType, TriggerRule
from kascade.api.flow import TaskSettings
from kascade.api.meta import DNS_SUBDOMAIN, GENERATION_MAX, ObjectMeta
from kascade.api.warehouse import SecretKeyRef

OUTPUTS_MAX_BYTES = 4096
ATTEMPTS_MAX = 10_000
"""Attempts of one task: far above retries + 1, for attempts that were lost and redone."""
EXIT_CODE_MIN = -(2**31)
EXIT_CODE_MAX = 2**31 - 1
"""An int32, as in core/v1 (negative: a local process ended by a signal)."""


class RunRef(ApiModel):
    """The Run a Task belongs to."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253, description="Name of the Run.")


class TaskSpec(TaskSettings):
    """One task of a Run's plan, with its execution settings resolved from the Flow."""

    run_ref: RunRef = Field(description="The Run this task belongs to.")
    id: str = Field(min_length=1, max_length=253, description="Task id, unique in the run.")
    node: str = Field(min_length=1, description="The Flow node (or hook) that produced the task.")
    type: TaskType = Field(description="model, seed, snapshot, test, connector, script or flow.")
    target: str = Field(
        min_length=1,
        description="The resource (for a test task, the resource tested, or the test), "
        "connector, script or Flow name.",
    )
    depends_on: list[str] | None = Field(
        default=None, description="Ids of the tasks that must finish first."
    )
    trigger: TriggerRule = Field(
        default=TriggerRule.ALL_SUCCESS, description="When the task starts."
    )
    hook: str | None = Field(
        default=None, description="onSuccess, onFailure or onFinish when the task is a hook."
    )
    path: str | None = Field(
        default=None, description="The file of the resource (or of its tests) in the project."
    )
    args: list[str] | None = Field(
        default=None,
        description="Script arguments (templates are rendered at start); for a dbt task, "
        "the dbt selection of its resources.",
    )
    vars: dict[str, Any] | None = Field(
        default=None, description="dbt task: the Flow's dbt vars; templates are rendered at start."
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="Child run parameters of a flow task."
    )
    wait: bool | None = Field(default=None, description="Flow task: wait for the child run.")
    warehouse: str | None = Field(
        default=None,
        max_length=2048,
        description="The Flow's warehouse as the task receives it (a URL without password).",
    )
    warehouse_password: SecretKeyRef | None = Field(
        default=None, description="The Secret key the task's PGPASSWORD comes from."
    )
    warehouse_profiles: SecretKeyRef | None = Field(
        default=None, description="The Secret key of the dbt profiles.yml the pod mounts."
    )


class Attempt(StatusModel):
    """One attempt of a Task: one Job."""

    number: int = Field(ge=1, le=ATTEMPTS_MAX, description="1 for the first attempt.")
    job_name: str | None = Field(default=None, description="The Job of this attempt.")
    start_time: datetime | None = Field(default=None, description="When the attempt started.")
    end_time: datetime | None = Field(default=None, description="When the attempt ended.")
    exit_code: int | None = Field(
        default=None,
        ge=EXIT_CODE_MIN,
        le=EXIT_CODE_MAX,
        description="Exit code of the task container.",
    )
    reason: str | None = Field(
        default=None, description="Why it ended: Completed, Error, DeadlineExceeded, Aborted."
    )
    message: str | None = Field(default=None, description="Details, e.g. the last log lines.")


class TaskStatus(StatusModel):
    """The observed state of a Task."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        le=GENERATION_MAX,
        description="The .metadata.generation last processed.",
    )
    phase: TaskPhase | None = Field(default=None, description="Current phase.")
    reason: str | None = Field(default=None, description="Why the task is in its phase.")
    message: str | None = Field(default=None, description="Details of the current phase.")
    attempts: list[Attempt] | None = Field(default=None, description="Attempts, oldest first.")
    attempt_count: int | None = Field(
        default=None, ge=0, le=ATTEMPTS_MAX, description="Number of attempts."
    )
    next_retry_time: datetime | None = Field(
        default=None, description="When a RETRYING task starts its next attempt."
    )
    start_time: datetime | None = Field(default=None, description="When the first attempt began.")
    completion_time: datetime | None = Field(default=None, description="When the task ended.")
    outputs: dict[str, Any] | None = Field(
        default=None, description=f"Outputs the task published (JSON, max {OUTPUTS_MAX_BYTES} B)."
    )
    child_run: str | None = Field(default=None, description="The child Run of a flow task.")
    reused_from: str | None = Field(
        default=None, description="The Run whose result a REUSED task carries."
    )


class Task(ApiModel):
    """A kascade Task object."""

    api_version: str = Field(default="kascade.io/v1alpha1", description="kascade.io/v1alpha1")
    kind: str = Field(default="Task", description="Task")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: TaskSpec = Field(description="The task and its settings.")
    status: TaskStatus | None = Field(default=None, description="Observed state.")

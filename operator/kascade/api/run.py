"""The Run resource: one execution of a Flow, holding the run-level state machine."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictBool, WithJsonSchema, model_validator

from kascade.api.base import ApiModel, StatusModel
from kascade.api.enums import RERUN_TYPES, RunPhase, RunType
from kascade.api.flow import MAX_PARALLEL_TASKS_MAX, RUN_TIMEOUT_SECONDS_MAX, TASK_COUNT_MAX
from kascade.api.markers import cel, immutable_fields
from kascade.api.meta import DNS_SUBDOMAIN, GENERATION_MAX, Condition, ObjectMeta

HISTORY_LIMIT = 50
LINEAGE_MAX = 101
"""Flows in a run's ancestry the status can hold (the deepest nesting allowed, plus one)."""
TaskCount = Annotated[int, Field(ge=0, le=TASK_COUNT_MAX)]
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Timestamp = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": RFC3339,
            **cel(
                (
                    "timestamp(self) >= timestamp('0001-01-01T00:00:00Z')",
                    "must be an RFC 3339 time such as 2026-12-01T02:00:00Z",
                )
            ),
        }
    ),
]
"""A time in a spec written by users. Not `format: date-time`: the API server skips the
type check of a date-time field, and stores `[]` or `[1]` there (after which no status
write of the object passes validation); a pattern on a string it checks."""


_RERUN_TYPE_LIST = "[" + ", ".join(f"'{t.value}'" for t in sorted(RERUN_TYPES)) + "]"
_IMMUTABLE = [
    "flowRef",
    "type",
    "parameters",
    "scheduledTime",
    "rerunOf",
    "rerunTask",
    "downstream",
    "parent",
]
"""Every field of a Run's spec but `abort`."""
_RUN_SPEC_RULES = cel(
    *immutable_fields(_IMMUTABLE, "spec.abort"),
    (
        f"(self.type in {_RERUN_TYPE_LIST}) == has(self.rerunOf)",
        "rerunOf is required by the RERUN_* types and allowed only there",
    ),
    (
        "(self.type == 'RERUN_TASK') == has(self.rerunTask)",
        "rerunTask is required by type RERUN_TASK and allowed only there",
    ),
    (
        "!self.downstream || self.type == 'RERUN_TASK'",
        "downstream is allowed only with type RERUN_TASK",
    ),
    (
        "(self.type == 'SUBFLOW') == has(self.parent)",
        "parent is required by type SUBFLOW and allowed only there",
    ),
)


class FlowRef(ApiModel):
    """A reference to the Flow a Run executes, in the Run's namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253, description="Name of the Flow.")


class ParentRef(ApiModel):
    """The parent run and task of a SUBFLOW run."""

    run: str = Field(pattern=DNS_SUBDOMAIN, max_length=253, description="Parent Run name.")
    task: str = Field(min_length=1, max_length=253, description="Id of the parent's flow task.")


class RunSpec(ApiModel):
    """What to run: the Flow, why, with which parameters, and whether to abort."""

    model_config = ConfigDict(json_schema_extra=_RUN_SPEC_RULES)

    flow_ref: FlowRef = Field(description="The Flow to run.")
    type: RunType = Field(
        default=RunType.MANUAL,
        description="ORCHESTRATED, MANUAL, RERUN_ALL, RERUN_FAILED, RERUN_TASK or SUBFLOW.",
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Parameter values by name; checked against the Flow's typed parameters.",
    )
    scheduled_time: Timestamp | None = Field(
        default=None,
        description="The run stays SCHEDULED until this time (RFC 3339, e.g. "
        "2026-12-01T02:00:00Z); unset means start now.",
    )
    rerun_of: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=253,
        description="The original Run of a rerun.",
    )
    rerun_task: str | None = Field(
        default=None,
        min_length=1,
        description="The task id a RERUN_TASK reruns.",
    )
    downstream: StrictBool = Field(
        default=False, description="RERUN_TASK also reruns the task's descendants."
    )
    parent: ParentRef | None = Field(
        default=None, description="The parent run and task of a SUBFLOW run."
    )
    abort: StrictBool = Field(
        default=False,
        description="Set true to abort the run; cannot be set back.",
        json_schema_extra=cel(("self || !oldSelf", "abort cannot be withdrawn")),
    )

    @model_validator(mode="after")
    def _type_fields_agree(self) -> RunSpec:
        is_rerun = self.type in RERUN_TYPES
        if is_rerun != (self.rerun_of is not None):
            raise ValueError("rerunOf is required by the RERUN_* types and allowed only there")
        if (self.type == RunType.RERUN_TASK) != (self.rerun_task is not None):
            raise ValueError("rerunTask is required by type RERUN_TASK and allowed only there")
        if self.downstream and self.type != RunType.RERUN_TASK:
            raise ValueError("downstream is allowed only with type RERUN_TASK")
        if (self.type == RunType.SUBFLOW) != (self.parent is not None):
            raise ValueError("parent is required by type SUBFLOW and allowed only there")
        return self


class PhaseChange(StatusModel):
    """One entry of a Run's phase history."""

    phase: RunPhase = Field(description="The phase entered.")
    time: datetime = Field(description="When it was entered.")
    reason: str | None = Field(default=None, description="One CamelCase word: why.")
    message: str | None = Field(default=None, description="Human-readable details.")


class RunSettings(StatusModel):
    """The Flow settings a run took when it was admitted (later Flow edits do not change it)."""

    max_parallel_tasks: int = Field(
        ge=1, le=MAX_PARALLEL_TASKS_MAX, description="Most tasks running at the same time."
    )
    fail_fast: bool = Field(default=False, description="Stop at the first task failure.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=RUN_TIMEOUT_SECONDS_MAX, description="Whole-run deadline."
    )
    project_config_map: str | None = Field(
        default=None, description="The ConfigMap the run's tasks take the project from."
    )


class RunStatus(StatusModel):
    """The observed state of a Run: phase, history, task counts, related runs."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        le=GENERATION_MAX,
        description="The .metadata.generation last processed.",
    )
    phase: RunPhase | None = Field(default=None, description="Current phase.")
    reason: str | None = Field(default=None, description="Why the run is in its phase.")
    message: str | None = Field(default=None, description="Details of the current phase.")
    history: list[PhaseChange] | None = Field(
        default=None,
        max_length=HISTORY_LIMIT,
        description=f"Phase changes, oldest first; the last {HISTORY_LIMIT} are kept.",
    )
    conditions: list[Condition] | None = Field(default=None, description="Standard conditions.")
    start_time: datetime | None = Field(default=None, description="When the run started.")
    completion_time: datetime | None = Field(default=None, description="When the run ended.")
    duration: str | None = Field(default=None, description="Run time, e.g. 4m12s.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="The parameter values in effect, defaults applied."
    )
    settings: RunSettings | None = Field(
        default=None, description="The Flow settings the run took when it was planned."
    )
    total_tasks: int | None = Field(
        default=None, ge=0, le=TASK_COUNT_MAX, description="Tasks in the run's plan."
    )
    task_counts: dict[str, TaskCount] | None = Field(
        default=None, description="Number of tasks in each task phase."
    )
    progress: str | None = Field(default=None, description="Finished tasks / all tasks, e.g. 3/10.")
    reruns: list[str] | None = Field(default=None, description="Runs that rerun this one.")
    children: list[str] | None = Field(default=None, description="Child runs of flow tasks.")
    lineage: list[str] | None = Field(
        default=None,
        max_length=LINEAGE_MAX,
        description="The flows of the run's ancestry, from the top-level run's flow to this "
        "run's own: a child flow that would start a flow already in it fails.",
    )


class Run(ApiModel):
    """A kascade Run object."""

    api_version: str = Field(default="kascade.io/v1alpha1", description="kascade.io/v1alpha1")
    kind: str = Field(default="Run", description="Run")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: RunSpec = Field(description="What to run.")
    status: RunStatus | None = Field(default=None, description="Observed state.")

"""The enumerations of the API: run and task phases, run types, task types, trigger rules."""

from __future__ import annotations

from enum import StrEnum


class RunPhase(StrEnum):
    """The phase of a Run (its state machine lives in kascade.engine.statemachine)."""

    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDING = "SUCCEEDING"
    SUCCEEDED = "SUCCEEDED"
    FAILING = "FAILING"
    FAILED = "FAILED"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"


class TaskPhase(StrEnum):
    """The phase of a Task (its state machine lives in kascade.engine.statemachine)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    SKIPPED = "SKIPPED"
    REUSED = "REUSED"
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"


class RunType(StrEnum):
    """Why a Run exists."""

    ORCHESTRATED = "ORCHESTRATED"
    MANUAL = "MANUAL"
    RERUN_ALL = "RERUN_ALL"
    RERUN_FAILED = "RERUN_FAILED"
    RERUN_TASK = "RERUN_TASK"
    SUBFLOW = "SUBFLOW"


RERUN_TYPES = frozenset({RunType.RERUN_ALL, RunType.RERUN_FAILED, RunType.RERUN_TASK})


class TaskType(StrEnum):
    """What a Task executes."""

    MODEL = "model"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    TEST = "test"
    CONNECTOR = "connector"
    SCRIPT = "script"
    FLOW = "flow"


class TriggerRule(StrEnum):
    """When a task starts, judged once all of its upstream tasks have finished."""

    ALL_SUCCESS = "allSuccess"
    ALL_DONE = "allDone"
    ONE_FAILED = "oneFailed"
    ALL_FAILED = "allFailed"
    NONE_FAILED = "noneFailed"


class ConcurrencyPolicy(StrEnum):
    """What a schedule does when its previous run is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class Frequency(StrEnum):
    """The unit of a basic-mode schedule."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ParameterType(StrEnum):
    """The type a Flow parameter's value must have."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"

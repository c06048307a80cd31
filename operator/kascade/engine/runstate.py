"""The facts of a run as plain data, the actions a decision returns, and how they apply.

The local runner and the operator both keep a RunState (in memory, or rebuilt from the
Run, Task and Job objects), call `decide`, carry out the actions, and record what they
observe (an attempt ended) with `record_attempt_end`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from kascade.api import FlowSpec, RunPhase, TaskPhase
from kascade.engine.plan import Plan
from kascade.engine.statemachine import (
    check_run_transition,
    check_task_transition,
    run_is_terminal,
)

# Why an attempt was stopped by kascade rather than ending by itself.
KILL_DEADLINE = "DeadlineExceeded"
KILL_ABORT = "Aborted"
KILL_FAIL_FAST = "FailFast"
KILL_RUN_ENDED = "RunEnded"
KILL_REASONS = frozenset({KILL_DEADLINE, KILL_ABORT, KILL_FAIL_FAST, KILL_RUN_ENDED})


@dataclass(frozen=True)
class AttemptState:
    """One attempt of a task (one Job, or one local process)."""

    number: int
    started_at: datetime
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the attempt has ended."""
        return self.ended_at is not None

    @property
    def succeeded(self) -> bool:
        """Ended by itself with exit code 0."""
        return self.finished and self.exit_code == 0 and self.reason not in KILL_REASONS


@dataclass(frozen=True)
class TaskState:
    """A task's phase, its attempts and when its next attempt may start."""

    phase: TaskPhase = TaskPhase.PENDING
    attempts: tuple[AttemptState, ...] = ()
    retry_at: datetime | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def open_attempt(self) -> AttemptState | None:
        """The attempt still running, if any."""
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and not last.finished else None


@dataclass(frozen=True)
class RunState:
    """Everything the decision function knows of one run."""

    phase: RunPhase | None
    tasks: Mapping[str, TaskState]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scheduled_time: datetime | None = None
    abort_requested: bool = False
    admitted: bool = True
    start_error: str | None = None
    reason: str | None = None
    message: str | None = None

    @classmethod
    def initial(
        cls,
        plan: Plan,
        *,
        scheduled_time: datetime | None = None,
        reused: Iterable[str] = (),
    ) -> RunState:
        """A new run of a plan: every task PENDING, except the ones a rerun reuses."""
        reused_ids = set(reused)
        tasks = {
            task_id: TaskState(TaskPhase.REUSED if task_id in reused_ids else TaskPhase.PENDING)
            for task_id in plan.by_id
        }
        return cls(phase=None, tasks=tasks, scheduled_time=scheduled_time)


@dataclass(frozen=True)
class Limits:
    """The run-wide limits of a Flow."""

    max_parallel_tasks: int = 8
    fail_fast: bool = False
    timeout_seconds: int | None = None

    @classmethod
    def of(cls, spec: FlowSpec) -> Limits:
        """The limits a Flow spec sets."""
        return cls(spec.max_parallel_tasks, spec.fail_fast, spec.timeout_seconds)


@dataclass(frozen=True)
class SetRunPhase:
    """Move the run to a phase."""

    phase: RunPhase
    reason: str
    message: str = ""


@dataclass(frozen=True)
class SetTaskPhase:
    """Move a task to a phase (not RUNNING: that is StartTask)."""

    task: str
    phase: TaskPhase
    reason: str
    message: str = ""
    retry_at: datetime | None = None


@dataclass(frozen=True)
class StartTask:
    """Start attempt `attempt` of a task (create its Job, or spawn its process)."""

    task: str
    attempt: int


@dataclass(frozen=True)
class KillTask:
    """Stop the running attempt of a task (delete its Job, or kill its process)."""

    task: str
    reason: str


Action = SetRunPhase | SetTaskPhase | StartTask | KillTask


@dataclass(frozen=True)
class Decision:
    """What to do now, the state once it is done, and when to look again at the latest."""

    actions: tuple[Action, ...]
    state: RunState
    wake_at: datetime | None = None


def apply(state: RunState, actions: Iterable[Action], now: datetime) -> RunState:
    """The state after the actions; illegal transitions raise TransitionError."""
    tasks: dict[str, TaskState] | None = None
    for action in actions:
        if isinstance(action, SetRunPhase):
            state = _apply_run_phase(state, action, now)
        elif isinstance(action, SetTaskPhase | StartTask):
            tasks = dict(state.tasks) if tasks is None else tasks
            tasks[action.task] = _apply_task_action(tasks[action.task], action, now)
    return state if tasks is None else replace(state, tasks=tasks)


def _apply_run_phase(state: RunState, action: SetRunPhase, now: datetime) -> RunState:
    check_run_transition(state.phase, action.phase)
    started = state.started_at
    if action.phase == RunPhase.RUNNING and started is None:
        started = now
    finished = now if run_is_terminal(action.phase) else state.finished_at
    return replace(
        state,
        phase=action.phase,
        started_at=started,
        finished_at=finished,
        reason=action.reason,
        message=action.message,
    )


def _apply_task_action(
    task: TaskState, action: SetTaskPhase | StartTask, now: datetime
) -> TaskState:
    if isinstance(action, StartTask):
        check_task_transition(task.phase, TaskPhase.RUNNING)
        attempt = AttemptState(number=action.attempt, started_at=now)
        return replace(
            task,
            phase=TaskPhase.RUNNING,
            attempts=(*task.attempts, attempt),
            retry_at=None,
            reason="Started",
            message=f"attempt {action.attempt}",
        )
    check_task_transition(task.phase, action.phase)
    return replace(
        task,
        phase=action.phase,
        retry_at=action.retry_at,
        reason=action.reason,
        message=action.message,
    )


def record_attempt_end(
    state: RunState,
    task_id: str,
    *,
    exit_code: int | None,
    reason: str,
    now: datetime,
) -> RunState:
    """The state once the open attempt of a task has ended (observed by the caller)."""
    task = state.tasks[task_id]
    attempt = task.open_attempt
    if attempt is None:
        return state
    ended = replace(attempt, ended_at=now, exit_code=exit_code, reason=reason)
    tasks = dict(state.tasks)
    tasks[task_id] = replace(task, attempts=(*task.attempts[:-1], ended))
    return replace(state, tasks=tasks)


def request_abort(state: RunState) -> RunState:
    """The state once a user asked to abort the run."""
    return replace(state, abort_requested=True)

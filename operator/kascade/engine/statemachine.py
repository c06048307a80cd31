"""The Run and Task state machines: every allowed transition, in one table each.

A transition not in its table is a bug in kascade and raises TransitionError; terminal
phases have no way out. `None` is the phase of an object nothing has decided on yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from kascade.api import RunPhase, TaskPhase
from kascade.engine.errors import TransitionError

R = RunPhase
T = TaskPhase

RUN_TRANSITIONS: Mapping[RunPhase | None, frozenset[RunPhase]] = {
    None: frozenset({R.SCHEDULED, R.QUEUED}),
    R.SCHEDULED: frozenset({R.QUEUED, R.ABORTED}),
    R.QUEUED: frozenset({R.RUNNING, R.FAILED, R.ABORTED}),
    R.RUNNING: frozenset({R.SUCCEEDING, R.FAILING, R.ABORTING, R.TIMED_OUT}),
    R.SUCCEEDING: frozenset({R.SUCCEEDED, R.FAILED, R.ABORTING, R.TIMED_OUT}),
    R.FAILING: frozenset({R.FAILED, R.ABORTING, R.TIMED_OUT}),
    R.ABORTING: frozenset({R.ABORTED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
    R.ABORTED: frozenset(),
    R.TIMED_OUT: frozenset(),
}

TASK_TRANSITIONS: Mapping[TaskPhase | None, frozenset[TaskPhase]] = {
    None: frozenset({T.PENDING, T.REUSED}),
    T.PENDING: frozenset({T.QUEUED, T.RUNNING, T.UPSTREAM_FAILED, T.SKIPPED, T.ABORTED}),
    T.QUEUED: frozenset({T.RUNNING, T.ABORTED}),
    T.RUNNING: frozenset({T.SUCCEEDED, T.FAILED, T.RETRYING, T.ABORTED, T.TIMED_OUT}),
    T.RETRYING: frozenset({T.QUEUED, T.RUNNING, T.ABORTED}),
    T.SUCCEEDED: frozenset(),
    T.FAILED: frozenset(),
    T.UPSTREAM_FAILED: frozenset(),
    T.SKIPPED: frozenset(),
    T.REUSED: frozenset(),
    T.ABORTED: frozenset(),
    T.TIMED_OUT: frozenset(),
}

RUN_TERMINAL = frozenset(phase for phase, out in RUN_TRANSITIONS.items() if phase and not out)
# Not started yet: a run in these phases waits for its time or for admission.
RUN_WAITING: frozenset[RunPhase | None] = frozenset({None, R.SCHEDULED, R.QUEUED})
TASK_TERMINAL = frozenset(phase for phase, out in TASK_TRANSITIONS.items() if phase and not out)

# How a finished upstream task counts for trigger rules and for the run's outcome.
TASK_SUCCESSFUL = frozenset({T.SUCCEEDED, T.REUSED})
TASK_UNSUCCESSFUL = frozenset({T.FAILED, T.UPSTREAM_FAILED, T.TIMED_OUT, T.ABORTED})


def check_run_transition(old: RunPhase | None, new: RunPhase) -> None:
    """Raise TransitionError unless a Run may go from `old` to `new`."""
    if new not in RUN_TRANSITIONS[old]:
        raise TransitionError(f"illegal Run transition {old or '(new)'} -> {new}")


def check_task_transition(old: TaskPhase | None, new: TaskPhase) -> None:
    """Raise TransitionError unless a Task may go from `old` to `new`."""
    if new not in TASK_TRANSITIONS[old]:
        raise TransitionError(f"illegal Task transition {old or '(new)'} -> {new}")


def run_is_terminal(phase: RunPhase | None) -> bool:
    """SUCCEEDED, FAILED, ABORTED and TIMED_OUT never change again."""
    return phase in RUN_TERMINAL


def task_is_terminal(phase: TaskPhase | None) -> bool:
    """A task in a terminal phase never changes again."""
    return phase in TASK_TERMINAL

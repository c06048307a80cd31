"""How a run's tasks are summed up for people: counts by phase, progress "done/total",
and the message a task shows. One rule for the cluster and local runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from kascade.api import TaskPhase
from kascade.engine.statemachine import TASK_TERMINAL

MESSAGE_LIMIT = 1024
# A task that ended badly shows why: the decision's words and the attempt's own message.
_EXPLAINED = frozenset({TaskPhase.FAILED, TaskPhase.RETRYING, TaskPhase.TIMED_OUT})


def task_counts(phases: Iterable[TaskPhase]) -> dict[str, int]:
    """The number of tasks in every phase, zeros included: the counts always add up to
    the number of tasks, and a phase a run has left shows 0 rather than a stale count."""
    counted = Counter(phases)
    return {phase.value: counted.get(phase, 0) for phase in TaskPhase}


def progress(phases: Iterable[TaskPhase]) -> str:
    """`done/total`, where done counts every finished task, whatever its outcome (as the
    phase says whether the run succeeded)."""
    listed = list(phases)
    done = sum(phase in TASK_TERMINAL for phase in listed)
    return f"{done}/{len(listed)}"


def task_message(phase: TaskPhase, decided: str | None, attempt_message: str | None) -> str | None:
    """The message of a task: the decision's words, and for a failed, retrying or timed
    out task the last attempt's own message after them."""
    if phase in _EXPLAINED and decided and attempt_message:
        return f"{decided}: {attempt_message}"[:MESSAGE_LIMIT]
    return decided[:MESSAGE_LIMIT] if decided else decided

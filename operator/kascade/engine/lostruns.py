"""A run whose host died (the local runner was killed) cannot continue: its open
attempts end, every unfinished task is ABORTED, and the run ends ABORTED, all with the
reason RunnerLost, through legal transitions only."""

from __future__ import annotations

from datetime import datetime

from kascade.api import RunPhase, TaskPhase
from kascade.engine.runstate import (
    Action,
    Decision,
    RunState,
    SetRunPhase,
    SetTaskPhase,
    apply,
    record_attempt_end,
)
from kascade.engine.statemachine import run_is_terminal, task_is_terminal

RUNNER_LOST = "RunnerLost"
_ACTIVE = frozenset({RunPhase.RUNNING, RunPhase.SUCCEEDING, RunPhase.FAILING})


def end_lost_run(state: RunState, now: datetime, message: str) -> Decision:
    """The run's end once its host is known to be gone; a finished run is left as is."""
    if run_is_terminal(state.phase):
        return Decision(actions=(), state=state)
    for task_id, task in state.tasks.items():
        if task.open_attempt is not None:
            state = record_attempt_end(state, task_id, exit_code=None, reason=RUNNER_LOST, now=now)
    actions: list[Action] = [
        SetTaskPhase(task_id, TaskPhase.ABORTED, RUNNER_LOST, message)
        for task_id, task in state.tasks.items()
        if not task_is_terminal(task.phase)
    ]
    if state.phase is None:
        actions.append(SetRunPhase(RunPhase.QUEUED, RUNNER_LOST, message))
    elif state.phase in _ACTIVE:
        actions.append(SetRunPhase(RunPhase.ABORTING, RUNNER_LOST, message))
    actions.append(SetRunPhase(RunPhase.ABORTED, RUNNER_LOST, message))
    return Decision(actions=tuple(actions), state=apply(state, actions, now))

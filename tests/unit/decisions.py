"""A driver for the decision function in tests: a run, a clock, and observed outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from kascade.api import RunPhase, TaskPhase, TaskType, TriggerRule
from kascade.engine.decide import decide
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.runstate import (
    Action,
    Decision,
    KillTask,
    Limits,
    RunState,
    SetRunPhase,
    StartTask,
    record_attempt_end,
    request_abort,
)

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def task(
    task_id: str,
    *deps: str,
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS,
    retries: int = 0,
    delay: int = 30,
    timeout: int | None = None,
    hook: str | None = None,
) -> PlannedTask:
    return PlannedTask(
        id=task_id,
        node=task_id,
        type=TaskType.SCRIPT,
        target=task_id,
        depends_on=deps,
        trigger=trigger,
        retries=retries,
        retry_delay_seconds=delay,
        timeout_seconds=timeout,
        hook=hook,
    )


def plan_of(*tasks: PlannedTask) -> Plan:
    return Plan(
        flow="f",
        tasks=tuple(t for t in tasks if t.hook is None),
        hooks=tuple(t for t in tasks if t.hook is not None),
    )


@dataclass
class Sim:
    """One run under test: decide, observe, advance the clock."""

    plan: Plan
    limits: Limits = field(default_factory=Limits)
    now: datetime = T0
    state: RunState | None = None
    last: Decision | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = RunState.initial(self.plan)

    def decide(self) -> list[Action]:
        assert self.state is not None
        self.last = decide(self.plan, self.state, self.limits, self.now)
        self.state = self.last.state
        return list(self.last.actions)

    def finish(self, task_id: str, exit_code: int = 0, reason: str | None = None) -> None:
        assert self.state is not None
        default = "Completed" if exit_code == 0 else "Error"
        self.state = record_attempt_end(
            self.state, task_id, exit_code=exit_code, reason=reason or default, now=self.now
        )

    def kill(self, actions: Sequence[Action]) -> None:
        """Carry out the kills of a decision, as a runner would."""
        for action in actions:
            if isinstance(action, KillTask):
                self.finish(action.task, exit_code=137, reason=action.reason)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def abort(self) -> None:
        assert self.state is not None
        self.state = request_abort(self.state)

    def admit(self, admitted: bool) -> None:
        assert self.state is not None
        self.state = replace(self.state, admitted=admitted)

    @property
    def phase(self) -> RunPhase | None:
        assert self.state is not None
        return self.state.phase

    def phases(self) -> dict[str, TaskPhase]:
        assert self.state is not None
        return {task_id: t.phase for task_id, t in self.state.tasks.items()}


def started(actions: Sequence[Action]) -> list[str]:
    return [a.task for a in actions if isinstance(a, StartTask)]


def run_phases(actions: Sequence[Action]) -> list[RunPhase]:
    return [a.phase for a in actions if isinstance(a, SetRunPhase)]


def kills(actions: Sequence[Action]) -> list[tuple[str, str]]:
    return [(a.task, a.reason) for a in actions if isinstance(a, KillTask)]

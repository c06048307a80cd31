"""The decision function: given a plan, what a run looks like now, its limits and the time,
which actions to take. The local runner and the operator both drive this one function.

`decide` is pure and level-triggered: it reads only its arguments, and calling it again on
the state it returns yields no further phase changes until something is observed (an
attempt ends) or time passes (`wake_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from kascade.api import RunPhase, TaskPhase
from kascade.engine.errors import TransitionError
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.runstate import (
    KILL_ABORT,
    KILL_DEADLINE,
    KILL_FAIL_FAST,
    KILL_RUN_ENDED,
    Action,
    Decision,
    KillTask,
    Limits,
    RunState,
    SetRunPhase,
    SetTaskPhase,
    StartTask,
    TaskState,
    apply,
)
from kascade.engine.statemachine import (
    TASK_TERMINAL,
    TASK_UNSUCCESSFUL,
    run_is_terminal,
    task_is_terminal,
)
from kascade.engine.triggers import Outcome, trigger_outcome

R = RunPhase
T = TaskPhase
_MAX_STEPS = 32
_NOT_STARTED = frozenset({T.PENDING, T.QUEUED, T.RETRYING})
_TERMINAL_FAILURES = frozenset({T.FAILED, T.TIMED_OUT, T.ABORTED})
SUCCESS_EVENTS = ("onSuccess", "onFinish")
FAILURE_EVENTS = ("onFailure", "onFinish")


def decide(plan: Plan, state: RunState, limits: Limits, now: datetime) -> Decision:
    """The actions to take now, the state after them, and when to decide again at the latest."""
    actions: list[Action] = []
    for _ in range(_MAX_STEPS):
        step = _step(plan, state, limits, now)
        if not step:
            break
        state = apply(state, step, now)
        actions += step
    else:  # pragma: no cover - every step changes a phase, so this would be a bug
        raise TransitionError(f"run did not settle after {_MAX_STEPS} steps")
    actions += _kills(plan, state, limits, now)
    return Decision(actions=tuple(actions), state=state, wake_at=_wake_at(plan, state, limits))


def _step(plan: Plan, state: RunState, limits: Limits, now: datetime) -> list[Action]:
    phase = state.phase
    if phase is None:
        if state.scheduled_time is not None and state.scheduled_time > now:
            return [SetRunPhase(R.SCHEDULED, "Scheduled", f"waits until {state.scheduled_time}")]
        return [SetRunPhase(R.QUEUED, "Created", "waiting for admission")]
    if run_is_terminal(phase):
        return []
    if phase in (R.SCHEDULED, R.QUEUED):
        return _step_waiting(state, now)
    if phase == R.ABORTING:
        return _step_aborting(state)
    if state.abort_requested:
        return [
            *_end_not_started(state, T.ABORTED, "Aborted"),
            SetRunPhase(R.ABORTING, "AbortRequested", "running tasks are being stopped"),
        ]
    if _run_deadline_passed(state, limits, now):
        return [
            *_time_out_tasks(state),
            SetRunPhase(
                R.TIMED_OUT,
                "DeadlineExceeded",
                f"the run deadline of {limits.timeout_seconds}s passed",
            ),
        ]
    return _step_active(plan, state, limits, now)


def _step_waiting(state: RunState, now: datetime) -> list[Action]:
    if state.abort_requested:
        return [
            *_end_not_started(state, T.ABORTED, "Aborted"),
            SetRunPhase(R.ABORTED, "Aborted", "aborted before it started"),
        ]
    if state.phase == R.SCHEDULED:
        if state.scheduled_time is None or state.scheduled_time <= now:
            return [SetRunPhase(R.QUEUED, "ScheduledTimeReached", "waiting for admission")]
        return []
    if state.start_error is not None:
        return [
            *_end_not_started(state, T.ABORTED, "RunFailed"),
            SetRunPhase(R.FAILED, "InvalidRun", state.start_error),
        ]
    if state.admitted:
        return [SetRunPhase(R.RUNNING, "Started", "tasks are started in dependency order")]
    return []


def _step_aborting(state: RunState) -> list[Action]:
    actions: list[Action] = list(_end_not_started(state, T.ABORTED, "Aborted"))
    still_running = False
    for task_id, task in state.tasks.items():
        if task.phase != T.RUNNING:
            continue
        last = task.attempts[-1] if task.attempts else None
        if last is None or last.finished:
            succeeded = last is not None and last.succeeded
            actions.append(
                SetTaskPhase(
                    task_id,
                    T.SUCCEEDED if succeeded else T.ABORTED,
                    "Completed" if succeeded else "Aborted",
                    "the run was aborted",
                )
            )
        else:
            still_running = True
    if not still_running:
        actions.append(SetRunPhase(R.ABORTED, "Aborted", "every task has stopped"))
    return actions


def _end_not_started(state: RunState, phase: TaskPhase, reason: str) -> list[Action]:
    return [
        SetTaskPhase(task_id, phase, reason)
        for task_id, task in state.tasks.items()
        if task.phase in _NOT_STARTED
    ]


def _run_deadline_passed(state: RunState, limits: Limits, now: datetime) -> bool:
    return (
        limits.timeout_seconds is not None
        and state.started_at is not None
        and now >= state.started_at + timedelta(seconds=limits.timeout_seconds)
    )


def _time_out_tasks(state: RunState) -> list[Action]:
    actions: list[Action] = list(_end_not_started(state, T.ABORTED, "RunTimedOut"))
    actions += [
        SetTaskPhase(task_id, T.TIMED_OUT, "RunTimedOut", "the run deadline passed")
        for task_id, task in state.tasks.items()
        if task.phase == T.RUNNING
    ]
    return actions


@dataclass
class _Step:
    """One pass over the tasks of an active run: phases as they change during the pass."""

    plan: Plan
    state: RunState
    limits: Limits
    now: datetime
    phases: dict[str, TaskPhase]
    actions: list[Action]

    def set(
        self,
        task: PlannedTask,
        phase: TaskPhase,
        reason: str,
        message: str = "",
        retry_at: datetime | None = None,
    ) -> None:
        self.phases[task.id] = phase
        self.actions.append(SetTaskPhase(task.id, phase, reason, message, retry_at))


def _step_active(plan: Plan, state: RunState, limits: Limits, now: datetime) -> list[Action]:
    step = _Step(plan, state, limits, now, {i: t.phase for i, t in state.tasks.items()}, [])
    main_done = all(task_is_terminal(step.phases[t.id]) for t in plan.tasks)
    if state.phase == R.SUCCEEDING:
        active = _hooks_of(plan, SUCCESS_EVENTS)
    elif state.phase == R.FAILING and main_done:
        active = _hooks_of(plan, FAILURE_EVENTS)
    else:
        active = plan.tasks
    stopping = state.phase == R.FAILING and limits.fail_fast and not main_done
    ready = _advance(step, active, stopping)
    if stopping:
        for task in ready:
            step.set(task, T.ABORTED, "FailFast", "the run stops at its first failure")
    elif not (limits.fail_fast and state.phase == R.RUNNING and _first_failure(step)):
        _start(step, ready)
    run_change = _next_run_phase(step, main_done)
    if run_change is not None:
        step.actions.append(run_change)
    return step.actions


def _hooks_of(plan: Plan, events: Iterable[str]) -> tuple[PlannedTask, ...]:
    wanted = set(events)
    return tuple(hook for hook in plan.hooks if hook.hook in wanted)


def _advance(step: _Step, active: Iterable[PlannedTask], stopping: bool) -> list[PlannedTask]:
    """Settle finished attempts and judge pending tasks; return the tasks ready to start."""
    ready: list[PlannedTask] = []
    for task in active:
        phase = step.phases[task.id]
        if phase in TASK_TERMINAL:
            continue
        current = step.state.tasks[task.id]
        if phase == T.RUNNING:
            _settle_attempt(step, task, current)
        elif phase == T.QUEUED:
            ready.append(task)
        elif phase == T.RETRYING:
            if current.retry_at is None or current.retry_at <= step.now or stopping:
                ready.append(task)
        elif phase == T.PENDING:
            upstream = [step.phases[d] for d in task.depends_on]
            if upstream and any(p not in TASK_TERMINAL for p in upstream):
                continue  # the common case in big runs: still waiting, nothing to judge
            outcome = trigger_outcome(task.trigger, upstream)
            if outcome == Outcome.RUN:
                ready.append(task)
            elif outcome == Outcome.SKIP:
                step.set(task, T.SKIPPED, "TriggerRuleNotMet", f"trigger {task.trigger.value}")
            elif outcome == Outcome.UPSTREAM_FAILED:
                failed = [d for d in task.depends_on if step.phases[d] in TASK_UNSUCCESSFUL]
                step.set(
                    task,
                    T.UPSTREAM_FAILED,
                    "UpstreamFailed",
                    f"upstream failed: {', '.join(failed)}",
                )
    return ready


def _settle_attempt(step: _Step, task: PlannedTask, current: TaskState) -> None:
    last = current.attempts[-1] if current.attempts else None
    if last is None or not last.finished:
        return
    if last.succeeded:
        step.set(task, T.SUCCEEDED, "Completed", f"attempt {last.number} succeeded")
        return
    if last.reason in (KILL_ABORT, KILL_FAIL_FAST, KILL_RUN_ENDED):
        step.set(task, T.ABORTED, last.reason, f"attempt {last.number} was stopped")
        return
    what = _attempt_failure(last.number, last.exit_code, last.reason)
    if len(current.attempts) <= task.retries:
        base = last.ended_at or step.now
        retry_at = base + timedelta(seconds=task.retry_delay_seconds)
        message = f"{what}; retry in {task.retry_delay_seconds}s"
        step.set(task, T.RETRYING, "Retrying", message, retry_at)
    elif last.reason == KILL_DEADLINE:
        step.set(task, T.TIMED_OUT, KILL_DEADLINE, what)
    else:
        step.set(task, T.FAILED, last.reason or "Error", what)


def _attempt_failure(number: int, exit_code: int | None, reason: str | None) -> str:
    if reason == KILL_DEADLINE:
        return f"attempt {number} exceeded its deadline"
    code = f"exit code {exit_code}" if exit_code is not None else (reason or "no exit code")
    return f"attempt {number} failed ({code})"


def _start(step: _Step, ready: list[PlannedTask]) -> None:
    running = sum(phase == T.RUNNING for phase in step.phases.values())
    slots = max(0, step.limits.max_parallel_tasks - running)
    for task in ready:
        phase = step.phases[task.id]
        if slots > 0:
            slots -= 1
            attempt = len(step.state.tasks[task.id].attempts) + 1
            step.phases[task.id] = T.RUNNING
            step.actions.append(StartTask(task.id, attempt))
        elif phase != T.QUEUED:
            step.set(
                task,
                T.QUEUED,
                "WaitingForSlot",
                f"maxParallelTasks={step.limits.max_parallel_tasks} tasks are running",
            )


def _next_run_phase(step: _Step, main_done_before: bool) -> SetRunPhase | None:
    phases = step.phases
    plan = step.plan
    phase = step.state.phase
    if phase == R.RUNNING:
        failed = _first_failure(step)
        if failed is not None:
            return SetRunPhase(R.FAILING, "TaskFailed", f"task `{failed}` {_how(phases[failed])}")
        if all(task_is_terminal(phases[t.id]) for t in plan.tasks):
            return SetRunPhase(R.SUCCEEDING, "TasksSucceeded", "every task finished; hooks run")
        return None
    if phase == R.FAILING:
        if not main_done_before:
            return None
        hooks = _hooks_of(plan, FAILURE_EVENTS)
        if all(task_is_terminal(phases[h.id]) for h in hooks):
            _skip_unused_hooks(step, FAILURE_EVENTS)
            return SetRunPhase(R.FAILED, "TaskFailed", step.state.message or "a task failed")
        return None
    hooks = _hooks_of(plan, SUCCESS_EVENTS)  # SUCCEEDING
    if not all(task_is_terminal(phases[h.id]) for h in hooks):
        return None
    _skip_unused_hooks(step, SUCCESS_EVENTS)
    failed_hook = next((h.id for h in hooks if phases[h.id] in TASK_UNSUCCESSFUL), None)
    if failed_hook is not None:
        return SetRunPhase(
            R.FAILED, "HookFailed", f"hook `{failed_hook}` {_how(phases[failed_hook])}"
        )
    return SetRunPhase(R.SUCCEEDED, "Succeeded", "every task succeeded")


def _first_failure(step: _Step) -> str | None:
    """The first task of the plan that failed, timed out or was stopped, if any."""
    return next((t.id for t in step.plan.tasks if step.phases[t.id] in _TERMINAL_FAILURES), None)


def _how(phase: TaskPhase) -> str:
    return {T.TIMED_OUT: "timed out", T.ABORTED: "was stopped"}.get(phase, "failed")


def _skip_unused_hooks(step: _Step, events: Iterable[str]) -> None:
    wanted = set(events)
    for hook in step.plan.hooks:
        if hook.hook not in wanted and step.phases[hook.id] == T.PENDING:
            step.set(hook, T.SKIPPED, "NotThisOutcome", f"{hook.hook} hooks do not run now")


def _kills(plan: Plan, state: RunState, limits: Limits, now: datetime) -> list[KillTask]:
    """Running attempts that must stop now; repeated until the caller records their end."""
    kills: list[KillTask] = []
    fail_fast = state.phase == R.FAILING and limits.fail_fast
    for task_id, task in state.tasks.items():
        attempt = task.open_attempt
        if attempt is None:
            continue
        if state.phase is not None and run_is_terminal(state.phase):
            kills.append(KillTask(task_id, KILL_RUN_ENDED))
        elif state.phase == R.ABORTING:
            kills.append(KillTask(task_id, KILL_ABORT))
        elif fail_fast and plan.by_id[task_id].hook is None:
            kills.append(KillTask(task_id, KILL_FAIL_FAST))
        elif _attempt_deadline(plan.by_id[task_id], attempt.started_at) <= now:
            kills.append(KillTask(task_id, KILL_DEADLINE))
    return kills


def _attempt_deadline(task: PlannedTask, started_at: datetime) -> datetime:
    if task.timeout_seconds is None:
        return datetime.max.replace(tzinfo=started_at.tzinfo)
    return started_at + timedelta(seconds=task.timeout_seconds)


def _wake_at(plan: Plan, state: RunState, limits: Limits) -> datetime | None:
    """The earliest time at which a decision could change without anything being observed."""
    if state.phase is not None and run_is_terminal(state.phase):
        return None
    times: list[datetime] = []
    if state.phase == R.SCHEDULED and state.scheduled_time is not None:
        times.append(state.scheduled_time)
    if limits.timeout_seconds is not None and state.started_at is not None:
        times.append(state.started_at + timedelta(seconds=limits.timeout_seconds))
    times += _task_times(plan, state.tasks)
    return min(times) if times else None


def _task_times(plan: Plan, tasks: Mapping[str, TaskState]) -> list[datetime]:
    times: list[datetime] = []
    for task_id, task in tasks.items():
        if task.phase == T.RETRYING and task.retry_at is not None:
            times.append(task.retry_at)
        attempt = task.open_attempt
        timeout = plan.by_id[task_id].timeout_seconds
        if attempt is not None and timeout is not None:
            times.append(attempt.started_at + timedelta(seconds=timeout))
    return times

"""One Run, reconciled: the operator's twin of the local runner. It rebuilds the run's
state from the API (Run, Tasks, Jobs), asks the engine what to do, starts and stops
attempts, and writes what changed to the Task and Run statuses. It wakes when one of its
Jobs, pods or its Run changes, or when the engine's next deadline comes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kascade.api import RunPhase, TaskPhase, TaskType
from kascade.engine.decide import decide
from kascade.engine.errors import KascadeError
from kascade.engine.naming import child_run_name, job_name, label_value
from kascade.engine.plan import Plan
from kascade.engine.runstate import (
    AttemptState,
    Decision,
    KillTask,
    Limits,
    RunState,
    SetRunPhase,
    StartTask,
    TaskState,
    record_attempt_end,
)
from kascade.engine.statemachine import TASK_SUCCESSFUL, run_is_terminal, task_is_terminal
from kascade.engine.templating import render, render_list, run_context, template_context
from kascade.operator.executors import Executor, StartFailed
from kascade.operator.facts import Outcome, Progress, timestamp
from kascade.operator.jobs import Launch
from kascade.operator.labels import PLAN_INDEX, RUN
from kascade.operator.metrics import METRICS
from kascade.operator.preparation import owned_by, plan_of_tasks, prepare_run
from kascade.operator.status import invalid_condition, run_status, task_status
from kascade.operator.taskobjects import AttemptInfo, TaskInfo, task_from_object
from kascade.operator.writer import StatusWriter

if TYPE_CHECKING:
    from kascade.operator.context import Operations

log = logging.getLogger("kascade.operator")
START_ERROR = "StartError"
LOST = "AttemptLost"
COALESCE_SECONDS = 0.02
HISTORY_LIMIT = 50
_WARN_PHASES = frozenset(
    {RunPhase.FAILED, RunPhase.TIMED_OUT, RunPhase.ABORTED, RunPhase.FAILING, RunPhase.ABORTING}
)
_WAITING = frozenset({None, RunPhase.SCHEDULED, RunPhase.QUEUED})


class RunWorker:
    """Drives one Run to a terminal phase; safe to stop and start again at any moment."""

    def __init__(self, ops: Operations, namespace: str, name: str, phase: RunPhase | None) -> None:
        self.ops = ops
        self.namespace = namespace
        self.name = name
        self.phase = phase
        self.flow = ""
        self.created = datetime.now(UTC)
        self.woken = asyncio.Event()
        self.body: dict[str, Any] = {}
        self.plan: Plan | None = None
        self.state: RunState | None = None
        self.tasks: dict[str, TaskInfo] = {}
        self.parameters: dict[str, Any] = {}
        self.settings: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.writer = StatusWriter(ops.kube, namespace)
        self.seen_states: dict[str, TaskState] = {}
        self.dirty: set[str] = set()
        self.background: set[asyncio.Task[None]] = set()
        self.config_map: str | None = None
        self.project_dir: Any = None
        self.start_error: str | None = None
        self.conditions: list[dict[str, Any]] | None = None
        # For the metrics: phases already counted, and when (monotonic) this process saw
        # each task end and the run start, the moments tasks become ready.
        self.counted: dict[str, TaskPhase] = {}
        self.ended_seen: dict[str, float] = {}
        self.running_seen: float | None = None

    def wake(self) -> None:
        """Something of this run changed: look again."""
        self.woken.set()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    async def run(self) -> None:
        """Work until the run is terminal; errors are logged, posted and retried."""
        delay = 1.0
        while True:
            try:
                if await self._work():
                    return
                delay = 1.0
            except asyncio.CancelledError:
                self.writer.cancel()
                raise
            except Exception as err:  # never let one run take the operator down
                METRICS.reconcile_errors.labels("run").inc()
                log.exception("run=%s/%s event=reconcile-error error=%s", *self.key, err)
                if self.body:
                    await self.ops.kube.event(
                        self.body,
                        "Run",
                        "ReconcileError",
                        f"{type(err).__name__}: {err}",
                        warning=True,
                    )
                self.state = None  # rebuild from the API next time
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _work(self) -> bool:
        body = await self.ops.kube.get("runs", self.namespace, self.name)
        if body is None:
            return True
        self.body = body
        if self.state is None:
            await self._load(body)
        assert self.state is not None
        assert self.plan is not None
        decided: RunState | None = None
        wake_at: datetime | None = None
        while True:
            now = self.ops.now()
            self._observe(now)
            if self.state.phase in _WAITING:
                admitted = self.ops.admitted(self)
                if admitted != self.state.admitted:
                    self.state = replace(self.state, admitted=admitted)
            # The engine is deterministic: with the same state and no deadline passed it
            # would decide the same again, so most wake-ups (a Job got its pod) end here.
            if self.state is not decided or (wake_at is not None and now >= wake_at):
                with METRICS.timed("run"):
                    decision = decide(self.plan, self.state, self._limits(), now)
                    previous = self.state.phase
                    self.state = decided = decision.state
                    wake_at = decision.wake_at
                    if self.state.phase == RunPhase.RUNNING != previous:
                        self.running_seen = time.monotonic()
                    await self._act(decision, now)
                    await self._write(decision, now)
                    self._phase(previous, self.state.phase)
                if run_is_terminal(self.state.phase) and not self._open_attempts():
                    await self.writer.flush()
                    await asyncio.gather(*self.background)
                    return True
                if self.state is not decided:
                    continue  # acting changed the state (an attempt could not start)
            await self._wait(wake_at, now)
            self._refresh()

    # --- loading ------------------------------------------------------------------------

    async def _load(self, body: dict[str, Any]) -> None:
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        self.created = timestamp(meta.get("creationTimestamp")) or self.created
        self.flow = (spec.get("flowRef") or {}).get("name", "")
        phase = RunPhase(status["phase"]) if status.get("phase") else None
        if status.get("totalTasks") is None and not run_is_terminal(phase):
            await self._plan(body)
        objects = await self.ops.kube.list(
            "tasks", self.namespace, f"{RUN}={label_value(self.name)}"
        )
        owned = [t for t in objects if owned_by(t, meta["uid"])]
        owned.sort(key=lambda t: int((t["metadata"].get("annotations") or {}).get(PLAN_INDEX, 0)))
        self.plan = plan_of_tasks(self.flow, owned)
        self.tasks = {}
        states: dict[str, TaskState] = {}
        for obj in owned:
            task_id = obj["spec"]["id"]
            info, state = task_from_object(obj)
            self.tasks[task_id] = info
            states[task_id] = state
        self.parameters = status.get("parameters") or self.parameters
        self.settings = status.get("settings") or self.settings
        self.config_map = self.settings.get("projectConfigMap")
        self.history = list(status.get("history") or [])
        self.writer.forget()
        self.seen_states = {}
        self.counted = {task_id: state.phase for task_id, state in states.items()}
        self.state = RunState(
            phase=phase,
            tasks=states,
            started_at=timestamp(status.get("startTime")),
            finished_at=timestamp(status.get("completionTime")),
            scheduled_time=timestamp(spec.get("scheduledTime")),
            abort_requested=bool(spec.get("abort")),
            start_error=self.start_error,
            reason=status.get("reason"),
            message=status.get("message"),
        )
        self._adopt()

    async def _plan(self, body: dict[str, Any]) -> None:
        prepared = await prepare_run(self.ops.kube, self.ops.projects, body)
        if prepared.error is not None:
            self.start_error = prepared.error
            self.conditions = [invalid_condition(prepared.error, self.ops.now())]
            await self.ops.kube.event(body, "Run", "InvalidRun", prepared.error, warning=True)
            return
        self.flow = prepared.flow
        self.parameters = prepared.parameters
        self.settings = prepared.settings.to_wire() if prepared.settings else {}
        await asyncio.gather(
            *(self.ops.kube.create("tasks", self.namespace, task) for task in prepared.tasks)
        )
        await asyncio.gather(
            *(
                self.ops.kube.patch_status("tasks", self.namespace, task, status)
                for task, status in prepared.statuses.items()
            )
        )
        if prepared.rerun_of is not None:
            await self._list_as_rerun(prepared.rerun_of)
        await self.ops.kube.patch_status(
            "runs",
            self.namespace,
            self.name,
            {
                "totalTasks": len(prepared.plan.tasks) if prepared.plan else 0,
                "parameters": self.parameters,
                "settings": self.settings,
            },
        )

    async def _list_as_rerun(self, original: str) -> None:
        """The original run lists its reruns (it is finished: nobody else writes it)."""
        body = await self.ops.kube.get("runs", self.namespace, original)
        if body is None:
            return
        reruns = list((body.get("status") or {}).get("reruns") or [])
        if self.name not in reruns:
            await self.ops.kube.patch_status(
                "runs", self.namespace, original, {"reruns": [*reruns, self.name]}
            )

    def _adopt(self) -> None:
        """Attempts that exist in the cluster but not yet in a Task status (the operator
        stopped between starting them and writing the status) are taken over."""
        assert self.state is not None
        tasks = dict(self.state.tasks)
        for task_id, info in self.tasks.items():
            state = tasks[task_id]
            if task_is_terminal(state.phase):
                continue
            number = len(info.attempts) + 1
            launch = self._launch_ref(task_id, number)
            outcome = self._executor(task_id).outcome(launch)
            if outcome.progress == Progress.UNSEEN:
                continue
            started = outcome.started or self.ops.now()
            info.attempts.append(AttemptInfo(number, launch.job))
            tasks[task_id] = TaskState(
                phase=TaskPhase.RUNNING,
                attempts=(*state.attempts, AttemptState(number, started)),
                reason="Adopted",
                message=f"attempt {number} found running",
            )
        self.state = replace(self.state, tasks=tasks)

    # --- observing ----------------------------------------------------------------------

    def _refresh(self) -> None:
        """Pick up a requested abort from the Run object as the index shows it."""
        facts = self.ops.run_facts(self.namespace, self.flow, self.name)
        if facts is not None and facts.abort and self.state and not self.state.abort_requested:
            self.state = replace(self.state, abort_requested=True)

    def _observe(self, now: datetime) -> None:
        assert self.state is not None
        grace = self.ops.config.missing_job_grace_seconds
        for task_id, task in self.state.tasks.items():
            attempt = task.open_attempt
            if attempt is None:
                continue
            info = self.tasks[task_id].attempts[-1]
            outcome = self._executor(task_id).outcome(self._launch_ref(task_id, attempt.number))
            if outcome.progress == Progress.ENDED:
                self._end(task_id, info, outcome, now)
            elif outcome.progress == Progress.UNSEEN and (
                info.kill_reason is not None or time.monotonic() - info.launched > grace
            ):
                lost = Outcome(
                    Progress.ENDED,
                    ended=now,
                    reason=info.kill_reason or LOST,
                    message=None if info.kill_reason else "its Job disappeared",
                )
                self._end(task_id, info, lost, now)

    def _end(self, task_id: str, info: AttemptInfo, outcome: Outcome, now: datetime) -> None:
        assert self.state is not None
        reason = info.kill_reason or outcome.reason or "Error"
        info.exit_code, info.reason, info.message = outcome.exit_code, reason, outcome.message
        self.dirty.add(task_id)
        self.ended_seen[task_id] = time.monotonic()
        if outcome.exit_code == 0 and info.kill_reason is None and outcome.outputs is not None:
            self.tasks[task_id].outputs = outcome.outputs
        self.state = record_attempt_end(
            self.state,
            task_id,
            exit_code=outcome.exit_code,
            reason=reason,
            now=outcome.ended or now,
        )

    # --- acting -------------------------------------------------------------------------

    async def _act(self, decision: Decision, now: datetime) -> None:
        starts = [a for a in decision.actions if isinstance(a, StartTask)]
        kills = [a for a in decision.actions if isinstance(a, KillTask)]
        context = self._context() if starts else {}
        await asyncio.gather(*(self._start(action, now, context) for action in starts))
        await asyncio.gather(*(self._kill(action) for action in kills))

    async def _start(self, action: StartTask, now: datetime, context: dict[str, Any]) -> None:
        info = self.tasks[action.task]
        launch = self._launch_ref(action.task, action.attempt)
        attempt = AttemptInfo(action.attempt, launch.job)
        info.attempts.append(attempt)
        self.dirty.add(action.task)
        try:
            launch = self._launch(action.task, action.attempt, context)
            await self._executor(action.task).start(launch)
        except (KascadeError, StartFailed) as err:
            failed = Outcome(Progress.ENDED, ended=now, reason=START_ERROR, message=str(err))
            self._end(action.task, attempt, failed, now)
            return
        ready = self._ready_seen(action.task, action.attempt)
        if ready is not None:
            METRICS.task_launched(self.namespace, self.flow, time.monotonic() - ready)
        log.info(
            "run=%s/%s task=%s attempt=%d event=started job=%s",
            *self.key,
            action.task,
            action.attempt,
            launch.job,
        )

    async def _kill(self, action: KillTask) -> None:
        info = self.tasks[action.task]
        attempt = info.attempts[-1]
        if attempt.kill_reason is not None:
            return
        attempt.kill_reason = action.reason
        launch = self._launch_ref(action.task, attempt.number)
        await self._executor(action.task).stop(launch, action.reason)
        log.info(
            "run=%s/%s task=%s attempt=%d event=stopped reason=%s",
            *self.key,
            action.task,
            attempt.number,
            action.reason,
        )

    def _ready_seen(self, task_id: str, attempt: int) -> float | None:
        """When (monotonic) this process saw the task become ready: its retry came due,
        its last upstream task ended, or (no upstream) the run started. None when that
        happened before this process watched (or for hooks, ready with a run phase)."""
        assert self.plan is not None
        assert self.state is not None
        task = self.plan.by_id[task_id]
        if attempt > 1:
            ended = self.ended_seen.get(task_id)
            return None if ended is None else ended + task.retry_delay_seconds
        if task.hook is not None:
            return None
        upstream = [d for d in task.depends_on if self.state.tasks[d].phase != TaskPhase.REUSED]
        if not upstream:
            return self.running_seen
        seen = [self.ended_seen.get(d) for d in upstream]
        return None if None in seen else max(t for t in seen if t is not None)

    def _executor(self, task_id: str) -> Executor:
        kind = self.tasks[task_id].spec.get("type")
        return self.ops.children if kind == TaskType.FLOW.value else self.ops.executor

    def _launch_ref(self, task_id: str, attempt: int) -> Launch:
        info = self.tasks[task_id]
        spec = info.spec
        flow_task = spec.get("type") == TaskType.FLOW.value
        return Launch(
            namespace=self.namespace,
            run=self.name,
            flow=self.flow,
            task_object=info.name,
            task_uid=info.uid,
            task_id=task_id,
            attempt=attempt,
            kind=spec["type"],
            target=spec["target"],
            job=child_run_name(self.name, task_id, attempt)
            if flow_task
            else job_name(info.name, attempt),
            spec=spec,
            project_config_map=self.config_map,
            warehouse=self.ops.config.warehouse,
        )

    def _launch(self, task_id: str, attempt: int, context: dict[str, Any]) -> Launch:
        """The full launch of an attempt, templates rendered with finished tasks' outputs."""
        base = self._launch_ref(task_id, attempt)
        spec = base.spec
        env = []
        for var in spec.get("env") or []:
            rendered = dict(var)
            if "value" in var:
                rendered["value"] = render(str(var["value"]), context)
            env.append(rendered)
        parameters = {
            key: render(value, context) if isinstance(value, str) else value
            for key, value in (spec.get("parameters") or {}).items()
        }
        return replace(
            base,
            args=render_list(spec.get("args") or [], context),
            env=env,
            parameters=parameters,
        )

    def _context(self) -> dict[str, Any]:
        assert self.state is not None
        spec = self.body.get("spec") or {}
        run = run_context(
            name=self.name,
            flow=self.flow,
            run_type=spec.get("type", "MANUAL"),
            scheduled_time=timestamp(spec.get("scheduledTime")),
            created=self.created,
        )
        outputs = {
            task_id: info.outputs
            for task_id, info in self.tasks.items()
            if self.state.tasks[task_id].phase in TASK_SUCCESSFUL
        }
        return template_context(run, self.parameters, outputs)

    def _limits(self) -> Limits:
        settings = self.settings
        return Limits(
            max_parallel_tasks=int(settings.get("maxParallelTasks", 8)),
            fail_fast=bool(settings.get("failFast", False)),
            timeout_seconds=settings.get("timeoutSeconds"),
        )

    def _open_attempts(self) -> bool:
        assert self.state is not None
        return any(t.open_attempt is not None for t in self.state.tasks.values())

    # --- writing ------------------------------------------------------------------------

    async def _write(self, decision: Decision, now: datetime) -> None:
        assert self.state is not None
        changes = [a for a in decision.actions if isinstance(a, SetRunPhase)]
        for change in changes:
            self.history.append(
                {
                    "phase": change.phase.value,
                    "time": now.isoformat(),
                    "reason": change.reason,
                    "message": change.message,
                }
            )
        del self.history[:-HISTORY_LIMIT]
        for task_id, info in self.tasks.items():
            state = self.state.tasks[task_id]
            if state is self.seen_states.get(task_id) and task_id not in self.dirty:
                continue
            self.seen_states[task_id] = state
            self._count_task(task_id, state)
            if state.phase == TaskPhase.PENDING and not state.attempts:
                continue  # a Task without status is PENDING; a big run saves a write each
            self.writer.submit("tasks", info.name, task_status(state, info.attempts, info.outputs))
        self.dirty.clear()
        desired_run = run_status(
            self.state,
            self.plan,
            self.history,
            self.parameters,
            self.settings,
            self.conditions,
            now,
        )
        self.writer.submit("runs", self.name, desired_run)
        for change in changes:
            self._background(
                self.ops.kube.event(
                    self.body,
                    "Run",
                    change.reason,
                    f"{change.phase.value}: {change.message}",
                    warning=change.phase in _WARN_PHASES,
                )
            )
            log.info(
                "run=%s/%s event=phase phase=%s reason=%s",
                *self.key,
                change.phase.value,
                change.reason,
            )

    def _count_task(self, task_id: str, state: TaskState) -> None:
        """A task that reached a terminal phase while this process watched it counts."""
        before = self.counted.get(task_id)
        if before == state.phase or not task_is_terminal(state.phase):
            return
        self.counted[task_id] = state.phase
        if before is not None and task_is_terminal(before):
            return
        attempts = state.attempts
        METRICS.task_finished(
            self.namespace,
            self.flow,
            str(self.tasks[task_id].spec.get("type", "")),
            state.phase,
            attempts[0].started_at if attempts else None,
            attempts[-1].ended_at if attempts else None,
        )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a best-effort call (an Event) without holding up decisions."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def _phase(self, previous: RunPhase | None, current: RunPhase | None) -> None:
        if previous != current:
            self.phase = current
            self.ops.phase_changed(self, previous, current)
            if current is not None and run_is_terminal(current) and not run_is_terminal(previous):
                assert self.state is not None
                METRICS.run_finished(
                    self.namespace,
                    self.flow,
                    str((self.body.get("spec") or {}).get("type", "MANUAL")),
                    current,
                    self.state.started_at,
                    self.state.finished_at,
                )

    async def _wait(self, wake_at: datetime | None, now: datetime) -> None:
        timeout = self.ops.config.resync_seconds
        if wake_at is not None:
            timeout = max(0.0, min(timeout, (wake_at - now).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)
        self.woken.clear()
        await asyncio.sleep(COALESCE_SECONDS)

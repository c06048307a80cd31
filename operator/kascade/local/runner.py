"""The local runner: drives the engine's decision function with tasks as local processes.

Each loop: decide, carry out the actions (start or stop attempts), record what changed,
then wait until an attempt ends, the next deadline, or a short tick. Ctrl-C asks for an
abort (ABORTING, attempts stopped, ABORTED); a second Ctrl-C stops attempts at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kascade.api import FlowSpec, HookNode, Node, TaskType
from kascade.api.core import EnvVar
from kascade.engine.decide import decide
from kascade.engine.errors import KascadeError
from kascade.engine.plan import Plan, PlannedTask, node_of
from kascade.engine.runstate import (
    KillTask,
    Limits,
    RunState,
    SetRunPhase,
    StartTask,
    record_attempt_end,
    request_abort,
)
from kascade.engine.statemachine import TASK_SUCCESSFUL, run_is_terminal
from kascade.engine.templating import render, render_list, run_context, template_context
from kascade.local.processes import ProcessPool, TaskProcess, runtime_command, tail
from kascade.local.records import AttemptRecord, PhaseRecord, RunRecord, plan_of, state_of
from kascade.local.store import RunStore
from kascade.runtime import contract
from kascade.runtime.outputs import read_published

TICK_SECONDS = 0.5
PERSIST_INTERVAL_SECONDS = 0.5
HISTORY_LIMIT = 50
START_ERROR = "StartError"


class TaskStartError(KascadeError):
    """An attempt that could not be started (bad template, missing env); names the cause."""


@dataclass(frozen=True)
class Change:
    """Something a user may want to see: a task or the run changed phase."""

    time: datetime
    phase: str
    task: str | None = None
    message: str = ""


class Reporter(Protocol):
    """Presentation of a run in progress (the CLI's live view or plain lines)."""

    def changed(self, record: RunRecord, changes: list[Change]) -> None: ...

    def tick(self, record: RunRecord) -> None: ...


class LocalRunner:
    """Runs one prepared run record to a terminal phase."""

    def __init__(
        self,
        record: RunRecord,
        store: RunStore,
        reporter: Reporter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.record = record
        self.store = store
        self.reporter = reporter
        self.clock = clock
        self.plan: Plan = plan_of(record)
        self.spec = FlowSpec.model_validate(record.flow_spec)
        self.limits = Limits.of(self.spec)
        self.state: RunState = state_of(record)
        self.pool = ProcessPool()
        self._interrupts = 0
        self._last_save = 0.0
        self._dirty = True

    def interrupt(self) -> None:
        """Ctrl-C: the first asks for an abort, the next stops every attempt at once."""
        self._interrupts += 1

    def run(self) -> RunRecord:
        """Run until the run is terminal and no attempt is left; returns the final record.

        If the runner itself fails (say the state dir fills up), its attempts are killed
        before the error propagates: no task process outlives its runner.
        """
        with _ctrl_c_calls(self.interrupt):
            try:
                self._loop()
            except BaseException:
                self.pool.kill_all("RunnerFailed", force=True)
                raise
        self._persist(force=True)
        return self.record

    def _loop(self) -> None:
        while True:
            now = self.clock()
            if self._interrupts and not self.state.abort_requested:
                self.state = request_abort(self.state)
            if self._interrupts > 1:
                self.pool.kill_all("Aborted", force=True)
            decision = decide(self.plan, self.state, self.limits, now)
            self.state = decision.state
            started_failed = self._act(decision.actions, now)
            self._sync(now, [a for a in decision.actions if isinstance(a, SetRunPhase)])
            if run_is_terminal(self.state.phase) and not self.pool.running:
                return
            self._persist(force=False)
            self.reporter.tick(self.record)
            timeout = 0.0 if started_failed else self._timeout(decision.wake_at, now)
            for ended in self.pool.wait(timeout):
                self._reap(ended)
            self.pool.escalate()

    # --- actions ----------------------------------------------------------------------

    def _act(self, actions: tuple[Any, ...], now: datetime) -> bool:
        """Carry out the decision; True when an attempt failed to start (decide again now)."""
        failed = False
        for action in actions:
            if isinstance(action, StartTask):
                failed |= not self._start(action, now)
            elif isinstance(action, KillTask):
                self.pool.kill(action.task, action.reason)
        return failed

    def _start(self, action: StartTask, now: datetime) -> bool:
        task = self.plan.by_id[action.task]
        record = self.record.task(task.id)
        log_path = self.store.attempt_file(self.record.id, task.id, action.attempt, "log")
        attempt = AttemptRecord(number=action.attempt, start_time=now, log=str(log_path))
        record.attempts.append(attempt)
        self._dirty = True
        published = self.store.attempt_file(self.record.id, task.id, action.attempt, "published")
        try:
            command, env = self._command(task, action.attempt, published)
            self.pool.start(
                task.id,
                action.attempt,
                command,
                env,
                Path(self.record.project),
                log_path,
                published,
            )
        except (KascadeError, OSError) as err:
            message = str(err)
            log_path.write_text(f"error: {message}\n", encoding="utf-8")
            attempt.end_time, attempt.reason, attempt.message = now, START_ERROR, message
            self.state = record_attempt_end(
                self.state, task.id, exit_code=None, reason=START_ERROR, now=now
            )
            return False
        return True

    def _command(
        self, task: PlannedTask, attempt: int, published: Path
    ) -> tuple[list[str], dict[str, str]]:
        """The command and environment of an attempt; TaskStartError when it cannot start."""
        node = node_of(self.spec, task)
        kind = task.type.value  # model, script and connector are the runtime's kinds too
        if task.type == TaskType.FLOW:
            raise TaskStartError(
                f"task `{task.id}` starts flow `{task.target}`: child flows run only on a "
                "cluster (kascade operator), not in a local run"
            )
        context = self._template_context()
        args: list[str] = []
        if node.script is not None:
            args = render_list(node.script.args or [], context)
        outputs_path = self.store.attempt_file(self.record.id, task.id, attempt, "outputs")
        env = dict(os.environ)
        env.update(self._flow_env(node, context))
        env.update(
            {
                contract.WAREHOUSE: self.record.warehouse,
                contract.RUN: self.record.id,
                contract.TASK: task.id,
                contract.FLOW: self.record.flow,
                contract.PROJECT: self.record.project,
                contract.OUTPUTS: str(outputs_path),
                contract.TERMINATION_LOG: str(published),
            }
        )
        return runtime_command(kind, task.target, args), env

    def _flow_env(self, node: Node | HookNode, context: Mapping[str, Any]) -> dict[str, str]:
        """defaults.env overridden by the node's env; templates rendered. Values from
        Secrets or ConfigMaps (valueFrom) come from this machine's environment."""
        merged: dict[str, EnvVar] = {}
        for var in [
            *((self.spec.defaults.env or []) if self.spec.defaults else []),
            *(node.env or []),
        ]:
            merged[var.name] = var
        values: dict[str, str] = {}
        for name, var in merged.items():
            if var.value is not None:
                values[name] = render(var.value, context)
            elif name not in os.environ:
                raise TaskStartError(
                    f"env `{name}` of node `{node.name}` comes from valueFrom, which a local run "
                    f"cannot read: set {name} in your environment"
                )
        return values

    def _template_context(self) -> dict[str, Any]:
        run = run_context(
            name=self.record.id,
            flow=self.record.flow,
            run_type=self.record.type.value,
            scheduled_time=self.record.scheduled_time,
            created=self.record.created_at,
        )
        # Phases from the engine's state: the record catches up only after this decision.
        phases = self.state.tasks
        outputs = {
            t.id: t.outputs for t in self.record.tasks if phases[t.id].phase in TASK_SUCCESSFUL
        }
        return template_context(run, self.record.parameters, outputs)

    def _reap(self, ended: TaskProcess) -> None:
        now = self.clock()
        code = ended.process.returncode
        exit_code = 128 - code if code is not None and code < 0 else code
        reason = ended.kill_reason or ("Completed" if exit_code == 0 else "Error")
        attempt = self.record.task(ended.task).attempts[-1]
        attempt.end_time, attempt.exit_code, attempt.reason = now, exit_code, reason
        if exit_code == 0 and ended.kill_reason is None:
            self.record.task(ended.task).outputs = read_published(ended.published_path)
        else:
            attempt.message = tail(ended.log_path)
        self.state = record_attempt_end(
            self.state, ended.task, exit_code=exit_code, reason=reason, now=now
        )
        self._dirty = True

    # --- bookkeeping --------------------------------------------------------------------

    def _sync(self, now: datetime, run_changes: list[SetRunPhase]) -> None:
        """Copy the engine's state into the record, every run phase change into its
        history; tell the reporter what changed."""
        changes: list[Change] = []
        record, state = self.record, self.state
        for task in record.tasks:
            current = state.tasks[task.id]
            if current.phase == task.phase and current.retry_at == task.retry_at:
                continue
            task.phase, task.reason, task.retry_at = current.phase, current.reason, current.retry_at
            task.message = _task_message(current.message, task.attempts)
            changes.append(Change(now, current.phase.value, task.id, task.message or ""))
        for change in run_changes:
            record.history.append(
                PhaseRecord(
                    phase=change.phase, time=now, reason=change.reason, message=change.message
                )
            )
            changes.append(Change(now, change.phase.value, None, change.message))
        del record.history[:-HISTORY_LIMIT]
        record.phase, record.reason, record.message = state.phase, state.reason, state.message
        record.started_at, record.finished_at = state.started_at, state.finished_at
        if changes:
            self._dirty = True
            self.reporter.changed(record, changes)

    def _persist(self, force: bool) -> None:
        if not self._dirty:
            return
        moment = time.monotonic()
        if force or moment - self._last_save >= PERSIST_INTERVAL_SECONDS:
            self.store.save(self.record)
            self._last_save = moment
            self._dirty = False

    def _timeout(self, wake_at: datetime | None, now: datetime) -> float:
        if wake_at is None:
            return TICK_SECONDS
        return max(0.0, min(TICK_SECONDS, (wake_at - now).total_seconds()))


def _task_message(decided: str | None, attempts: list[AttemptRecord]) -> str | None:
    last = attempts[-1] if attempts else None
    if decided and last is not None and last.message and last.reason != "Completed":
        return f"{decided}: {last.message}"
    return decided


@contextlib.contextmanager
def _ctrl_c_calls(handler: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl-C calls `handler` instead of raising KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

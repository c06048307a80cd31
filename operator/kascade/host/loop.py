"""The run loop, written once: observe → decide → act → record, until the run has ended
and no attempt runs. The local runner and the operator run it on their adapters.

Observe: each open attempt as the host sees it (ended, running, lost). Decide: the
engine's `decide`. Act: start attempts (launches rendered by the engine) and stop them.
Record: `sync_record` copies the decision into the run's record, which the store keeps.
The engine is deterministic: with nothing observed and no deadline passed it would
decide the same again, so a round without news only waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from kascade.engine.ancestry import MAX_FLOW_DEPTH
from kascade.engine.attempts import AttemptEnd, adopt, attempt_end, start_failure
from kascade.engine.decide import decide
from kascade.engine.launch import LaunchError, launch, launch_context
from kascade.engine.plan import Plan
from kascade.engine.progress import MESSAGE_LIMIT
from kascade.engine.runstate import (
    Decision,
    KillTask,
    RunState,
    SetRunPhase,
    StartTask,
    TaskState,
    record_attempt_end,
    request_abort,
)
from kascade.engine.statemachine import RUN_WAITING, run_is_terminal, task_is_terminal
from kascade.host.ports import Attempts, Clock, RunStore, StartFailed
from kascade.host.records import (
    AttemptRecord,
    RunRecord,
    TaskRecord,
    identity_of,
    limits_of,
    plan_of,
    planned_task,
    state_of,
    sync_record,
    template_outputs,
)

RESYNC_SECONDS = 120.0


class RunLoop:
    """Drives one run to its end on an adapter; safe to stop and start again at any moment
    (everything it needs is in the record and in what the attempts show)."""

    def __init__(
        self,
        store: RunStore,
        attempts: Attempts,
        clock: Clock,
        *,
        warehouse: str | None = None,
        max_flow_depth: int = MAX_FLOW_DEPTH,
        lost_after_seconds: float = 30.0,
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self.store = store
        self.attempts = attempts
        self.clock = clock
        self.warehouse = warehouse
        self.max_flow_depth = max_flow_depth
        self.lost_after_seconds = lost_after_seconds
        self.resync_seconds = resync_seconds
        self.plan: Plan | None = None
        self.state: RunState | None = None
        self._stopping: dict[tuple[str, int], str] = {}
        self._seen: dict[str, TaskState] = {}
        self._touched: set[str] = set()

    async def run(self) -> RunRecord | None:
        """Work until the run has ended; the final record (None when the run is gone)."""
        record = await self.store.load()
        if record is None:
            return None
        self._begin(record)
        assert self.plan is not None
        limits = limits_of(record)
        decided: RunState | None = None
        wake_at: datetime | None = None
        while True:
            now = self.clock.now()
            self._observe(record, now)
            self._take_requests(record)
            state = self.state
            assert state is not None
            if state is not decided or (wake_at is not None and now >= wake_at):
                decision = decide(self.plan, state, limits, now)
                self.state = decided = decision.state
                wake_at = decision.wake_at
                await self._act(record, decision, now)
                await self._record(record, decision, now)
                if run_is_terminal(self.state.phase) and not self.open_attempts():
                    await self.store.close(record)
                    return record
                if self.state is not decided:
                    continue  # acting changed the state (an attempt could not start)
            await self.clock.wait(self._timeout(wake_at, now))

    def open_attempts(self) -> bool:
        """Whether an attempt of the run is still running."""
        return self.state is not None and any(
            task.open_attempt is not None for task in self.state.tasks.values()
        )

    # --- begin: the record, and attempts no record shows yet -------------------------

    def _begin(self, record: RunRecord) -> None:
        self.plan = plan_of(record)
        state = state_of(record)
        found = {
            task.id: self.attempts.observe(task, len(task.attempts) + 1)
            for task in record.tasks
            if not task_is_terminal(task.phase) and state.tasks[task.id].open_attempt is None
        }
        adopted = adopt(state, found, self.clock.now())
        for task in record.tasks:
            if adopted.tasks[task.id] is not state.tasks[task.id]:
                number = len(task.attempts) + 1
                started = adopted.tasks[task.id].attempts[-1].started_at
                entry = self._attempt_entry(task, number, started)
                entry.job = self.attempts.attempt_name(task, number)
                self._touched.add(task.id)
        self.state = adopted
        self._seen = {task_id: task for task_id, task in state.tasks.items()}

    # --- observe ---------------------------------------------------------------------

    def _observe(self, record: RunRecord, now: datetime) -> None:
        state = self.state
        assert state is not None
        for task_id, task in state.tasks.items():
            attempt = task.open_attempt
            if attempt is None:
                continue
            entry = record.task(task_id)
            seen = self.attempts.observe(entry, attempt.number)
            end = attempt_end(
                seen,
                started=attempt.started_at,
                stop_reason=self._stopping.get((task_id, attempt.number)),
                now=now,
                grace_seconds=self.lost_after_seconds,
            )
            if end is not None:
                self._end(entry, attempt.number, end)

    def _end(self, task: TaskRecord, number: int, end: AttemptEnd) -> None:
        assert self.state is not None
        entry = self._attempt_entry(task, number, end.ended)
        entry.message = end.message[:MESSAGE_LIMIT] if end.message else None
        if end.outputs is not None:
            task.outputs = dict(end.outputs)
        self._touched.add(task.id)
        self.state = record_attempt_end(
            self.state, task.id, exit_code=end.exit_code, reason=end.reason, now=end.ended
        )

    def _take_requests(self, record: RunRecord) -> None:
        state = self.state
        assert state is not None
        asked = self.store.requests(record)
        if asked.abort and not state.abort_requested:
            state = request_abort(state)
        if state.phase in RUN_WAITING and asked.admitted != state.admitted:
            state = replace(state, admitted=asked.admitted)
        self.state = state

    # --- act -------------------------------------------------------------------------

    async def _act(self, record: RunRecord, decision: Decision, now: datetime) -> None:
        starts = [a for a in decision.actions if isinstance(a, StartTask)]
        kills = [a for a in decision.actions if isinstance(a, KillTask)]
        if starts:
            assert self.state is not None
            outputs = template_outputs(record, self.state)
            context = launch_context(identity_of(record), record.parameters, outputs)
            await asyncio.gather(*(self._start(record, a, now, context) for a in starts))
        await asyncio.gather(*(self._stop(record, action) for action in kills))

    async def _start(
        self, record: RunRecord, action: StartTask, now: datetime, context: Mapping[str, Any]
    ) -> None:
        assert self.state is not None
        task = record.task(action.task)
        entry = self._attempt_entry(task, action.attempt, now)
        entry.job = self.attempts.attempt_name(task, action.attempt)
        self._touched.add(task.id)
        try:
            prepared = launch(
                planned_task(task),
                task.settings,
                action.attempt,
                identity_of(record),
                context,
                self.warehouse,
                self.max_flow_depth,
            )
            entry.log = await self.attempts.start(task, prepared)
        except (LaunchError, StartFailed) as err:
            self._end(task, action.attempt, start_failure(str(err), now))

    async def _stop(self, record: RunRecord, action: KillTask) -> None:
        assert self.state is not None
        attempt = self.state.tasks[action.task].open_attempt
        if attempt is None or (action.task, attempt.number) in self._stopping:
            return
        self._stopping[(action.task, attempt.number)] = action.reason
        await self.attempts.stop(record.task(action.task), attempt.number, action.reason)

    # --- record ----------------------------------------------------------------------

    async def _record(self, record: RunRecord, decision: Decision, now: datetime) -> None:
        assert self.state is not None
        run_changes = [a for a in decision.actions if isinstance(a, SetRunPhase)]
        changes = sync_record(record, self.state, now, run_changes, self._seen, self._touched)
        self._touched.clear()
        await self.store.save(record, changes)

    @staticmethod
    def _attempt_entry(task: TaskRecord, number: int, started: datetime) -> AttemptRecord:
        for entry in task.attempts:
            if entry.number == number:
                return entry
        entry = AttemptRecord(number=number, start_time=started)
        task.attempts.append(entry)
        return entry

    def _timeout(self, wake_at: datetime | None, now: datetime) -> float:
        if wake_at is None:
            return self.resync_seconds
        return max(0.0, min(self.resync_seconds, (wake_at - now).total_seconds()))

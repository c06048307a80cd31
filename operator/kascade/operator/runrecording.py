"""Recording a run on the cluster: what one round of the loop changed becomes Task and
Run statuses (written off the decision path), an Event and a log line per run phase
change, and metrics of tasks and runs that finished."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from kascade.api import RunPhase, TaskPhase
from kascade.engine.statemachine import run_is_terminal, task_is_terminal
from kascade.host.records import Changes, RunRecord
from kascade.operator.background import start_background
from kascade.operator.kube import Kube
from kascade.operator.metrics import METRICS
from kascade.operator.runloading import LoadedRun
from kascade.operator.status import history_of, run_status
from kascade.operator.taskobjects import task_status
from kascade.operator.writer import StatusWriter

log = logging.getLogger("kascade.operator")
_WARN_PHASES = frozenset(
    {RunPhase.FAILED, RunPhase.TIMED_OUT, RunPhase.ABORTED, RunPhase.FAILING, RunPhase.ABORTING}
)
PhaseListener = Callable[[RunPhase | None, RunPhase | None], None]


class RunRecorder:
    """Writes one run's record to its Run and Task objects, and tells of its changes."""

    def __init__(self, kube: Kube, loaded: LoadedRun, on_phase: PhaseListener) -> None:
        record = loaded.record
        self.kube = kube
        self.loaded = loaded
        self.namespace = loaded.body["metadata"]["namespace"]
        self.on_phase = on_phase
        self.writer = StatusWriter(kube, self.namespace)
        self.phase = record.phase
        self.run_type = str((loaded.body.get("spec") or {}).get("type", "MANUAL"))
        self.history = history_of(record)
        # Tasks already counted in the metrics.
        self.counted: dict[str, TaskPhase] = {t.id: t.phase for t in record.tasks}
        self.background: set[asyncio.Task[None]] = set()

    def save(self, record: RunRecord, changes: Changes, now: datetime) -> None:
        """Submit the statuses that changed, announce run phase changes."""
        for task_id in changes.updated:
            task = record.task(task_id)
            self._count_task(record, task_id)
            if task.phase == TaskPhase.PENDING and not task.attempts:
                continue  # a Task without status is PENDING; a big run saves a write each
            self.writer.submit("tasks", self.loaded.objects[task_id].name, task_status(task))
        if changes.run:  # the history changes with the phase only
            self.history = history_of(record)
        self.writer.submit(
            "runs",
            record.id,
            run_status(record, self.loaded.config_map, self.loaded.conditions, now, self.history),
        )
        for change in changes.run:
            self._background(
                self.kube.event(
                    self.loaded.body,
                    "Run",
                    change.reason,
                    f"{change.phase.value}: {change.message}",
                    warning=change.phase in _WARN_PHASES,
                )
            )
            log.info(
                "run=%s/%s event=phase phase=%s reason=%s",
                self.namespace,
                record.id,
                change.phase.value,
                change.reason,
            )
        if record.phase != self.phase:
            previous, self.phase = self.phase, record.phase
            self.on_phase(previous, record.phase)
            if run_is_terminal(record.phase) and not run_is_terminal(previous):
                assert record.phase is not None
                METRICS.run_finished(
                    self.namespace,
                    record.flow,
                    self.run_type,
                    record.phase,
                    record.started_at,
                    record.finished_at,
                )

    async def close(self) -> None:
        """Wait until every status is written and every Event posted."""
        await self.writer.flush()
        await asyncio.gather(*self.background)

    def cancel(self) -> None:
        """The run's work stops (the operator stops, or the Run is gone)."""
        self.writer.cancel()

    def _count_task(self, record: RunRecord, task_id: str) -> None:
        """A task that reached a terminal phase while this process watched it counts."""
        task = record.task(task_id)
        before = self.counted.get(task_id)
        if before == task.phase or not task_is_terminal(task.phase):
            return
        self.counted[task_id] = task.phase
        if before is not None and task_is_terminal(before):
            return
        METRICS.task_finished(
            self.namespace,
            record.flow,
            task.type.value,
            task.phase,
            task.attempts[0].start_time if task.attempts else None,
            task.attempts[-1].end_time if task.attempts else None,
        )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a best-effort call (an Event) without holding up decisions."""
        start_background(self.background, work, "run-event")

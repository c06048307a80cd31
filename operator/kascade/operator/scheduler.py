"""Cron schedules on the cluster: one task per scheduled Flow that sleeps until the next
instant, asks the engine what is due (`engine.schedules.tick`) and creates the Run
`<flow>-<unix time>` (a second create is AlreadyExists, never a duplicate)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from kascade.api import Flow
from kascade.engine.naming import scheduled_run_name
from kascade.engine.schedules import Skip, cron_expression, tick
from kascade.engine.statemachine import run_is_terminal
from kascade.operator.background import start_background
from kascade.operator.facts import rfc3339, timestamp
from kascade.operator.kube import passing
from kascade.operator.labels import API_VERSION, run_labels
from kascade.operator.metrics import METRICS

if TYPE_CHECKING:
    from kascade.operator.context import Operations
    from kascade.operator.flows import FlowStatusWriter

log = logging.getLogger("kascade.operator")
RETRY_SECONDS = 5.0
LISTED_SKIPS = 3


class _FlowGone(Exception):
    """The Flow was deleted: its schedule ends."""


class Scheduler:
    """The schedules of all Flows this operator watches."""

    def __init__(self, ops: Operations, writer: FlowStatusWriter) -> None:
        self.ops = ops
        self.writer = writer
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.wakers: dict[tuple[str, str], asyncio.Event] = {}
        self.checkpoints: dict[tuple[str, str], datetime] = {}
        self.pending: set[asyncio.Task[None]] = set()
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}

    def flow_changed(
        self, namespace: str, name: str, deleted: bool, body: dict[str, Any] | None = None
    ) -> None:
        """A Flow was created, changed or deleted: (re)consider its schedule now. The body
        seen with the event is kept, so a tick at a busy minute reads nothing first."""
        key = (namespace, name)
        if body is not None:
            self.bodies[key] = body
        if deleted:
            self.bodies.pop(key, None)
            task = self.tasks.pop(key, None)
            if task is not None:
                task.cancel()
            return
        if key in self.tasks and not self.tasks[key].done():
            self.wakers[key].set()
            return
        self.wakers[key] = asyncio.Event()
        self.tasks[key] = asyncio.get_running_loop().create_task(
            self._loop(key), name=f"schedule {namespace}/{name}"
        )

    def stop_all(self) -> None:
        for task in self.tasks.values():
            task.cancel()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        start_background(self.pending, work, "schedule-bookkeeping")

    async def _loop(self, key: tuple[str, str]) -> None:
        while True:
            try:
                with METRICS.reconcile("schedule"):
                    try:
                        wake_at = await self._tick(key)
                    except _FlowGone:
                        return  # the schedule's end, not a failed reconcile
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one Flow must never stop the others
                if passing(err):  # the API server is away: the next tick tries again
                    log.warning("flow=%s/%s event=schedule-error error=%s", *key, err)
                else:
                    log.exception("flow=%s/%s event=schedule-error error=%s", *key, err)
                wake_at = None
                await asyncio.sleep(RETRY_SECONDS)
            waker = self.wakers[key]
            timeout = (
                None if wake_at is None else max(0.0, (wake_at - self.ops.now()).total_seconds())
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waker.wait(), timeout)
            waker.clear()

    async def _tick(self, key: tuple[str, str]) -> datetime | None:
        """One look at a Flow's schedule; when to look again (None: on its next change)."""
        body = self.bodies.get(key) or await self.ops.kube.get("flows", *key)
        if body is None:
            raise _FlowGone
        try:
            flow = Flow.model_validate({**body, "status": None})
        except ValidationError:
            return None  # reported by the Flow's Valid condition; wait for a change
        schedule = flow.spec.schedule
        status = body.get("status") or {}
        if schedule is None:
            await self.writer.write_schedule(
                *key,
                {
                    "schedule": None,
                    "nextScheduleTime": None,
                },
            )
            return None
        stored = timestamp(status.get("scheduleCheckpoint"))
        checkpoint = max((t for t in (stored, self.checkpoints.get(key)) if t), default=None)
        created = timestamp(body["metadata"].get("creationTimestamp")) or self.ops.now()
        active = [r.name for r in self.ops.runs(key) if not run_is_terminal(r.phase)]
        decision = tick(schedule, checkpoint, created, self.ops.now(), active)
        fields: dict[str, Any] = {
            "schedule": cron_expression(schedule),
            "nextScheduleTime": rfc3339(decision.next_time),
            "scheduleCheckpoint": rfc3339(decision.checkpoint),
        }
        if decision.run_at is not None:
            run, new = await self._create_run(body, key, decision.run_at)
            if new:
                lag = (self.ops.now() - decision.run_at).total_seconds()
                METRICS.scheduled(*key, lag)
            fields["lastScheduleTime"] = rfc3339(decision.run_at)
            message = f"run {run} for {rfc3339(decision.run_at)}"
            if decision.abort:
                message += f"; concurrencyPolicy Replace aborts {', '.join(decision.abort)}"
            self._background(self.ops.kube.event(body, "Flow", "Scheduled", message))
        for skip in decision.skipped:
            METRICS.skipped(*key, skip.cause)
        if decision.skipped:
            self._background(self._report_skips(body, decision.skipped, decision.more_skipped))
        if decision.checkpoint is not None:
            self.checkpoints[key] = decision.checkpoint
        # Bookkeeping after the Run exists: at a busy minute, creating Runs comes first.
        self._background(self.writer.write_schedule(*key, fields))
        return decision.next_time

    async def _create_run(
        self, body: dict[str, Any], key: tuple[str, str], at: datetime
    ) -> tuple[str, bool]:
        """Create the Run of a scheduled instant: its name, and False if it existed."""
        name = scheduled_run_name(key[1], int(at.timestamp()))
        run = {
            "apiVersion": API_VERSION,
            "kind": "Run",
            "metadata": {"name": name, "namespace": key[0], "labels": run_labels(name, key[1])},
            "spec": {
                "flowRef": {"name": key[1]},
                "type": "ORCHESTRATED",
                "scheduledTime": rfc3339(at),
            },
        }
        created = await self.ops.kube.create("runs", key[0], run)
        log.info("flow=%s/%s event=scheduled run=%s at=%s new=%s", *key, name, rfc3339(at), created)
        return name, created

    async def _report_skips(
        self, body: dict[str, Any], skipped: tuple[Skip, ...], more: bool
    ) -> None:
        listed = "; ".join(f"{rfc3339(s.time)}: {s.reason}" for s in skipped[-LISTED_SKIPS:])
        count = f"{len(skipped)}{'+' if more else ''}"
        await self.ops.kube.event(
            body, "Flow", "Skipped", f"{count} scheduled time(s) not run ({listed})", warning=True
        )

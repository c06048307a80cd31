"""One Run on the cluster: the host loop on the operator's adapter. Its record lives in
the Run and its Tasks (loaded by runloading, written by runrecording), its attempts are
Jobs, local processes or child Runs (launching), and time is the operator's clock; a
Job's, a pod's or the Run's event wakes it. An error restarts the loop from the API
after a backoff: everything it needs is stored there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kascade.api import RunPhase
from kascade.engine.attempts import Observation
from kascade.engine.launch import Launch
from kascade.engine.runstate import RunState
from kascade.engine.statemachine import RUN_WAITING
from kascade.host.loop import RunLoop
from kascade.host.ports import Requests
from kascade.host.records import Changes, RunRecord, TaskRecord
from kascade.operator.kube import passing
from kascade.operator.launching import ClusterAttempts
from kascade.operator.metrics import METRICS
from kascade.operator.runloading import load_run
from kascade.operator.runrecording import RunRecorder

if TYPE_CHECKING:
    from kascade.operator.context import Operations

log = logging.getLogger("kascade.operator")
COALESCE_SECONDS = 0.02


class ClusterRun:
    """Drives one Run to a terminal phase; safe to stop and start again at any moment."""

    def __init__(self, ops: Operations, namespace: str, name: str, phase: RunPhase | None) -> None:
        self.ops = ops
        self.namespace = namespace
        self.name = name
        self.phase = phase
        self.flow = ""
        self.created = datetime.now(UTC)
        self.woken = asyncio.Event()
        self.loop: RunLoop | None = None
        self.recorder: RunRecorder | None = None
        self.attempts: ClusterAttempts | None = None
        self._round_started = time.monotonic()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def state(self) -> RunState | None:
        """The engine's view of the run, while it is worked on."""
        return self.loop.state if self.loop is not None else None

    def wake(self) -> None:
        """Something of this run changed: look again."""
        self.woken.set()

    async def run(self) -> None:
        """Work until the run is terminal; errors are logged, posted and retried."""
        delay = 1.0
        while True:
            self.loop = RunLoop(
                self,
                self,
                self,
                warehouse=self.ops.config.warehouse,
                max_flow_depth=self.ops.config.max_flow_depth,
                lost_after_seconds=self.ops.config.missing_job_grace_seconds,
                resync_seconds=self.ops.config.resync_seconds,
            )
            try:
                await self.loop.run()
                return
            except asyncio.CancelledError:
                if self.recorder is not None:
                    self.recorder.cancel()
                raise
            except Exception as err:  # never let one run take the operator down
                METRICS.reconcile_errors.labels("run").inc()
                if passing(err):  # the API server is away: try again after the backoff
                    log.warning("run=%s/%s event=reconcile-error error=%s", *self.key, err)
                else:
                    log.exception("run=%s/%s event=reconcile-error error=%s", *self.key, err)
                if self.recorder is not None:
                    await self.ops.kube.event(
                        self.recorder.loaded.body,
                        "Run",
                        "ReconcileError",
                        f"{type(err).__name__}: {err}",
                        warning=True,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # --- where the record lives ------------------------------------------------------

    async def load(self) -> RunRecord | None:
        loaded = await load_run(
            self.ops.kube,
            self.ops.projects,
            *self.key,
            self.ops.now(),
            self.ops.config.max_flow_depth,
        )
        if loaded is None:
            return None
        self.flow = loaded.record.flow
        self.created = loaded.record.created_at
        self.phase = loaded.record.phase
        self.recorder = RunRecorder(self.ops.kube, loaded, self._phase_changed)
        self.attempts = ClusterAttempts(
            loaded, self.ops.executor, self.ops.children, lambda: self._round_started
        )
        return loaded.record

    def requests(self, record: RunRecord) -> Requests:
        facts = self.ops.run_facts(self.namespace, self.flow, self.name)
        abort = facts is not None and facts.abort
        admitted = self.ops.admitted(self) if record.phase in RUN_WAITING else True
        return Requests(abort=abort, admitted=admitted)

    async def save(self, record: RunRecord, changes: Changes) -> None:
        assert self.recorder is not None
        self.recorder.save(record, changes, self.ops.now())
        METRICS.reconciled("run", time.monotonic() - self._round_started)

    async def close(self, record: RunRecord) -> None:
        assert self.recorder is not None
        await self.recorder.close()
        ended = getattr(self.ops.executor, "run_ended", None)
        if ended is not None:
            ended(self.namespace, self.name)

    def _phase_changed(self, old: RunPhase | None, new: RunPhase | None) -> None:
        self.phase = new
        self.ops.phase_changed(self, old, new)

    # --- attempts (once the record is loaded) ---------------------------------------

    def _attempts(self) -> ClusterAttempts:
        assert self.attempts is not None
        return self.attempts

    def attempt_name(self, task: TaskRecord, attempt: int) -> str:
        return self._attempts().attempt_name(task, attempt)

    async def start(self, task: TaskRecord, launch: Launch) -> str | None:
        return await self._attempts().start(task, launch)

    async def stop(self, task: TaskRecord, attempt: int, reason: str) -> None:
        await self._attempts().stop(task, attempt, reason)

    def observe(self, task: TaskRecord, attempt: int) -> Observation:
        return self._attempts().observe(task, attempt)

    # --- how time passes -------------------------------------------------------------

    def now(self) -> datetime:
        self._round_started = time.monotonic()
        return self.ops.now()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)
        self.woken.clear()
        await asyncio.sleep(COALESCE_SECONDS)

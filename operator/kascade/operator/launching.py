"""Launching and observing a run's attempts on the cluster: which executor runs a task
(child runs for flow tasks, Jobs or local processes for the rest), the deterministic
name of each attempt, and how long a ready task waited for its attempt to start
(measured from when this process saw it become ready; restarts measure nothing)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kascade.api import TaskPhase, TaskType
from kascade.engine.attempts import Observation, Progress
from kascade.engine.launch import Launch
from kascade.engine.naming import child_run_name, job_name
from kascade.engine.statemachine import RUN_WAITING
from kascade.host.ports import StartFailed
from kascade.host.records import RunRecord, TaskRecord
from kascade.operator.executors import ChildRunExecutor, Executor
from kascade.operator.jobs import ClusterAttempt
from kascade.operator.kube import passing
from kascade.operator.metrics import METRICS
from kascade.operator.runloading import LoadedRun

log = logging.getLogger("kascade.operator")


class ClusterAttempts:
    """The attempts of one run, started and observed by the operator's executors."""

    def __init__(
        self,
        loaded: LoadedRun,
        executor: Executor,
        children: ChildRunExecutor,
        round_started: Callable[[], float],
    ) -> None:
        self.loaded = loaded
        self.executor = executor
        self.children = children
        self.round_started = round_started
        self.namespace = loaded.body["metadata"]["namespace"]
        self._attempts: dict[tuple[str, int], ClusterAttempt] = {}
        # When (monotonic) this process saw each attempt end, and the run start.
        self.ended_seen: dict[tuple[str, int], float] = {}
        self.running_seen: float | None = None

    def attempt(self, task: TaskRecord, number: int) -> ClusterAttempt:
        """Where an attempt of a task lives (worked out once per attempt)."""
        known = self._attempts.get((task.id, number))
        if known is None:
            known = self._attempts[(task.id, number)] = self._where(task, number)
        return known

    def _where(self, task: TaskRecord, number: int) -> ClusterAttempt:
        run = self.loaded.record.id
        task_object = self.loaded.objects[task.id]
        flow_task = task.type == TaskType.FLOW
        return ClusterAttempt(
            namespace=self.namespace,
            run=run,
            flow=self.loaded.record.flow,
            task_object=task_object.name,
            task_uid=task_object.uid,
            task_id=task.id,
            attempt=number,
            job=child_run_name(run, task.id, number)
            if flow_task
            else job_name(task_object.name, number),
            target=task.target,
            wait=bool(task.settings.get("wait", True)),
            project_config_map=self.loaded.config_map,
        )

    def attempt_name(self, task: TaskRecord, attempt: int) -> str:
        return self.attempt(task, attempt).job

    async def start(self, task: TaskRecord, launch: Launch) -> str | None:
        attempt = self.attempt(task, launch.attempt)
        ready = self._ready_seen(self.loaded.record, task, launch.attempt)
        try:
            where = await self._executor(task).start(attempt, launch)
        except StartFailed:
            raise
        except Exception as err:
            if passing(err):
                raise  # the loop starts over from the API after a backoff
            raise StartFailed(
                f"the attempt could not be started: {type(err).__name__}: {err}"
            ) from err
        if ready is not None:
            METRICS.task_launched(self.namespace, attempt.flow, time.monotonic() - ready)
        log.info(
            "run=%s/%s task=%s attempt=%d event=started job=%s",
            self.namespace,
            attempt.run,
            task.id,
            launch.attempt,
            attempt.job,
        )
        return where

    async def stop(self, task: TaskRecord, attempt: int, reason: str) -> None:
        where = self.attempt(task, attempt)
        await self._executor(task).stop(where, reason)
        log.info(
            "run=%s/%s task=%s attempt=%d event=stopped reason=%s",
            self.namespace,
            where.run,
            task.id,
            attempt,
            reason,
        )

    def observe(self, task: TaskRecord, attempt: int) -> Observation:
        seen = self._executor(task).observe(self.attempt(task, attempt))
        if seen.progress == Progress.ENDED:
            self.ended_seen.setdefault((task.id, attempt), time.monotonic())
        return seen

    def _ready_seen(self, record: RunRecord, task: TaskRecord, attempt: int) -> float | None:
        """When this process saw a task become ready: its retry came due, its last
        upstream task ended, or (no upstream) the run started. None when that happened
        before this process watched (or for hooks, ready with a run phase)."""
        if attempt > 1:
            ended = self.ended_seen.get((task.id, attempt - 1))
            return None if ended is None else ended + task.retry_delay_seconds
        if task.hook is not None:
            return None
        upstream = [record.task(d) for d in task.depends_on]
        upstream = [u for u in upstream if u.phase != TaskPhase.REUSED]
        if not upstream:
            if self.running_seen is None and record.phase in RUN_WAITING:
                # The record catches up after this round: the run starts right now.
                self.running_seen = self.round_started()
            return self.running_seen
        seen = [self.ended_seen.get((u.id, len(u.attempts))) for u in upstream]
        return None if None in seen else max(t for t in seen if t is not None)

    def _executor(self, task: TaskRecord) -> Executor:
        return self.children if task.type == TaskType.FLOW else self.executor

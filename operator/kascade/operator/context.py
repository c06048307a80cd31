"""What every part of the operator shares: configuration, the API, executors, indexes,
and the workers of active runs (with admission of queued runs between them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade.api import ConcurrencyPolicy, RunPhase
from kascade.engine.admission import QueuedRun, admit
from kascade.engine.naming import label_value
from kascade.operator.config import OperatorConfig
from kascade.operator.executors import ChildRunExecutor, Executor, RunFacts
from kascade.operator.kube import Kube
from kascade.operator.preparation import ProjectCache
from kascade.operator.worker import RunWorker

log = logging.getLogger("kascade.operator")
ACTIVE = frozenset({RunPhase.RUNNING, RunPhase.SUCCEEDING, RunPhase.FAILING, RunPhase.ABORTING})
WAITING = frozenset({None, RunPhase.SCHEDULED, RunPhase.QUEUED})
QUEUEING = frozenset({None, RunPhase.QUEUED})


@dataclass(frozen=True)
class FlowFacts:
    """What the flows index keeps of a Flow."""

    max_active_runs: int | None
    config_map: str | None
    policy: str | None


@dataclass
class Operations:
    """Shared by handlers and workers of one operator process."""

    config: OperatorConfig
    kube: Kube
    projects: ProjectCache
    executor: Executor
    children: ChildRunExecutor
    runs: Callable[[tuple[str, str]], Iterable[RunFacts]]
    flow_facts: Callable[[str, str], FlowFacts | None]
    workers: dict[tuple[str, str], RunWorker] = field(default_factory=dict)
    tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    replacing: set[str] = field(default_factory=set)

    def now(self) -> datetime:
        """The operator's clock (shifted by --clock-offset, for tests of schedules)."""
        return datetime.now(UTC) + timedelta(seconds=self.config.clock_offset_seconds)

    def ensure_worker(self, namespace: str, name: str, phase: RunPhase | None) -> None:
        """Start the worker of a non-terminal run unless it runs already."""
        key = (namespace, name)
        if key in self.tasks and not self.tasks[key].done():
            self.workers[key].wake()
            return
        worker = RunWorker(self, namespace, name, phase)
        self.workers[key] = worker
        task = asyncio.get_running_loop().create_task(worker.run(), name=f"run {namespace}/{name}")
        self.tasks[key] = task
        task.add_done_callback(lambda _: self._finished(key, worker))

    def _finished(self, key: tuple[str, str], worker: RunWorker) -> None:
        if self.workers.get(key) is worker:
            del self.workers[key]
            self.tasks.pop(key, None)
        self._wake_waiting()

    def stop_worker(self, namespace: str, name: str) -> None:
        """The run is gone: stop its worker (and its local processes; Jobs go with the
        Run through garbage collection)."""
        task = self.tasks.get((namespace, name))
        if task is not None:
            task.cancel()
        stop_run = getattr(self.executor, "stop_all", None)
        if stop_run is not None:
            stop_run((namespace, name))

    def wake(self, namespace: str, name: str) -> None:
        """Wake the worker of a run, if it has one."""
        worker = self.workers.get((namespace, name))
        if worker is not None:
            worker.wake()

    def wake_by_label(self, namespace: str, run_label: str) -> None:
        """Wake the worker of a run known by its label value (Jobs and pods carry it)."""
        for (worker_namespace, name), worker in self.workers.items():
            if worker_namespace == namespace and label_value(name) == run_label:
                worker.wake()

    def run_facts(self, namespace: str, flow: str, name: str) -> RunFacts | None:
        """What the runs index says of one run."""
        return next((r for r in self.runs((namespace, flow)) if r.name == name), None)

    def flow_limit(self, namespace: str, flow: str) -> int | None:
        """Most active runs a flow may have: maxActiveRuns, and 1 under a Forbid or
        Replace concurrency policy (which manual runs obey too)."""
        facts = self.flow_facts(namespace, flow)
        if facts is None:
            return None
        limit = facts.max_active_runs
        if facts.policy in (ConcurrencyPolicy.FORBID.value, ConcurrencyPolicy.REPLACE.value):
            limit = 1 if limit is None else min(limit, 1)
        return limit

    def admitted(self, candidate: RunWorker) -> bool:
        """Whether a waiting run may start now (operator-wide and per-flow limits, oldest
        first). Under Replace, the newest waiting run of a flow asks its active runs to
        abort and starts once they ended."""
        if self.config.max_active_runs is None and (
            self.flow_limit(candidate.namespace, candidate.flow) is None
        ):
            return True
        active: dict[str, list[RunWorker]] = {}
        queued: list[QueuedRun] = []
        limits: dict[str, int | None] = {}
        for worker in self.workers.values():
            flow_key = f"{worker.namespace}/{worker.flow}"
            limits[flow_key] = self.flow_limit(worker.namespace, worker.flow)
            if worker.phase in ACTIVE:
                active.setdefault(flow_key, []).append(worker)
            elif worker.phase in QUEUEING and worker.flow:
                queued.append(
                    QueuedRun(f"{worker.namespace}/{worker.name}", flow_key, worker.created)
                )
        counts = {key: len(workers) for key, workers in active.items()}
        chosen = admit(queued, counts, self.config.max_active_runs, limits)
        key = f"{candidate.namespace}/{candidate.name}"
        if key not in chosen:
            self._replace(
                candidate, active.get(f"{candidate.namespace}/{candidate.flow}", []), queued
            )
        return key in chosen

    def _replace(
        self, candidate: RunWorker, running: list[RunWorker], queued: list[QueuedRun]
    ) -> None:
        facts = self.flow_facts(candidate.namespace, candidate.flow)
        if facts is None or facts.policy != ConcurrencyPolicy.REPLACE.value or not running:
            return
        flow_key = f"{candidate.namespace}/{candidate.flow}"
        newest = max((q for q in queued if q.flow == flow_key), key=lambda q: (q.created, q.key))
        if newest.key != f"{candidate.namespace}/{candidate.name}":
            return
        for worker in running:
            if worker.name in self.replacing:
                continue
            self.replacing.add(worker.name)
            log.info("run=%s/%s event=replace by=%s", worker.namespace, worker.name, candidate.name)
            asyncio.get_running_loop().create_task(
                self.kube.patch_spec("runs", worker.namespace, worker.name, {"abort": True})
            )

    def phase_changed(self, worker: RunWorker, old: RunPhase | None, new: RunPhase | None) -> None:
        """A run left the active set: waiting runs may now fit."""
        if old in ACTIVE and new not in ACTIVE:
            self._wake_waiting()

    def _wake_waiting(self) -> None:
        for worker in self.workers.values():
            if worker.phase in WAITING:
                worker.wake()

    def stop_all(self) -> None:
        """Cancel every worker (the operator stops)."""
        for task in self.tasks.values():
            task.cancel()


def facts_of_run(body: Any) -> RunFacts:
    """What the runs index keeps of a Run."""
    from kascade.operator.facts import timestamp

    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    phase = status.get("phase")
    history = status.get("history") or []
    return RunFacts(
        name=meta["name"],
        namespace=meta["namespace"],
        flow=(spec.get("flowRef") or {}).get("name", ""),
        phase=RunPhase(phase) if phase else None,
        created=timestamp(meta.get("creationTimestamp")),
        started=timestamp(status.get("startTime")),
        finished=timestamp(status.get("completionTime")),
        abort=bool(spec.get("abort")),
        type=spec.get("type", "MANUAL"),
        parent=(spec.get("parent") or {}).get("run"),
        phase_since=timestamp(history[-1].get("time")) if history else None,
    )

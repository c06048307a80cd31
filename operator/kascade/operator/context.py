"""What every part of the operator shares: configuration, the API, executors, indexes,
and the runs being worked on (with admission of queued runs between them: the engine's
`admission` decides, this module carries it out)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade.api import ConcurrencyPolicy, RunPhase
from kascade.engine.admission import ActiveRun, FlowLimits, QueuedRun, admission
from kascade.engine.naming import label_value
from kascade.engine.statemachine import RUN_WAITING
from kascade.operator.config import OperatorConfig
from kascade.operator.executors import ChildRunExecutor, Executor, RunFacts
from kascade.operator.kube import Kube
from kascade.operator.projects import ProjectCache
from kascade.operator.runs import ClusterRun

log = logging.getLogger("kascade.operator")
ACTIVE = frozenset({RunPhase.RUNNING, RunPhase.SUCCEEDING, RunPhase.FAILING, RunPhase.ABORTING})
QUEUEING = frozenset({None, RunPhase.QUEUED})


@dataclass(frozen=True)
class FlowFacts:
    """What the flows index keeps of a Flow."""

    max_active_runs: int | None
    config_map: str | None
    policy: str | None

    @property
    def limits(self) -> FlowLimits:
        """The Flow's limits on active runs, for admission."""
        policy = ConcurrencyPolicy(self.policy) if self.policy else None
        return FlowLimits(self.max_active_runs, policy)


@dataclass
class Operations:
    """Shared by handlers and runs of one operator process."""

    config: OperatorConfig
    kube: Kube
    projects: ProjectCache
    executor: Executor
    children: ChildRunExecutor
    runs: Callable[[tuple[str, str]], Iterable[RunFacts]]
    flow_facts: Callable[[str, str], FlowFacts | None]
    workers: dict[tuple[str, str], ClusterRun] = field(default_factory=dict)
    tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    replacing: set[str] = field(default_factory=set)

    def now(self) -> datetime:
        """The operator's clock (shifted by --clock-offset, for tests of schedules)."""
        return datetime.now(UTC) + timedelta(seconds=self.config.clock_offset_seconds)

    def ensure_worker(self, namespace: str, name: str, phase: RunPhase | None) -> None:
        """Start working on a non-terminal run unless that happens already."""
        key = (namespace, name)
        if key in self.tasks and not self.tasks[key].done():
            self.workers[key].wake()
            return
        run = ClusterRun(self, namespace, name, phase)
        self.workers[key] = run
        task = asyncio.get_running_loop().create_task(run.run(), name=f"run {namespace}/{name}")
        self.tasks[key] = task
        task.add_done_callback(lambda _: self._finished(key, run))

    def _finished(self, key: tuple[str, str], run: ClusterRun) -> None:
        if self.workers.get(key) is run:
            del self.workers[key]
            self.tasks.pop(key, None)
        self._wake_waiting()

    def stop_worker(self, namespace: str, name: str) -> None:
        """The run is gone: stop working on it (and its local processes; Jobs go with
        the Run through garbage collection)."""
        task = self.tasks.get((namespace, name))
        if task is not None:
            task.cancel()
        stop_run = getattr(self.executor, "stop_run", None)
        if stop_run is not None:
            stop_run(namespace, name)

    def wake(self, namespace: str, name: str) -> None:
        """Wake a run, if it is worked on."""
        run = self.workers.get((namespace, name))
        if run is not None:
            run.wake()

    def wake_by_label(self, namespace: str, run_label: str) -> None:
        """Wake a run known by its label value (Jobs and pods carry it)."""
        for (run_namespace, name), run in self.workers.items():
            if run_namespace == namespace and label_value(name) == run_label:
                run.wake()

    def run_facts(self, namespace: str, flow: str, name: str) -> RunFacts | None:
        """What the runs index says of one run."""
        return next((r for r in self.runs((namespace, flow)) if r.name == name), None)

    def flow_limits(self, namespace: str, flow: str) -> FlowLimits:
        """A Flow's limits on active runs (none when the Flow is unknown)."""
        facts = self.flow_facts(namespace, flow)
        return facts.limits if facts is not None else FlowLimits()

    def admitted(self, candidate: ClusterRun) -> bool:
        """Whether a waiting run may start now (the engine's admission over every run
        this operator works on); aborts the runs a Replace policy replaces."""
        if (
            self.config.max_active_runs is None
            and self.flow_limits(candidate.namespace, candidate.flow).limit is None
        ):
            return True
        active: list[ActiveRun] = []
        queued: list[QueuedRun] = []
        flows: dict[str, FlowLimits] = {}
        for run in self.workers.values():
            flow_key = f"{run.namespace}/{run.flow}"
            flows[flow_key] = self.flow_limits(run.namespace, run.flow)
            if run.phase in ACTIVE:
                active.append(ActiveRun(f"{run.namespace}/{run.name}", flow_key))
            elif run.phase in QUEUEING and run.flow:
                queued.append(QueuedRun(f"{run.namespace}/{run.name}", flow_key, run.created))
        decided = admission(queued, active, self.config.max_active_runs, flows)
        for key in decided.abort - self.replacing:
            self.replacing.add(key)
            namespace, name = key.split("/", 1)
            log.info("run=%s event=replace by=%s", key, candidate.name)
            asyncio.get_running_loop().create_task(
                self.kube.patch_spec("runs", namespace, name, {"abort": True})
            )
        return f"{candidate.namespace}/{candidate.name}" in decided.admitted

    def phase_changed(self, run: ClusterRun, old: RunPhase | None, new: RunPhase | None) -> None:
        """A run left the active set: waiting runs may now fit."""
        if old in ACTIVE and new not in ACTIVE:
            self._wake_waiting()

    def _wake_waiting(self) -> None:
        for run in self.workers.values():
            if run.phase in RUN_WAITING:
                run.wake()

    def stop_all(self) -> None:
        """Stop working on every run (the operator stops)."""
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

"""The operator's Prometheus metrics (prefix `kascade_`).

Events (a run or task ended, a Job was created, a schedule fired, an API request) are
counted and timed where they happen. States (runs waiting or active, tasks by phase, how
long a run has been in its phase) are computed at scrape time from the runs index and the
run workers, so they are right after a restart without any bookkeeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kascade import __version__
from kascade.api import RunPhase, TaskPhase
from kascade.engine.statemachine import run_is_terminal

T = TypeVar("T")
SNAPSHOT_TIMEOUT_SECONDS = 5.0
ACTIVE_PHASES = frozenset(
    {RunPhase.RUNNING, RunPhase.SUCCEEDING, RunPhase.FAILING, RunPhase.ABORTING}
)
# Seconds; runs of data flows last from seconds to a day.
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
TASK_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class RunSample:
    """What the gauges need of one unfinished run."""

    namespace: str
    flow: str
    phase: RunPhase | None
    phase_since: datetime | None


@dataclass(frozen=True)
class TaskSample:
    """The task phases of one unfinished run."""

    namespace: str
    flow: str
    phases: tuple[TaskPhase, ...]


def run_gauges(runs: Iterable[RunSample], now: datetime) -> dict[str, dict[tuple[str, ...], float]]:
    """Active and queued runs per flow, and per flow and phase the longest time an
    unfinished run has spent in its phase (a run without a phase yet counts as QUEUED)."""
    active: dict[tuple[str, ...], float] = {}
    queued: dict[tuple[str, ...], float] = {}
    oldest: dict[tuple[str, ...], float] = {}
    for run in runs:
        if run_is_terminal(run.phase):
            continue
        flow = (run.namespace, run.flow)
        phase = run.phase or RunPhase.QUEUED
        active.setdefault(flow, 0)
        queued.setdefault(flow, 0)
        if phase in ACTIVE_PHASES:
            active[flow] += 1
        elif phase == RunPhase.QUEUED:
            queued[flow] += 1
        if run.phase_since is not None:
            key = (*flow, phase.value)
            age = max(0.0, (now - run.phase_since).total_seconds())
            oldest[key] = max(oldest.get(key, 0.0), age)
    return {"active": active, "queued": queued, "phase_seconds": oldest}


def task_gauges(samples: Iterable[TaskSample]) -> dict[tuple[str, ...], float]:
    """Tasks of unfinished runs per flow and phase."""
    counts: dict[tuple[str, ...], float] = {}
    for sample in samples:
        for phase in sample.phases:
            key = (sample.namespace, sample.flow, phase.value)
            counts[key] = counts.get(key, 0) + 1
    return counts


class _StateCollector(Collector):
    """Gauges computed at scrape time from the sources the operator registers."""

    def __init__(self) -> None:
        self.runs: Callable[[], Iterable[RunSample]] = lambda: ()
        self.tasks: Callable[[], Iterable[TaskSample]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        gauges = run_gauges(list(self.runs()), datetime.now(UTC))
        flow_labels = ["namespace", "flow"]
        yield _gauge(
            "kascade_active_runs",
            "Runs in RUNNING, SUCCEEDING, FAILING or ABORTING.",
            flow_labels,
            gauges["active"],
        )
        yield _gauge(
            "kascade_queued_runs", "Runs waiting in QUEUED.", flow_labels, gauges["queued"]
        )
        yield _gauge(
            "kascade_run_phase_seconds",
            "Longest time an unfinished run of the flow has spent in its current phase.",
            [*flow_labels, "phase"],
            gauges["phase_seconds"],
        )
        yield _gauge(
            "kascade_run_tasks",
            "Tasks of unfinished runs, by phase.",
            [*flow_labels, "phase"],
            task_gauges(list(self.tasks())),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed per scrape; nothing to check at registration


def _gauge(
    name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class Metrics:
    """Every metric of one operator process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(default)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        Info(
            "kascade_build",
            "The kascade and Python versions of this operator.",
            registry=self.registry,
        ).info({"version": __version__, "python_version": platform.python_version()})
        flow, run_labels = ["namespace", "flow"], ["namespace", "flow", "type", "phase"]
        self.runs_total = Counter(
            "kascade_runs",
            "Runs that reached a terminal phase.",
            run_labels,
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "kascade_run_duration_seconds",
            "Duration of finished runs, from start to completion, by terminal phase.",
            [*flow, "phase"],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.tasks_total = Counter(
            "kascade_tasks",
            "Tasks that reached a terminal phase.",
            run_labels,
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "kascade_task_duration_seconds",
            "Duration of finished tasks that ran, first attempt start to last attempt end.",
            run_labels,
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.launch_latency = Histogram(
            "kascade_task_launch_latency_seconds",
            "From a task becoming ready (its upstream tasks seen done, or its retry due) to "
            "its attempt created (a Job, a process or a child run).",
            flow,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.schedule_lag = Histogram(
            "kascade_schedule_lag_seconds",
            "Scheduled Run created minus its scheduled time.",
            flow,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.schedules_skipped = Counter(
            "kascade_schedules_skipped",
            "Scheduled times that did not get a run, by reason.",
            [*flow, "reason"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "kascade_reconcile_duration_seconds",
            "Time of one reconcile pass (run: observe, decide, act, write; schedule: one "
            "tick; flow: one status write).",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "kascade_reconcile_errors",
            "Reconcile passes that failed with an error (retried with a backoff).",
            ["kind"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "kascade_kubernetes_requests",
            "Requests the operator sent to the Kubernetes API (kopf's watches excluded).",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.state = _StateCollector()
        self.registry.register(self.state)

    # --- events -------------------------------------------------------------------------

    def run_finished(
        self,
        namespace: str,
        flow: str,
        run_type: str,
        phase: RunPhase,
        started: datetime | None,
        finished: datetime | None,
    ) -> None:
        """A run reached a terminal phase."""
        self.runs_total.labels(namespace, flow, run_type, phase.value).inc()
        if started is not None and finished is not None:
            seconds = max(0.0, (finished - started).total_seconds())
            self.run_duration.labels(namespace, flow, phase.value).observe(seconds)

    def task_finished(
        self,
        namespace: str,
        flow: str,
        task_type: str,
        phase: TaskPhase,
        started: datetime | None,
        ended: datetime | None,
    ) -> None:
        """A task reached a terminal phase (its duration when it ran)."""
        self.tasks_total.labels(namespace, flow, task_type, phase.value).inc()
        if started is not None and ended is not None:
            seconds = max(0.0, (ended - started).total_seconds())
            self.task_duration.labels(namespace, flow, task_type, phase.value).observe(seconds)

    def task_launched(self, namespace: str, flow: str, seconds: float) -> None:
        self.launch_latency.labels(namespace, flow).observe(max(0.0, seconds))

    def scheduled(self, namespace: str, flow: str, lag_seconds: float) -> None:
        self.schedule_lag.labels(namespace, flow).observe(max(0.0, lag_seconds))

    def skipped(self, namespace: str, flow: str, reason: str, count: int = 1) -> None:
        self.schedules_skipped.labels(namespace, flow, reason).inc(count)

    def api_request(self, verb: str, resource: str, code: int | str) -> None:
        self.api_requests.labels(verb, resource, str(code)).inc()

    def reconciled(self, kind: str, seconds: float) -> None:
        """One reconcile pass took `seconds`."""
        self.reconcile_duration.labels(kind).observe(max(0.0, seconds))

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        """Time one reconcile pass."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.reconcile_duration.labels(kind).observe(time.perf_counter() - begin)

    @contextmanager
    def reconcile(self, kind: str) -> Iterator[None]:
        """Time one reconcile pass and count it as an error when it raises."""
        with self.timed(kind):
            try:
                yield
            except Exception:  # not CancelledError: a stopped worker is not an error
                self.reconcile_errors.labels(kind).inc()
                raise

    # --- serving ------------------------------------------------------------------------

    def serve(self, address: str) -> None:
        """Serve /metrics on HOST:PORT (a thread of this process)."""
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)


def in_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], T]) -> Callable[[], T]:
    """`read`, made callable from the metrics server's thread: it runs in the operator's
    event loop, where the indexes and workers change, so a scrape never sees them half-way."""

    def call() -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(read())
            except Exception as err:
                future.set_exception(err)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=SNAPSHOT_TIMEOUT_SECONDS)

    return call


def parse_address(value: str) -> str:
    """Check a HOST:PORT (or :PORT) metrics address; the message names the flag."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, e.g. 0.0.0.0:8080 (got {value!r})")
    return f"{host or '0.0.0.0'}:{port}"


METRICS = Metrics()

"""What the campaign's tests share: one API client per test, the objects of a run, a
watcher that checks a Run's task counts at every version of it, and the checks of
Jobs and attempt histories after a run."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.client import ApiException

from kascade.engine.naming import label_value
from tests.campaign.figures import FIGURES
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import GROUP, PROJECT, TERMINAL, VERSION, kascade
from tests.projects import write_project

RUN_LABEL = "kascade.io/run"
TASK_ID = "kascade.io/task-id"
ATTEMPT = "kascade.io/attempt"
TASK_TERMINAL = {
    "SUCCEEDED",
    "FAILED",
    "UPSTREAM_FAILED",
    "SKIPPED",
    "REUSED",
    "ABORTED",
    "TIMED_OUT",
}


class Api:
    """The typed clients on one connection pool (a test makes many calls)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.client = cluster.api_client()
        self.custom = client.CustomObjectsApi(self.client)
        self.batch = client.BatchV1Api(self.client)
        self.core = client.CoreV1Api(self.client)

    def create(self, namespace: str, plural: str, body: dict[str, Any]) -> str | None:
        """Create strictly (unknown fields refused); the API server's message on refusal."""
        try:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, field_validation="Strict"
            )
        except ApiException as err:
            return refusal(err)
        return None

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

    def items(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        found = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural),
        )
        return list(found["items"])

    def run_tasks(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return [t for t in self.items(namespace, "tasks") if t["spec"]["runRef"]["name"] == run]

    def run_jobs(self, namespace: str, run: str) -> list[Any]:
        selector = f"{RUN_LABEL}={label_value(run)}"
        return list(self.batch.list_namespaced_job(namespace, label_selector=selector).items)

    def events_of(self, namespace: str, name: str) -> list[Any]:
        found = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(found.items)


def refusal(err: ApiException) -> str:
    """The message of a refused request (the Status body's message and its causes)."""
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return str(err.body or err.reason)
    causes = (body.get("details") or {}).get("causes") or []
    extra = [f"{c.get('field', '')}: {c.get('message', '')}" for c in causes]
    return "\n".join([str(body.get("message", err.reason)), *extra])


def push_project(cluster: Cluster, namespace: str, root: Path, name: str) -> None:
    project = write_project(root / name, PROJECT)
    pushed = kascade(  # kwok's pods run nothing: no dbt parse state needed
        cluster, "project", "push", str(project), "--name", name, "-n", namespace, "--no-dbt-parse"
    )
    assert pushed.returncode == 0, pushed.stderr


def run_manifest(name: str, flow: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Run",
        "metadata": {"name": name},
        "spec": {"flowRef": {"name": flow}, **spec},
    }


def phase(body: dict[str, Any] | None) -> str | None:
    return ((body or {}).get("status") or {}).get("phase")


def brief(body: dict[str, Any] | None) -> dict[str, Any]:
    """The part of a Run's status worth showing in a failure."""
    status = (body or {}).get("status") or {}
    keys = ("phase", "reason", "message", "progress", "totalTasks", "taskCounts")
    return {key: status.get(key) for key in keys if key in status}


@contextmanager
def scratch_namespace(cluster: Cluster, label: str) -> Iterator[str]:
    """A namespace for a group of tests (the integration fixture makes one per test)."""
    name = f"c-{label}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@contextmanager
def running_operator(cluster: Cluster, namespace: str, workdir: Path) -> Iterator[OperatorProcess]:
    """An operator for a group of tests, with the operator fixture's check at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = OperatorProcess(cluster, namespace, workdir)
    process.start()
    try:
        yield process
    finally:
        process.stop()
    errors = process.tracebacks()
    assert not errors, "the operator logged errors:\n" + "\n\n".join(errors[:3])


@dataclass
class Sample:
    """One version of a Run as a watcher saw it."""

    resource_version: str
    phase: str | None
    total: int | None
    counts: dict[str, int] | None
    seen_at: float

    @property
    def consistent(self) -> bool:
        if self.counts is None or self.total is None:
            return True  # nothing counted yet
        return sum(self.counts.values()) == self.total


@dataclass
class RunWatcher:
    """Watches one Run (Kubernetes watch API, re-watching after a broken stream) and keeps
    every distinct version; `violations` are those whose task counts do not add up to the
    run's tasks (or to `plan_size`, when given)."""

    api: Api
    namespace: str
    run: str
    plan_size: int | None = None
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _watch: watch.Watch | None = None

    def start(self) -> RunWatcher:
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self.run}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        seen: set[str] = set()
        while not self._stop.is_set():
            self._watch = watch.Watch()
            try:
                for event in self._watch.stream(
                    self.api.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    "runs",
                    field_selector=f"metadata.name={self.run}",
                    timeout_seconds=5,
                    _request_timeout=10,
                ):
                    body = event["raw_object"] if "raw_object" in event else event["object"]
                    if not isinstance(body, dict) or body.get("kind") != "Run":
                        continue
                    version = str(body["metadata"]["resourceVersion"])
                    if version in seen:
                        continue
                    seen.add(version)
                    self._record(version, body)
                    if self._stop.is_set():
                        break
            except Exception as err:  # the API server may be down: watch again
                self.errors.append(f"{type(err).__name__}: {str(err)[:200]}")
                self._stop.wait(1.0)

    def _record(self, version: str, body: dict[str, Any]) -> None:
        status = body.get("status") or {}
        counts = status.get("taskCounts")
        total = status.get("totalTasks")
        if self.plan_size is not None and counts is not None and total is None:
            total = self.plan_size
        self.samples.append(Sample(version, status.get("phase"), total, counts, time.monotonic()))

    @property
    def violations(self) -> list[Sample]:
        bad = [s for s in self.samples if not s.consistent]
        if self.plan_size is not None:
            bad += [
                s
                for s in self.samples
                if s.consistent and s.total is not None and s.total != self.plan_size
            ]
        return bad

    @property
    def phase_changes(self) -> list[Sample]:
        changes: list[Sample] = []
        for sample in self.samples:
            if not changes or changes[-1].phase != sample.phase:
                changes.append(sample)
        return changes

    def count_figures(self) -> None:
        FIGURES.add("task_count_checks", len([s for s in self.samples if s.counts is not None]))
        FIGURES.add("task_count_violations", len(self.violations))


def wait_until(
    observe: Callable[[], Any],
    done: Callable[[Any], bool],
    deadline: float,
    interval: float = 0.3,
) -> tuple[bool, Any]:
    """Observe until done or the monotonic deadline; (done, last observation). For callers
    that count a miss instead of failing at once (wait_for fails on timeout)."""
    while True:
        seen = observe()
        if done(seen):
            return True, seen
        if time.monotonic() >= deadline:
            return False, seen
        time.sleep(interval)


@dataclass
class RunAudit:
    """What a finished run left behind, checked against its plan: one Job per attempt,
    every Task terminal, every attempt's history complete, counts that add up."""

    run: dict[str, Any]
    tasks: list[dict[str, Any]]
    jobs: list[Any]
    plan_size: int
    expected_attempts: dict[str, int]
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0
    incomplete: int = 0

    def check(self) -> RunAudit:
        by_attempt: dict[tuple[str, str], list[str]] = {}
        per_task: dict[str, int] = {}
        for job in self.jobs:
            task = (job.metadata.annotations or {}).get(TASK_ID, "?")
            attempt = (job.metadata.labels or {}).get(ATTEMPT, "?")
            by_attempt.setdefault((task, attempt), []).append(job.metadata.name)
            per_task[task] = per_task.get(task, 0) + 1
        for (task, attempt), names in sorted(by_attempt.items()):
            if len(names) > 1:
                self.duplicates += len(names) - 1
                self.problems.append(
                    f"task {task} attempt {attempt} has {len(names)} Jobs: {names}"
                )
        for task, count in sorted(per_task.items()):
            expected = self.expected_attempts.get(task)
            if expected is not None and count > expected:
                self.duplicates += count - expected
                self.problems.append(f"task {task} has {count} Jobs, expected {expected}")
        ended = {job.metadata.name: _job_ended(job) for job in self.jobs}
        ids = {t["spec"]["id"] for t in self.tasks}
        self.lost = self.plan_size - len(ids)
        if self.lost:
            missing = sorted(set(self.expected_attempts) - ids)
            self.problems.append(
                f"{len(ids)} Tasks for a plan of {self.plan_size}; missing {missing}"
            )
        for task in sorted(self.tasks, key=lambda t: str(t["spec"]["id"])):
            self._check_task(task, ended)
        self._check_counts()
        return self

    def _check_task(self, task: dict[str, Any], ended: dict[str, bool]) -> None:
        task_id = task["spec"]["id"]
        status = task.get("status") or {}
        if status.get("phase") not in TASK_TERMINAL:
            self.lost += 1
            self.problems.append(f"task {task_id} is {status.get('phase')}, not terminal")
        attempts = status.get("attempts") or []
        expected = self.expected_attempts.get(task_id)
        upstream_failed = status.get("phase") == "UPSTREAM_FAILED"
        if expected is not None and not upstream_failed and len(attempts) != expected:
            self.problems.append(
                f"task {task_id}: {len(attempts)} attempts in its history, expected {expected}"
            )
        numbers = [a.get("number") for a in attempts]
        if numbers != list(range(1, len(attempts) + 1)):
            self.problems.append(f"task {task_id}: attempt numbers {numbers}")
        for attempt in attempts:
            missing = [k for k in ("startTime", "endTime", "reason") if not attempt.get(k)]
            if ended.get(str(attempt.get("jobName")), True) and attempt.get("exitCode") is None:
                missing.append("exitCode")
            if missing:
                self.incomplete += 1
                self.problems.append(
                    f"task {task_id} attempt {attempt.get('number')} lacks {missing}: {attempt}"
                )

    def _check_counts(self) -> None:
        status = self.run.get("status") or {}
        counts = status.get("taskCounts") or {}
        total = status.get("totalTasks")
        if total != self.plan_size:
            self.problems.append(f"status.totalTasks is {total}, the plan has {self.plan_size}")
        if sum(counts.values()) != total:
            self.problems.append(
                f"status.taskCounts {counts} add up to {sum(counts.values())}, not {total}"
            )
        phases: dict[str, int] = {}
        for task in self.tasks:
            found = (task.get("status") or {}).get("phase") or "None"
            phases[found] = phases.get(found, 0) + 1
        if counts and {k: v for k, v in counts.items() if v} != phases:
            self.problems.append(f"status.taskCounts {counts} but the Tasks are {phases}")

    def count_figures(self) -> None:
        FIGURES.add("jobs_seen", len(self.jobs))
        FIGURES.add("duplicate_jobs", self.duplicates)
        FIGURES.add("lost_tasks", self.lost)
        FIGURES.add("incomplete_histories", self.incomplete)


def _job_ended(job: Any) -> bool:
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return True
    return False


def layered_nodes(
    count: int,
    layers: int,
    failing: set[str],
    fail_label: str,
    name: Callable[[int], str] = lambda i: f"t{i:02d}",
) -> list[dict[str, Any]]:
    """`count` script nodes in `layers` layers; each node after the first layer depends
    on two nodes of the layer before and starts once they are done (allDone), so a
    failure does not hide the rest of the plan. `failing` nodes fail every attempt."""
    per_layer = -(-count // layers)
    nodes: list[dict[str, Any]] = []
    for i in range(count):
        layer, place = divmod(i, per_layer)
        node: dict[str, Any] = {"name": name(i), "script": {"name": "step"}}
        if layer:
            before = [(layer - 1) * per_layer + (place + k) % per_layer for k in (0, 1)]
            node["dependsOn"] = sorted({name(j) for j in before if j < count})
            node["trigger"] = "allDone"
        if node["name"] in failing:
            node["podMetadata"] = {"labels": {fail_label: "true"}}
        nodes.append(node)
    return nodes


TERMINAL_RUN = TERMINAL
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 300) -> str:
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

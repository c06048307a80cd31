"""Where attempts run. `jobs`: one Kubernetes Job each (the default). `local`: a process of
the operator's machine (host.processes), for development clusters without a kubelet.
Child flows are Runs. All three answer the same three questions: start, stop, and how
is it going."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kascade.api import RunPhase
from kascade.engine.attempts import Observation, Progress
from kascade.engine.errors import KascadeError
from kascade.engine.launch import Launch
from kascade.host.ports import StartFailed
from kascade.host.processes import ProcessRunner, attempt_file
from kascade.operator.facts import JobFacts, job_outcome
from kascade.operator.jobs import ClusterAttempt, job_body
from kascade.operator.kube import Kube, KubeError
from kascade.operator.labels import API_VERSION, owner_reference, run_labels
from kascade.operator.projects import ProjectCache


class Executor(Protocol):
    """Runs attempts somewhere and reports on them."""

    async def start(self, attempt: ClusterAttempt, launch: Launch) -> str | None: ...

    async def stop(self, attempt: ClusterAttempt, reason: str) -> None: ...

    def observe(self, attempt: ClusterAttempt) -> Observation: ...


IndexLookup = Callable[[tuple[str, str]], Iterable[Any]]


class JobsExecutor:
    """Attempts as Kubernetes Jobs, observed through the jobs and pods indexes (both keyed
    by namespace and Job name). A Job's events wake its run; by the time a Job is
    Complete or Failed its pod's termination is already indexed."""

    def __init__(self, kube: Kube, image: str, jobs: IndexLookup, pods: IndexLookup) -> None:
        self.kube = kube
        self.image = image
        self.jobs = jobs
        self.pods = pods

    async def start(self, attempt: ClusterAttempt, launch: Launch) -> str | None:
        try:
            body = job_body(attempt, launch, self.image)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise StartFailed(f"the Job could not be made: {type(err).__name__}: {err}") from err
        try:
            await self.kube.create_job(attempt.namespace, body)
        except KubeError as err:
            if err.permanent:
                raise StartFailed(f"the API server refused the Job: {err}") from err
            raise
        return None

    async def stop(self, attempt: ClusterAttempt, reason: str) -> None:
        await self.kube.delete_job(attempt.namespace, attempt.job)

    def observe(self, attempt: ClusterAttempt) -> Observation:
        key = (attempt.namespace, attempt.job)
        job: JobFacts | None = next(iter(self.jobs(key)), None)
        return job_outcome(job, list(self.pods(key)))


def local_attempts_dir(state_dir: Path, namespace: str, run: str) -> Path:
    """Where the local executor keeps the logs and outputs of a run's attempts."""
    return state_dir / "attempts" / namespace / run


def local_attempt_log(state_dir: Path, namespace: str, run: str, task: str, attempt: int) -> Path:
    """The log file of one attempt the local executor ran."""
    return attempt_file(local_attempts_dir(state_dir, namespace, run), task, attempt, "log")


class LocalExecutor:
    """Attempts as processes of this machine running the task runtime, for clusters where
    nothing runs pods (kwok). The project comes unpacked from its ConfigMap."""

    def __init__(
        self,
        state_dir: Path,
        wake: Callable[[str, str], None],
        projects: ProjectCache,
    ) -> None:
        self.state_dir = state_dir
        self.wake = wake
        self.projects = projects
        self.processes = ProcessRunner("the local executor")

    async def start(self, attempt: ClusterAttempt, launch: Launch) -> str | None:
        try:
            project = await self.projects.fetch(attempt.namespace, attempt.project_config_map)
        except KascadeError as err:
            raise StartFailed(str(err)) from err
        log = await self.processes.start(
            attempt.job,
            launch,
            project=project,
            folder=local_attempts_dir(self.state_dir, attempt.namespace, attempt.run),
            owner=f"{attempt.namespace}/{attempt.run}",
            on_end=lambda: self.wake(attempt.namespace, attempt.run),
        )
        return str(log)

    async def stop(self, attempt: ClusterAttempt, reason: str) -> None:
        self.processes.stop(attempt.job)

    def observe(self, attempt: ClusterAttempt) -> Observation:
        return self.processes.observe(attempt.job)

    def stop_run(self, namespace: str, run: str) -> None:
        """Kill the processes of a run that is gone."""
        self.processes.stop_all(owner=f"{namespace}/{run}", force=True)

    def run_ended(self, namespace: str, run: str) -> None:
        """Forget the ended attempts of a finished run."""
        self.processes.forget(f"{namespace}/{run}")

    async def close(self) -> None:
        """The operator stops: kill every process."""
        self.processes.stop_all(force=True)
        await self.processes.close()


@dataclass(frozen=True)
class RunFacts:
    """The part of a Run others need: its flow, phase, times and abort flag."""

    name: str
    namespace: str
    flow: str
    phase: RunPhase | None
    created: datetime | None
    started: datetime | None
    finished: datetime | None
    abort: bool
    type: str
    parent: str | None
    phase_since: datetime | None = None


class ChildRunExecutor:
    """A flow task: one child Run per attempt (type SUBFLOW, its parent recorded). With
    `wait` the attempt ends with the child run; without, once the child exists."""

    def __init__(self, kube: Kube, runs: IndexLookup) -> None:
        self.kube = kube
        self.runs = runs

    async def start(self, attempt: ClusterAttempt, launch: Launch) -> str | None:
        body = {
            "apiVersion": API_VERSION,
            "kind": "Run",
            "metadata": {
                "name": attempt.job,
                "namespace": attempt.namespace,
                "labels": run_labels(attempt.run, attempt.flow),
                "ownerReferences": [owner_reference("Task", attempt.task_object, attempt.task_uid)],
            },
            "spec": {
                "flowRef": {"name": launch.target},
                "type": "SUBFLOW",
                "parent": {"run": attempt.run, "task": attempt.task_id},
                "parameters": dict(launch.parameters),
            },
        }
        try:
            await self.kube.create("runs", attempt.namespace, body)
        except KubeError as err:
            if err.permanent:
                raise StartFailed(f"the API server refused the child Run: {err}") from err
            raise
        return None

    async def stop(self, attempt: ClusterAttempt, reason: str) -> None:
        await self.kube.patch_spec("runs", attempt.namespace, attempt.job, {"abort": True})

    def observe(self, attempt: ClusterAttempt) -> Observation:
        child = next(
            (r for r in self.runs((attempt.namespace, attempt.target)) if r.name == attempt.job),
            None,
        )
        if child is None:
            return Observation(Progress.UNSEEN)
        if not attempt.wait:
            return Observation(
                Progress.ENDED,
                child.created,
                child.created,
                0,
                "Started",
                f"child run {child.name} started",
            )
        if child.phase in (
            RunPhase.SUCCEEDED,
            RunPhase.FAILED,
            RunPhase.ABORTED,
            RunPhase.TIMED_OUT,
        ):
            code = 0 if child.phase == RunPhase.SUCCEEDED else 1
            return Observation(
                Progress.ENDED,
                child.started or child.created,
                child.finished,
                code,
                child.phase.value,
                f"child run {child.name} {child.phase.value}",
            )
        return Observation(Progress.RUNNING, started=child.created)

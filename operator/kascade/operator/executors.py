"""Where attempts run. `jobs`: one Kubernetes Job each (the default). `local`: a process of
the operator's machine, for development clusters without a kubelet. Child flows are Runs.
All three answer the same three questions: start, stop, and how is it going."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kascade.api import RunPhase
from kascade.engine.errors import KascadeError
from kascade.engine.runstate import KILL_REASONS
from kascade.local.processes import KILL_GRACE_SECONDS, runtime_command, tail
from kascade.operator.facts import JobFacts, Outcome, Progress, job_outcome
from kascade.operator.jobs import Launch, job_body
from kascade.operator.kube import Kube
from kascade.operator.preparation import ProjectCache
from kascade.runtime import contract
from kascade.runtime.outputs import read_published


class StartFailed(Exception):
    """An attempt that could not be started; the message names the cause."""


class Executor(Protocol):
    """Runs attempts somewhere and reports on them."""

    async def start(self, launch: Launch) -> None: ...

    async def stop(self, launch: Launch, reason: str) -> None: ...

    def outcome(self, launch: Launch) -> Outcome: ...


IndexLookup = Callable[[tuple[str, str]], Iterable[Any]]


def index_lookup(index: Mapping[Any, Iterable[Any]]) -> IndexLookup:
    """Values of a kopf index under a key (none when the key is absent)."""

    def lookup(key: tuple[str, str]) -> Iterable[Any]:
        return index.get(key, ())

    return lookup


class JobsExecutor:
    """Attempts as Kubernetes Jobs, observed through the jobs and pods indexes (both keyed
    by namespace and Job name). A Job's events wake its run; by the time a Job is
    Complete or Failed its pod's termination is already indexed."""

    def __init__(self, kube: Kube, image: str, jobs: IndexLookup, pods: IndexLookup) -> None:
        self.kube = kube
        self.image = image
        self.jobs = jobs
        self.pods = pods

    async def start(self, launch: Launch) -> None:
        from kascade.operator.kube import KubeError

        try:
            await self.kube.create_job(launch.namespace, job_body(launch, self.image))
        except KubeError as err:
            if err.status in (400, 403, 422):
                raise StartFailed(f"the Job was refused: {err}") from err
            raise

    async def stop(self, launch: Launch, reason: str) -> None:
        await self.kube.delete_job(launch.namespace, launch.job)

    def outcome(self, launch: Launch) -> Outcome:
        key = (launch.namespace, launch.job)
        job: JobFacts | None = next(iter(self.jobs(key)), None)
        return job_outcome(job, list(self.pods(key)))


@dataclass
class _Process:
    run: tuple[str, str]
    process: asyncio.subprocess.Process
    log: Path
    published: Path
    started: datetime
    outcome: Outcome | None = None
    kill_reason: str | None = None


class LocalExecutor:
    """Attempts as processes of this machine running the task runtime, for clusters where
    nothing runs pods (kwok). The project comes unpacked from its ConfigMap."""

    def __init__(
        self,
        state_dir: Path,
        warehouse: str,
        wake: Callable[[str, str], None],
        projects: ProjectCache,
    ) -> None:
        self.state_dir = state_dir
        self.warehouse = warehouse
        self.wake = wake
        self.projects = projects
        self.processes: dict[str, _Process] = {}

    async def start(self, launch: Launch) -> None:
        if launch.job in self.processes:
            return
        folder = self.state_dir / "attempts" / launch.namespace / launch.run
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"{launch.task_id}.{launch.attempt}.log"
        published = folder / f"{launch.task_id}.{launch.attempt}.published"
        env = dict(os.environ)
        for var in launch.env:
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif var["name"] not in os.environ:
                raise StartFailed(
                    f"env `{var['name']}` comes from valueFrom, which the local executor cannot "
                    "read"
                )
        try:
            project = await self.projects.fetch(launch.namespace, launch.project_config_map)
        except KascadeError as err:
            raise StartFailed(str(err)) from err
        env.update(
            {
                contract.WAREHOUSE: env.get(contract.WAREHOUSE) or self.warehouse,
                contract.RUN: launch.run,
                contract.TASK: launch.task_id,
                contract.FLOW: launch.flow,
                contract.PROJECT: str(project),
                contract.OUTPUTS: str(folder / f"{launch.task_id}.{launch.attempt}.outputs"),
                contract.TERMINATION_LOG: str(published),
            }
        )
        command = runtime_command(launch.kind, launch.target, launch.args)
        with open(log, "ab") as out:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    cwd=project,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as err:
                raise StartFailed(f"cannot start the task process: {err}") from err
        handle = _Process(
            (launch.namespace, launch.run), process, log, published, datetime.now(UTC)
        )
        self.processes[launch.job] = handle
        asyncio.get_running_loop().create_task(self._watch(launch, handle))

    async def _watch(self, launch: Launch, handle: _Process) -> None:
        code = await handle.process.wait()
        exit_code = 128 - code if code < 0 else code
        ended = datetime.now(UTC)
        if handle.kill_reason is not None:
            handle.outcome = Outcome(
                Progress.ENDED,
                handle.started,
                ended,
                exit_code,
                handle.kill_reason,
                tail(handle.log),
            )
        elif exit_code == 0:
            handle.outcome = Outcome(
                Progress.ENDED,
                handle.started,
                ended,
                0,
                "Completed",
                None,
                read_published(handle.published),
            )
        else:
            handle.outcome = Outcome(
                Progress.ENDED, handle.started, ended, exit_code, "Error", tail(handle.log)
            )
        self.wake(launch.namespace, launch.run)

    async def stop(self, launch: Launch, reason: str) -> None:
        handle = self.processes.get(launch.job)
        if handle is None or handle.outcome is not None or handle.kill_reason is not None:
            return
        handle.kill_reason = reason if reason in KILL_REASONS else "Aborted"
        _signal(handle.process.pid, signal.SIGTERM)
        asyncio.get_running_loop().call_later(
            KILL_GRACE_SECONDS, _signal, handle.process.pid, signal.SIGKILL
        )

    def outcome(self, launch: Launch) -> Outcome:
        handle = self.processes.get(launch.job)
        if handle is None:
            return Outcome(Progress.UNSEEN)
        return handle.outcome or Outcome(Progress.RUNNING, started=handle.started)

    def stop_all(self, run: tuple[str, str] | None = None) -> None:
        """Kill every process (of one run, or all when the operator goes away)."""
        for handle in self.processes.values():
            if handle.outcome is None and (run is None or handle.run == run):
                _signal(handle.process.pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


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

    async def start(self, launch: Launch) -> None:
        from kascade.operator.labels import API_VERSION, owner_reference, run_labels

        body = {
            "apiVersion": API_VERSION,
            "kind": "Run",
            "metadata": {
                "name": launch.job,
                "namespace": launch.namespace,
                "labels": run_labels(launch.run, launch.flow),
                "ownerReferences": [owner_reference("Task", launch.task_object, launch.task_uid)],
            },
            "spec": {
                "flowRef": {"name": launch.target},
                "type": "SUBFLOW",
                "parent": {"run": launch.run, "task": launch.task_id},
                "parameters": launch.parameters,
            },
        }
        await self.kube.create("runs", launch.namespace, body)

    async def stop(self, launch: Launch, reason: str) -> None:
        await self.kube.patch_spec("runs", launch.namespace, launch.job, {"abort": True})

    def outcome(self, launch: Launch) -> Outcome:
        child = next(
            (r for r in self.runs((launch.namespace, launch.target)) if r.name == launch.job), None
        )
        if child is None:
            return Outcome(Progress.UNSEEN)
        if not launch.spec.get("wait", True):
            return Outcome(
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
            return Outcome(
                Progress.ENDED,
                child.started or child.created,
                child.finished,
                code,
                child.phase.value,
                f"child run {child.name} {child.phase.value}",
            )
        return Outcome(Progress.RUNNING, started=child.created)

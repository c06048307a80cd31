"""Warm dbt workers: the dbt attempts (model, seed, snapshot, test) a host runs go to a
long-lived `python -m kascade.runtime.dbtworker` process instead of a process each. A
worker parses the project once and runs the resources it is asked for concurrently, in
one process, so that starting dbt costs once per run and not once per task, and an
embedded DuckDB file (one writing process at a time) does not serialize the run.

One worker per project, warehouse, dbt vars and environment (what a worker is started
with); it speaks JSON lines (`runtime/dbtworker.py`): `run` and `cancel` requests in,
`ready` and `done` events out. A worker that fails to start, or ends while attempts
run, ends those attempts with its reason; the next attempt starts a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kascade.api import TaskType
from kascade.contract import env as contract_env
from kascade.engine.attempts import Observation, Progress
from kascade.host.logtail import tail

DBT_KINDS = frozenset({TaskType.MODEL, TaskType.SEED, TaskType.SNAPSHOT, TaskType.TEST})
WORKER_SWITCH = "KASCADE_DBT_WORKER"
"""Set to 0 to run every dbt attempt as a process of its own (no warm worker)."""
_PER_ATTEMPT = frozenset({contract_env.TASK, contract_env.OUTPUTS, contract_env.TERMINATION_LOG})
"""Variables that differ between the attempts one worker runs: not given to a worker."""
_STOP_GRACE_SECONDS = 10.0
_LINE_LIMIT = 1 << 20


def workers_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether dbt attempts go to warm workers (the default)."""
    return env.get(WORKER_SWITCH, "1") not in ("0", "false", "no")


@dataclass
class _Request:
    key: str
    started: datetime
    owner: str
    observation: Observation | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    on_end: Callable[[], None] | None = None
    worker: _Worker | None = None
    """The worker the attempt was sent to."""


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    log: Path
    ready: asyncio.Future[str | None]
    requests: dict[str, _Request] = field(default_factory=dict)
    owners: set[str] = field(default_factory=set)


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """An attempt's environment without what is its own (its task id, its files)."""
    return {name: value for name, value in env.items() if name not in _PER_ATTEMPT}


def worker_identity(project: Path, env: Mapping[str, str], args: tuple[str, ...]) -> str:
    """What a worker is started with, as one string: two attempts share a worker when
    they agree on the project, the environment (run and warehouse included) and the vars."""
    return json.dumps([str(project), sorted(worker_env(env).items()), vars_of(args)])


def vars_of(args: tuple[str, ...]) -> str | None:
    """The `--vars` value of a dbt attempt's arguments, if any."""
    for index, arg in enumerate(args):
        if arg == "--vars" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--vars="):
            return arg[len("--vars=") :]
    return None


class DbtWorkers:
    """The warm dbt workers of one host process, and the attempts they run."""

    def __init__(self, register: Callable[[int], None], unregister: Callable[[int], None]) -> None:
        self.register = register
        self.unregister = unregister
        self.workers: dict[str, _Worker] = {}
        self.requests: dict[str, _Request] = {}
        self._spawning = asyncio.Lock()
        self._readers: set[asyncio.Task[None]] = set()

    def knows(self, key: str) -> bool:
        """Whether this attempt was sent to a worker."""
        return key in self.requests

    async def start(
        self,
        key: str,
        kind: TaskType,
        target: str,
        args: tuple[str, ...],
        *,
        env: Mapping[str, str],
        project: Path,
        folder: Path,
        log: Path,
        owner: str,
        on_end: Callable[[], None] | None,
    ) -> None:
        """Send an attempt to the worker for its project, env and vars (started if none
        runs, its log in `folder`, which exists). The attempt ends when the worker says so
        (observe)."""
        if key in self.requests:
            return
        request = _Request(key, datetime.now(UTC), owner, on_end=on_end)
        self.requests[key] = request
        identity = worker_identity(project, env, args)
        async with self._spawning:  # attempts started together share one new worker
            worker = self.workers.get(identity)
            if worker is None or worker.process.returncode is not None:
                worker = await self._spawn(identity, args, env=env, project=project, folder=folder)
        worker.requests[key] = request
        request.worker = worker
        worker.owners.add(owner)
        failure = await asyncio.shield(worker.ready)
        if failure is not None:
            self._end(worker, key, 2, failure, None)
            return
        message = {
            "op": "run",
            "id": key,
            "kind": kind.value,
            "name": target,
            "args": list(args),
            "log": str(log),
        }
        if not self._send(worker, message):
            self._end(worker, key, 1, "the dbt worker is gone; the attempt could not start", None)

    def observe(self, key: str) -> Observation:
        """How an attempt sent to a worker stands."""
        request = self.requests.get(key)
        if request is None:
            return Observation(Progress.UNSEEN)
        return request.observation or Observation(Progress.RUNNING, started=request.started)

    def stop(self, key: str) -> None:
        """Ask the worker to cancel an attempt (it answers with exit code 143)."""
        request = self.requests.get(key)
        if request is None or request.observation is not None or request.worker is None:
            return
        self._send(request.worker, {"op": "cancel", "id": key})

    def stop_all(self, owner: str | None = None, force: bool = False) -> None:
        """Cancel every running attempt (of one owner); `force` kills the workers."""
        for key, request in list(self.requests.items()):
            if owner is None or request.owner == owner:
                self.stop(key)
        if force:
            for worker in self.workers.values():
                _kill(worker.process.pid)

    def forget(self, owner: str) -> None:
        """Drop the ended attempts of an owner (its run is over), and end the workers
        only it used once they are idle."""
        for key, request in list(self.requests.items()):
            if request.owner == owner and request.observation is not None:
                del self.requests[key]
        for identity, worker in list(self.workers.items()):
            worker.owners.discard(owner)
            if not worker.owners and not worker.requests:
                del self.workers[identity]
                self._close_input(worker)

    async def wait_all(self) -> None:
        """Until every attempt sent to a worker has ended."""
        await asyncio.gather(*(request.done.wait() for request in self.requests.values()))

    async def close(self) -> None:
        """End every worker: stdin closes (a worker cancels what still runs and exits), and
        a worker that does not exit in time is killed."""
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            self._close_input(worker)
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), _STOP_GRACE_SECONDS)
            except TimeoutError:
                _kill(worker.process.pid)
                with contextlib.suppress(ProcessLookupError):
                    await worker.process.wait()
        # the readers end with their workers' output; a worker ended earlier (forget) too
        if self._readers:
            await asyncio.wait(list(self._readers), timeout=_STOP_GRACE_SECONDS)

    async def _spawn(
        self,
        identity: str,
        args: tuple[str, ...],
        *,
        env: Mapping[str, str],
        project: Path,
        folder: Path,
    ) -> _Worker:
        log = folder / f"dbt-worker.{len(self.workers) + 1}.log"
        command = [sys.executable, "-m", "kascade.runtime.dbtworker"]
        chosen = vars_of(args)
        if chosen is not None:
            command += ["--vars", chosen]
        with open(log, "ab") as errors:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=project,
                env=worker_env(env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        self.register(process.pid)
        worker = _Worker(process, log, asyncio.get_running_loop().create_future())
        self.workers[identity] = worker
        reader = asyncio.get_running_loop().create_task(self._read(worker))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return worker

    async def _read(self, worker: _Worker) -> None:
        """Follow a worker's events until it ends; then end what it still ran."""
        stdout = worker.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue  # an over-long line is no event of ours
            if not line:
                break
            self._event(worker, line)
        code = await worker.process.wait()
        self.unregister(worker.process.pid)
        reason = _ended_reason(code, worker.log)
        if not worker.ready.done():
            worker.ready.set_result(reason)
        for key in list(worker.requests):
            self._end(worker, key, 1, reason, None)

    def _event(self, worker: _Worker, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "ready" and not worker.ready.done():
            worker.ready.set_result(None)
        elif kind == "failed" and not worker.ready.done():
            worker.ready.set_result(str(event.get("message") or "the dbt worker could not start"))
        elif kind == "done" and isinstance(event.get("id"), str):
            code = event.get("exit")
            outputs = event.get("outputs")
            self._end(
                worker,
                event["id"],
                code if isinstance(code, int) else 1,
                event.get("message") if isinstance(event.get("message"), str) else None,
                outputs if isinstance(outputs, dict) else None,
            )

    def _end(
        self,
        worker: _Worker,
        key: str,
        exit_code: int,
        message: str | None,
        outputs: dict[str, Any] | None,
    ) -> None:
        request = worker.requests.pop(key, None)
        if request is None or request.observation is not None:
            return
        request.observation = Observation(
            Progress.ENDED,
            started=request.started,
            ended=datetime.now(UTC),
            exit_code=exit_code,
            reason="Completed" if exit_code == 0 else "Error",
            message=None if exit_code == 0 else message,
            outputs=(outputs or {}) if exit_code == 0 else None,
        )
        request.done.set()
        if request.on_end is not None:
            request.on_end()

    @staticmethod
    def _close_input(worker: _Worker) -> None:
        """EOF: the worker cancels what it still runs and exits."""
        if worker.process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                worker.process.stdin.close()

    @staticmethod
    def _send(worker: _Worker, message: dict[str, Any]) -> bool:
        stdin = worker.process.stdin
        if stdin is None or worker.process.returncode is not None or stdin.is_closing():
            return False
        try:
            stdin.write((json.dumps(message) + "\n").encode("utf-8"))
        except (ConnectionError, RuntimeError):
            return False
        return True


def _ended_reason(code: int, log: Path) -> str:
    """Why a worker's attempts ended with it: its exit and the end of its log."""
    shown = f"signal {-code}" if code < 0 else f"exit code {code}"
    last = tail(log)
    return f"the dbt worker ended ({shown})" + (f": {last}" if last else "")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)

"""Attempts as processes of this machine, for the local runner and the operator's local
executor: `python -m kascade.runtime KIND NAME -- ARGS` in the project folder, each in a
process group of its own, output to a log file, outputs through a file standing in for
the termination message. A guardian process kills every group still running when the
process that started them ends, however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kascade.contract import env as contract_env
from kascade.contract.outputs import read_published
from kascade.engine.attempts import Observation, Progress
from kascade.engine.launch import Launch
from kascade.engine.naming import label_value
from kascade.host.dbtworkers import DBT_KINDS, DbtWorkers, workers_enabled
from kascade.host.logtail import tail
from kascade.host.ports import StartFailed

KILL_GRACE_SECONDS = 5.0


def attempt_file(folder: Path, task: str, attempt: int, suffix: str) -> Path:
    """A per-attempt file: `log`, `outputs` (what the task writes), `published`."""
    return folder / f"{label_value(task)}.{attempt}.{suffix}"


def runtime_command(kind: str, target: str, args: Sequence[str]) -> list[str]:
    """The command of one task attempt: the runtime in this same Python."""
    return [sys.executable, "-m", "kascade.runtime", kind, target, "--", *args]


def process_env(launch: Launch, where: str) -> dict[str, str]:
    """This machine's environment with the task's env over it. A value from a Secret or a
    ConfigMap (valueFrom) must already be in this machine's environment."""
    env = dict(os.environ)
    for var in launch.env:
        name = str(var["name"])
        if var.get("value") is not None:
            env[name] = str(var["value"])
        elif name not in os.environ:
            raise StartFailed(
                f"task `{launch.task}`: env `{name}` comes from valueFrom, which {where} "
                f"cannot read: set {name} in your environment"
            )
    env.update(launch.contract)
    return env


@dataclass
class _Process:
    process: asyncio.subprocess.Process
    log: Path
    published: Path
    started: datetime
    owner: str
    observation: Observation | None = None
    stopping: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ProcessRunner:
    """The task processes of one host process, by attempt key."""

    def __init__(self, where: str = "a local run", warm_dbt: bool | None = None) -> None:
        self.where = where
        self.processes: dict[str, _Process] = {}
        self._guardian: asyncio.subprocess.Process | None = None
        self.warm_dbt = workers_enabled() if warm_dbt is None else warm_dbt
        self.workers = DbtWorkers(
            register=lambda pid: self._tell(self._guardian, f"+{pid}"),
            unregister=lambda pid: self._tell(self._guardian, f"-{pid}"),
        )

    async def start(
        self,
        key: str,
        launch: Launch,
        *,
        project: Path,
        folder: Path,
        owner: str = "",
        on_end: Callable[[], None] | None = None,
    ) -> Path:
        """Start an attempt (once per key); returns its log file. StartFailed names why
        it cannot start."""
        log = attempt_file(folder, launch.task, launch.attempt, "log")
        if key in self.processes or self.workers.knows(key):
            return log
        env = process_env(launch, self.where)
        env[contract_env.PROJECT] = str(project)
        if self.warm_dbt and launch.kind in DBT_KINDS:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                await self._guarded()
                await self.workers.start(
                    key,
                    launch.kind,
                    launch.target,
                    launch.args,
                    env=env,
                    project=project,
                    folder=folder,
                    log=log,
                    owner=owner,
                    on_end=on_end,
                )
            except (OSError, ValueError) as err:
                raise StartFailed(
                    f"task `{launch.task}`: cannot start its dbt worker: {err}"
                ) from err
            return log
        published = attempt_file(folder, launch.task, launch.attempt, "published")
        env[contract_env.OUTPUTS] = str(
            attempt_file(folder, launch.task, launch.attempt, "outputs")
        )
        env[contract_env.TERMINATION_LOG] = str(published)
        command = runtime_command(launch.kind.value, launch.target, launch.args)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            guardian = await self._guarded()
            with open(log, "ab") as out:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    cwd=project,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
        except (OSError, ValueError) as err:
            raise StartFailed(f"task `{launch.task}`: cannot start its process: {err}") from err
        self._tell(guardian, f"+{process.pid}")
        handle = _Process(process, log, published, datetime.now(UTC), owner)
        self.processes[key] = handle
        asyncio.get_running_loop().create_task(self._watch(handle, on_end))
        return log

    async def _watch(self, handle: _Process, on_end: Callable[[], None] | None) -> None:
        code = await handle.process.wait()
        self._tell(self._guardian, f"-{handle.process.pid}")
        exit_code = 128 - code if code < 0 else code
        succeeded = exit_code == 0 and not handle.stopping
        handle.observation = Observation(
            Progress.ENDED,
            started=handle.started,
            ended=datetime.now(UTC),
            exit_code=exit_code,
            reason="Completed" if exit_code == 0 else "Error",
            message=None if succeeded else tail(handle.log),
            outputs=read_published(handle.published) if succeeded else None,
        )
        handle.done.set()
        if on_end is not None:
            on_end()

    def observe(self, key: str) -> Observation:
        """How an attempt stands: UNSEEN when this process never started it."""
        if self.workers.knows(key):
            return self.workers.observe(key)
        handle = self.processes.get(key)
        if handle is None:
            return Observation(Progress.UNSEEN)
        return handle.observation or Observation(Progress.RUNNING, started=handle.started)

    def stop(self, key: str, force: bool = False) -> None:
        """SIGTERM to the attempt's process group, SIGKILL after a grace period (at once
        with `force`); an attempt a dbt worker runs is cancelled there."""
        if self.workers.knows(key):
            self.workers.stop(key)
            return
        handle = self.processes.get(key)
        if handle is None or handle.observation is not None:
            return
        if force:
            _signal(handle.process.pid, signal.SIGKILL)
        elif not handle.stopping:
            _signal(handle.process.pid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(
                KILL_GRACE_SECONDS, _signal, handle.process.pid, signal.SIGKILL
            )
        handle.stopping = True

    def stop_all(self, owner: str | None = None, force: bool = False) -> None:
        """Stop every running attempt (of one owner, say a run)."""
        for key, handle in list(self.processes.items()):
            if owner is None or handle.owner == owner:
                self.stop(key, force)
        self.workers.stop_all(owner, force)

    def forget(self, owner: str) -> None:
        """Drop the ended attempts of an owner (its run is over)."""
        for key, handle in list(self.processes.items()):
            if handle.owner == owner and handle.observation is not None:
                del self.processes[key]
        self.workers.forget(owner)

    async def wait_all(self) -> None:
        """Until every started attempt has ended."""
        await asyncio.gather(*(handle.done.wait() for handle in self.processes.values()))
        await self.workers.wait_all()

    async def close(self) -> None:
        """End the dbt workers, then stop the guardian (every attempt has ended, or is
        killed by it now)."""
        await self.workers.close()
        guardian, self._guardian = self._guardian, None
        if guardian is not None and guardian.stdin is not None:
            guardian.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                await guardian.wait()

    async def _guarded(self) -> asyncio.subprocess.Process:
        if self._guardian is None or self._guardian.returncode is not None:
            self._guardian = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "kascade.host.guardian",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        return self._guardian

    @staticmethod
    def _tell(guardian: asyncio.subprocess.Process | None, line: str) -> None:
        if guardian is not None and guardian.stdin is not None and guardian.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                guardian.stdin.write(f"{line}\n".encode("ascii"))


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)

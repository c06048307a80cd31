"""Task processes: start one attempt as `python -m kascade.runtime ...`, stop it, reap it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

KILL_GRACE_SECONDS = 5.0


@dataclass
class TaskProcess:
    """One running attempt."""

    task: str
    attempt: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    published_path: Path
    kill_reason: str | None = None
    kill_sent: float | None = None


@dataclass
class ProcessPool:
    """The attempts running now; `wait` blocks until one ends or a timeout passes."""

    running: dict[str, TaskProcess] = field(default_factory=dict)
    _ended: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)

    def start(
        self,
        task: str,
        attempt: int,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        published_path: Path,
    ) -> TaskProcess:
        """Spawn an attempt in its own process group, output to its log file."""
        log = open(log_path, "ab")  # noqa: SIM115 - closed when the attempt is reaped
        try:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            log.close()
            raise
        handle = TaskProcess(task, attempt, process, log, log_path, published_path)
        self.running[task] = handle
        threading.Thread(target=self._watch, args=(handle,), daemon=True).start()
        return handle

    def _watch(self, handle: TaskProcess) -> None:
        handle.process.wait()
        self._ended.put(handle.task)

    def kill(self, task: str, reason: str) -> None:
        """Ask an attempt to stop (SIGTERM to its group); SIGKILL follows after a grace."""
        handle = self.running.get(task)
        if handle is None or handle.kill_sent is not None:
            return
        handle.kill_reason = reason
        handle.kill_sent = time.monotonic()
        _signal_group(handle.process, signal.SIGTERM)

    def escalate(self) -> None:
        """SIGKILL attempts that ignored SIGTERM for longer than the grace period."""
        now = time.monotonic()
        for handle in self.running.values():
            if handle.kill_sent is not None and now - handle.kill_sent > KILL_GRACE_SECONDS:
                _signal_group(handle.process, signal.SIGKILL)

    def kill_all(self, reason: str, force: bool = False) -> None:
        """Stop every running attempt; `force` sends SIGKILL at once."""
        for task, handle in list(self.running.items()):
            self.kill(task, reason)
            if force:
                _signal_group(handle.process, signal.SIGKILL)

    def wait(self, timeout: float) -> list[TaskProcess]:
        """The attempts that ended, waiting up to `timeout` seconds for the first one."""
        ended: list[TaskProcess] = []
        try:
            ended_task = self._ended.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return ended
        names = [ended_task]
        while True:
            try:
                names.append(self._ended.get_nowait())
            except queue.Empty:
                break
        for name in names:
            handle = self.running.pop(name, None)
            if handle is not None:
                handle.log.close()
                ended.append(handle)
        return ended


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def runtime_command(kind: str, target: str, args: Sequence[str]) -> list[str]:
    """The command of one task attempt: the runtime in this same Python."""
    return [sys.executable, "-m", "kascade.runtime", kind, target, "--", *args]


def tail(path: Path, lines: int = 3, limit: int = 400) -> str:
    """The last non-empty lines of a log, for a task's message."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "…" + joined[-limit:]

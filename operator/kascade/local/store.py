"""The state dir of local runs: <state-dir>/runs/<id>/run.json plus the attempts' logs
and outputs. Every write goes to a temporary file that replaces the record atomically,
so a crash leaves the previous record, never a torn one.

A run's runner holds `runs/<id>/runner.lock` (an flock, released by the kernel however
the runner ends) for as long as it works. A record that is not finished while nobody
holds its lock belongs to a runner that died: `recover` ends it ABORTED (RunnerLost).
Runs on one state dir are independent: each has its own folder and lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from kascade.engine.errors import KascadeError
from kascade.engine.lostruns import end_lost_run
from kascade.engine.runstate import SetRunPhase
from kascade.engine.statemachine import run_is_terminal
from kascade.host.records import RunRecord, state_of, sync_record

RECORD_FILE = "run.json"
LOCK_FILE = "runner.lock"
ATTEMPTS_DIR = "attempts"
# A run id is a DNS-1123 name: it is a folder name, and never a way out of the state dir.
RUN_ID = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
RUN_ID_MAX = 253


class StoreError(KascadeError):
    """A state dir that cannot be used or a record that cannot be read; names the path."""


class RunLock:
    """The lock a run's runner holds while it works (released when closed, or by the
    kernel when the process ends)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        """Let go of the run (it has ended, or the runner stops)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StateDir:
    """The run records of one state dir."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.runs_dir = self.state_dir / "runs"

    def ensure_writable(self) -> None:
        """Create the state dir if needed; StoreError when it cannot be written."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.runs_dir, prefix=".probe-"):
                pass
        except OSError as err:
            raise StoreError(
                f"state dir {self.state_dir} is not writable: {err.strerror or err}"
            ) from err

    def new_id(self, flow: str, now: datetime) -> str:
        """A fresh, sortable run id: <flow>-<UTC time>-<4 hex>."""
        stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        return check_run_id(f"{flow}-{stamp}-{secrets.token_hex(2)}")

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run."""
        return self.runs_dir / check_run_id(run_id)

    def attempts_dir(self, run_id: str) -> Path:
        """Where the attempts of a run keep their logs and outputs."""
        return self.run_dir(run_id) / ATTEMPTS_DIR

    def create(self, record: RunRecord) -> RunLock:
        """Store a new run and hold its lock (for the runner about to work on it)."""
        folder = self.run_dir(record.id)
        try:
            folder.mkdir(parents=True)
        except FileExistsError as err:
            raise StoreError(f"run `{record.id}` exists already in {self.state_dir}") from err
        except OSError as err:
            raise StoreError(f"cannot create {folder}: {err.strerror or err}") from err
        lock = self.lock(record.id)
        if lock is None:  # pragma: no cover - the folder is new: nobody else can hold it
            raise StoreError(f"run `{record.id}` is held by another runner")
        self.save(record)
        return lock

    def lock(self, run_id: str, claim: bool = True) -> RunLock | None:
        """The lock of a run, or None while another process holds it; `claim` writes
        this process's pid into it (a runner about to work on the run)."""
        path = self.run_dir(run_id) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreError(f"cannot open {path}: {err.strerror or err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if claim:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
        return RunLock(fd)

    def save(self, record: RunRecord) -> None:
        """Write a record atomically."""
        folder = self.run_dir(record.id)
        text = json.dumps(record.to_json(), indent=1)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".run-", suffix=".json")
        except OSError as err:
            raise StoreError(f"cannot write run record in {folder}: {err}") from err
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, folder / RECORD_FILE)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StoreError(f"cannot write run record {folder / RECORD_FILE}: {err}") from err

    def load(self, run_id: str) -> RunRecord:
        """Read one record; StoreError names a missing or unreadable record."""
        path = self.run_dir(run_id) / RECORD_FILE
        if not path.is_file():
            known = [r.id for r in self.records()[-5:]]
            hint = f" (recent runs: {', '.join(known)})" if known else ""
            raise StoreError(f"no local run `{run_id}` in {self.state_dir}{hint}")
        return self._read(path)

    def _read(self, path: Path) -> RunRecord:
        try:
            return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError) as err:
            raise StoreError(f"run record {path} cannot be read: {err}") from err

    def records(self) -> list[RunRecord]:
        """Every readable record, oldest first (an unreadable one is left out)."""
        records = []
        for path in self._record_files():
            with contextlib.suppress(StoreError):
                records.append(self._read(path))
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def _record_files(self) -> Iterator[Path]:
        if not self.runs_dir.is_dir():
            return
        for folder in sorted(self.runs_dir.iterdir()):
            if RUN_ID.match(folder.name) and (folder / RECORD_FILE).is_file():
                yield folder / RECORD_FILE

    def recover(self, now: datetime) -> list[RunRecord]:
        """End the unfinished runs whose runner is gone (ABORTED, reason RunnerLost);
        returns them. A run whose runner still works is left alone."""
        ended = []
        for record in self.records():
            if run_is_terminal(record.phase):
                continue
            lock = self.lock(record.id, claim=False)
            if lock is None:
                continue
            try:
                current = self.load(record.id)  # as it is now that nobody else writes it
                if not run_is_terminal(current.phase):
                    end_lost(current, now, _runner_of(self.run_dir(record.id)))
                    self.save(current)
                    ended.append(current)
            finally:
                lock.release()
        return ended

    def add_rerun(self, original: str, rerun: str) -> None:
        """List a rerun on its (finished) original run."""
        record = self.load(original)
        if rerun not in record.reruns:
            record.reruns.append(rerun)
            self.save(record)


def check_run_id(run_id: str) -> str:
    """A run id, checked: StoreError unless it is a DNS-1123 name."""
    if len(run_id) > RUN_ID_MAX or not RUN_ID.match(run_id):
        raise StoreError(
            f"`{run_id}` is not a run id (lowercase letters, digits, `-` and `.`, at most "
            f"{RUN_ID_MAX} characters)"
        )
    return run_id


def end_lost(record: RunRecord, now: datetime, runner: str) -> None:
    """End a record whose runner died, through the engine's rule for lost runs."""
    message = f"its runner{runner} ended without finishing the run; its tasks were stopped"
    decision = end_lost_run(state_of(record), now, message)
    changes = [a for a in decision.actions if isinstance(a, SetRunPhase)]
    touched = {task.id for task in record.tasks}
    sync_record(record, decision.state, now, changes, {}, touched)


def _runner_of(folder: Path) -> str:
    try:
        pid = (folder / LOCK_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""

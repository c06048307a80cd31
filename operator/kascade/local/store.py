"""Run records on disk: <state-dir>/runs/<id>/run.json plus the attempts' logs and
outputs. Every write goes to a temporary file that replaces the record atomically, so a
crash leaves the previous record, never a torn one."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from kascade.engine.errors import KascadeError
from kascade.local.records import RunRecord

RECORD_FILE = "run.json"


class StoreError(KascadeError):
    """A state dir that cannot be used or a record that cannot be read; names the path."""


class RunStore:
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
        return f"{flow}-{stamp}-{secrets.token_hex(2)}"

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run."""
        return self.runs_dir / run_id

    def attempt_file(self, run_id: str, task: str, attempt: int, suffix: str) -> Path:
        """A per-attempt file: `log`, `outputs` (what the task writes), `published`."""
        folder = self.run_dir(run_id) / "attempts"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{task}.{attempt}.{suffix}"

    def save(self, record: RunRecord) -> None:
        """Write a record atomically."""
        folder = self.run_dir(record.id)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(record.to_json(), indent=1)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".run-", suffix=".json")
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
            known = [r.id for r in self.list()[-5:]]
            hint = f" (recent runs: {', '.join(known)})" if known else ""
            raise StoreError(f"no local run `{run_id}` in {self.state_dir}{hint}")
        return self._read(path)

    def _read(self, path: Path) -> RunRecord:
        try:
            return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError) as err:
            raise StoreError(f"run record {path} cannot be read: {err}") from err

    def list(self) -> list[RunRecord]:
        """Every readable record, oldest first (an unreadable one is left out)."""
        if not self.runs_dir.is_dir():
            return []
        records = []
        for path in sorted(self.runs_dir.glob(f"*/{RECORD_FILE}")):
            with contextlib.suppress(StoreError):
                records.append(self._read(path))
        return sorted(records, key=lambda r: (r.created_at, r.id))

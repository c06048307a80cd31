"""Run history retention: which finished runs of a Flow to delete, oldest first, beyond
its successfulRunsHistoryLimit and failedRunsHistoryLimit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kascade.api import RunPhase
from kascade.engine.statemachine import run_is_terminal

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class KeptRun:
    """What retention needs of a run."""

    name: str
    phase: RunPhase | None
    finished: datetime | None
    created: datetime | None
    child: bool = False
    """A SUBFLOW run: it goes with its parent, never by its own flow's limits."""


def runs_to_delete(runs: Sequence[KeptRun], successful_limit: int, failed_limit: int) -> list[str]:
    """Names of the finished runs beyond the limits, oldest first. SUCCEEDED counts
    against the successful limit; FAILED, ABORTED and TIMED_OUT against the failed one."""
    succeeded: list[KeptRun] = []
    failed: list[KeptRun] = []
    for run in runs:
        if run.child or not run_is_terminal(run.phase):
            continue
        (succeeded if run.phase == RunPhase.SUCCEEDED else failed).append(run)
    doomed: list[KeptRun] = []
    for finished, limit in ((succeeded, successful_limit), (failed, failed_limit)):
        finished.sort(key=lambda r: (r.finished or r.created or _EARLIEST, r.name))
        doomed += finished[: max(0, len(finished) - max(0, limit))]
    doomed.sort(key=lambda r: (r.finished or r.created or _EARLIEST, r.name))
    return [run.name for run in doomed]

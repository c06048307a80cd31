"""Admission of queued runs: which may start, oldest first, within the operator-wide and
per-flow limits on active runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueuedRun:
    """A run waiting in QUEUED."""

    key: str
    flow: str
    created: datetime


def admit(
    queued: Sequence[QueuedRun],
    active_by_flow: Mapping[str, int],
    max_active: int | None,
    max_active_per_flow: Mapping[str, int | None],
) -> set[str]:
    """Keys of the queued runs that may start now. Oldest first; a run that does not fit
    its flow's limit does not block younger runs of other flows."""
    active = Counter(active_by_flow)
    total = sum(active.values())
    admitted: set[str] = set()
    for run in sorted(queued, key=lambda r: (r.created, r.key)):
        if max_active is not None and total >= max_active:
            break
        limit = max_active_per_flow.get(run.flow)
        if limit is not None and active[run.flow] >= limit:
            continue
        admitted.add(run.key)
        active[run.flow] += 1
        total += 1
    return admitted

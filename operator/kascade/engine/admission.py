"""Admission of queued runs: which may start, oldest first, within the operator-wide and
per-flow limits on active runs; and, under a Replace concurrency policy, which active
runs must be aborted to make room for the newest queued run of their flow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from kascade.api import ConcurrencyPolicy


@dataclass(frozen=True)
class QueuedRun:
    """A run waiting in QUEUED (or not yet phased)."""

    key: str
    flow: str
    created: datetime


@dataclass(frozen=True)
class ActiveRun:
    """A run that holds a slot: RUNNING, SUCCEEDING, FAILING or ABORTING."""

    key: str
    flow: str


@dataclass(frozen=True)
class FlowLimits:
    """What a Flow says about its active runs."""

    max_active_runs: int | None = None
    policy: ConcurrencyPolicy | None = None

    @property
    def limit(self) -> int | None:
        """Most active runs: maxActiveRuns, and 1 under Forbid or Replace (manual runs
        obey the policy too: they wait instead of running beside a scheduled one)."""
        limit = self.max_active_runs
        if self.policy in (ConcurrencyPolicy.FORBID, ConcurrencyPolicy.REPLACE):
            limit = 1 if limit is None else min(limit, 1)
        return limit


@dataclass(frozen=True)
class Admission:
    """Runs that may start now, and active runs to abort (Replace)."""

    admitted: frozenset[str]
    abort: frozenset[str] = frozenset()


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


def admission(
    queued: Sequence[QueuedRun],
    active: Sequence[ActiveRun],
    max_active: int | None,
    flows: Mapping[str, FlowLimits],
) -> Admission:
    """Which queued runs start now and which active runs a Replace policy aborts: the
    newest queued run of a Replace flow that cannot start has its flow's active runs
    aborted, and starts once they have ended."""
    counts = Counter(run.flow for run in active)
    limits = {flow: limits.limit for flow, limits in flows.items()}
    admitted = admit(queued, counts, max_active, limits)
    abort: set[str] = set()
    for flow, settings in flows.items():
        if settings.policy != ConcurrencyPolicy.REPLACE:
            continue
        waiting = [run for run in queued if run.flow == flow]
        if not waiting:
            continue
        newest = max(waiting, key=lambda run: (run.created, run.key))
        if newest.key not in admitted:
            abort |= {run.key for run in active if run.flow == flow}
    return Admission(frozenset(admitted), frozenset(abort))

"""Trigger rules: what a task does once every one of its upstream tasks has finished.

kascade judges a trigger rule only when all upstream tasks are done (unlike Airflow's
one_failed, which fires early), so a task never starts before its dependencies end.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from kascade.api import TaskPhase, TriggerRule
from kascade.engine.statemachine import TASK_SUCCESSFUL, TASK_TERMINAL, TASK_UNSUCCESSFUL


class Outcome(StrEnum):
    """What a pending task should do now."""

    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstreamFailed"


def trigger_outcome(rule: TriggerRule, upstream: Collection[TaskPhase]) -> Outcome:
    """Judge a trigger rule on the phases of a task's upstream tasks."""
    for phase in upstream:
        if phase not in TASK_TERMINAL:
            return Outcome.WAIT
    if not upstream:
        return Outcome.RUN
    failed = sum(phase in TASK_UNSUCCESSFUL for phase in upstream)
    succeeded = sum(phase in TASK_SUCCESSFUL for phase in upstream)
    if rule == TriggerRule.ALL_SUCCESS:
        if failed:
            return Outcome.UPSTREAM_FAILED
        return Outcome.RUN if succeeded == len(upstream) else Outcome.SKIP
    if rule == TriggerRule.ALL_DONE:
        return Outcome.RUN
    if rule == TriggerRule.ONE_FAILED:
        return Outcome.RUN if failed else Outcome.SKIP
    if rule == TriggerRule.ALL_FAILED:
        return Outcome.RUN if failed == len(upstream) else Outcome.SKIP
    # noneFailed: every upstream succeeded or was skipped
    return Outcome.UPSTREAM_FAILED if failed else Outcome.RUN

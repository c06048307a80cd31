"""Which tasks a rerun reuses."""

from __future__ import annotations

import pytest

from kascade.api import RunType
from kascade.api import TaskPhase as T
from kascade.engine.reruns import RerunError, reused_tasks
from tests.unit.decisions import plan_of, task

PLAN = plan_of(task("a"), task("b", "a"), task("c", "b"), task("d"), task("h", hook="onFailure"))
ORIGINAL = {
    "a": T.SUCCEEDED,
    "b": T.FAILED,
    "c": T.UPSTREAM_FAILED,
    "d": T.REUSED,
    "h": T.SUCCEEDED,
}


def test_rerun_all_reuses_nothing():
    assert reused_tasks(PLAN, ORIGINAL, RunType.RERUN_ALL) == set()


def test_rerun_failed_reuses_what_succeeded_or_was_reused():
    assert reused_tasks(PLAN, ORIGINAL, RunType.RERUN_FAILED) == {"a", "d"}


def test_rerun_task_reuses_the_rest():
    assert reused_tasks(PLAN, ORIGINAL, RunType.RERUN_TASK, "b") == {"a", "c", "d"}


def test_rerun_task_downstream_also_reruns_descendants():
    assert reused_tasks(PLAN, ORIGINAL, RunType.RERUN_TASK, "a", downstream=True) == {"d"}


def test_unknown_task_is_named():
    with pytest.raises(RerunError, match="task `zz` is not in the run"):
        reused_tasks(PLAN, ORIGINAL, RunType.RERUN_TASK, "zz")
    with pytest.raises(RerunError, match="MANUAL is not a rerun type"):
        reused_tasks(PLAN, ORIGINAL, RunType.MANUAL)

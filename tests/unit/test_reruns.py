"""Rerun rules: which runs may be rerun, which tasks a rerun reuses, what a reused task
says."""

from __future__ import annotations

import pytest

from kascade.api import RunPhase, RunType
from kascade.api import TaskPhase as T
from kascade.engine.reruns import (
    RerunError,
    check_rerun_task,
    check_rerunnable,
    reuse,
    reused_tasks,
)
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


@pytest.mark.parametrize(
    ("phase", "refused"),
    [
        (None, "is not started"),
        (RunPhase.SCHEDULED, "is SCHEDULED"),
        (RunPhase.QUEUED, "is QUEUED"),
        (RunPhase.RUNNING, "is RUNNING"),
        (RunPhase.SUCCEEDING, "is SUCCEEDING"),
        (RunPhase.FAILING, "is FAILING"),
        (RunPhase.ABORTING, "is ABORTING"),
        (RunPhase.SUCCEEDED, None),
        (RunPhase.FAILED, None),
        (RunPhase.ABORTED, None),
        (RunPhase.TIMED_OUT, None),
    ],
)
def test_only_a_finished_run_can_be_rerun(phase, refused):
    if refused is None:
        check_rerunnable("r1", phase)
        return
    with pytest.raises(RerunError) as caught:
        check_rerunnable("r1", phase)
    assert str(caught.value) == (
        f"run `r1` {refused}; only a finished run can be rerun "
        "(wait for it to end, or abort it first)"
    )


def test_a_rerun_task_must_be_a_task_of_the_run():
    check_rerun_task("r1", "b", ["a", "b"])
    with pytest.raises(RerunError, match=r"run `r1` has no task `zz` \(tasks: a, b\)"):
        check_rerun_task("r1", "zz", ["b", "a"])
    with pytest.raises(RerunError, match="has no task `None`"):
        check_rerun_task("r1", None, ["a"])


@pytest.mark.parametrize(
    ("original", "reused_before", "origin"),
    [
        ("run-1", None, "run-1"),  # a rerun of the run that made the result
        ("run-2", "run-1", "run-1"),  # a rerun of a rerun names the run that made it
    ],
)
def test_a_reused_task_names_the_run_that_made_its_result(original, reused_before, origin):
    taken = reuse(original, reused_before)
    assert taken.reused_from == origin
    assert taken.reason == "Reused"
    assert taken.message == f"result of run {origin}"

"""Every Run and Task transition, allowed or not, against the specification's tables."""

from __future__ import annotations

import itertools

import pytest

from kascade.api import RunPhase as R
from kascade.api import TaskPhase as T
from kascade.engine.errors import TransitionError
from kascade.engine.statemachine import (
    check_run_transition,
    check_task_transition,
    run_is_terminal,
    task_is_terminal,
)

# Written out independently of the code, from PRODUCT.md section 3.
RUN_ALLOWED = {
    (None, R.SCHEDULED),
    (None, R.QUEUED),
    (R.SCHEDULED, R.QUEUED),
    (R.SCHEDULED, R.ABORTED),
    (R.QUEUED, R.RUNNING),
    (R.QUEUED, R.FAILED),
    (R.QUEUED, R.ABORTED),
    (R.RUNNING, R.SUCCEEDING),
    (R.RUNNING, R.FAILING),
    (R.RUNNING, R.ABORTING),
    (R.RUNNING, R.TIMED_OUT),
    (R.SUCCEEDING, R.SUCCEEDED),
    (R.SUCCEEDING, R.FAILED),
    (R.SUCCEEDING, R.ABORTING),
    (R.SUCCEEDING, R.TIMED_OUT),
    (R.FAILING, R.FAILED),
    (R.FAILING, R.ABORTING),
    (R.FAILING, R.TIMED_OUT),
    (R.ABORTING, R.ABORTED),
}
TASK_ALLOWED = {
    (None, T.PENDING),
    (None, T.REUSED),
    (T.PENDING, T.QUEUED),
    (T.PENDING, T.RUNNING),
    (T.PENDING, T.UPSTREAM_FAILED),
    (T.PENDING, T.SKIPPED),
    (T.PENDING, T.ABORTED),
    (T.QUEUED, T.RUNNING),
    (T.QUEUED, T.ABORTED),
    (T.RUNNING, T.SUCCEEDED),
    (T.RUNNING, T.FAILED),
    (T.RUNNING, T.RETRYING),
    (T.RUNNING, T.ABORTED),
    (T.RUNNING, T.TIMED_OUT),
    (T.RETRYING, T.QUEUED),
    (T.RETRYING, T.RUNNING),
    (T.RETRYING, T.ABORTED),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product([None, *R], list(R))))
def test_run_transition(old, new):
    if (old, new) in RUN_ALLOWED:
        check_run_transition(old, new)
    else:
        with pytest.raises(TransitionError, match="illegal Run transition"):
            check_run_transition(old, new)


@pytest.mark.parametrize(("old", "new"), list(itertools.product([None, *T], list(T))))
def test_task_transition(old, new):
    if (old, new) in TASK_ALLOWED:
        check_task_transition(old, new)
    else:
        with pytest.raises(TransitionError, match="illegal Task transition"):
            check_task_transition(old, new)


def test_terminal_phases():
    assert {p for p in R if run_is_terminal(p)} == {R.SUCCEEDED, R.FAILED, R.ABORTED, R.TIMED_OUT}
    assert {p for p in T if task_is_terminal(p)} == {
        T.SUCCEEDED,
        T.FAILED,
        T.UPSTREAM_FAILED,
        T.SKIPPED,
        T.REUSED,
        T.ABORTED,
        T.TIMED_OUT,
    }

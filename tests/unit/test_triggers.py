"""Trigger rules, judged on the phases of a task's upstream tasks."""

from __future__ import annotations

import pytest

from kascade.api import TaskPhase as T
from kascade.api import TriggerRule as Rule
from kascade.engine.triggers import Outcome as O
from kascade.engine.triggers import trigger_outcome

OK, FAIL, SKIP, UPF, TIME, REUSED = (
    T.SUCCEEDED,
    T.FAILED,
    T.SKIPPED,
    T.UPSTREAM_FAILED,
    T.TIMED_OUT,
    T.REUSED,
)


@pytest.mark.parametrize(
    ("rule", "upstream", "outcome"),
    [
        (Rule.ALL_SUCCESS, [], O.RUN),
        (Rule.ALL_SUCCESS, [OK, REUSED], O.RUN),
        (Rule.ALL_SUCCESS, [OK, T.RUNNING], O.WAIT),
        (Rule.ALL_SUCCESS, [OK, T.RETRYING], O.WAIT),
        (Rule.ALL_SUCCESS, [OK, FAIL], O.UPSTREAM_FAILED),
        (Rule.ALL_SUCCESS, [OK, UPF], O.UPSTREAM_FAILED),
        (Rule.ALL_SUCCESS, [TIME], O.UPSTREAM_FAILED),
        (Rule.ALL_SUCCESS, [OK, SKIP], O.SKIP),
        (Rule.ALL_DONE, [OK, FAIL, SKIP], O.RUN),
        (Rule.ALL_DONE, [FAIL, T.PENDING], O.WAIT),
        (Rule.ONE_FAILED, [OK, FAIL], O.RUN),
        (Rule.ONE_FAILED, [FAIL, T.RUNNING], O.WAIT),
        (Rule.ONE_FAILED, [OK, SKIP], O.SKIP),
        (Rule.ALL_FAILED, [FAIL, UPF, TIME], O.RUN),
        (Rule.ALL_FAILED, [FAIL, OK], O.SKIP),
        (Rule.NONE_FAILED, [OK, SKIP], O.RUN),
        (Rule.NONE_FAILED, [OK, FAIL], O.UPSTREAM_FAILED),
        (Rule.NONE_FAILED, [T.QUEUED], O.WAIT),
        (Rule.ONE_FAILED, [], O.RUN),
    ],
)
def test_trigger_outcome(rule, upstream, outcome):
    assert trigger_outcome(rule, upstream) == outcome

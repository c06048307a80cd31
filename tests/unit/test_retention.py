"""Run history retention: the finished runs a Flow's history limits drop, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kascade.api import RunPhase as R
from kascade.engine.retention import KeptRun, runs_to_delete

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def run(name, phase, minute, child=False, finished=True):
    at = T0 + timedelta(minutes=minute)
    return KeptRun(name, phase, at if finished else None, at, child)


@pytest.mark.parametrize(
    ("runs", "successful", "failed", "deleted"),
    [
        ([], 10, 10, []),
        ([run("a", R.SUCCEEDED, 1), run("b", R.SUCCEEDED, 2)], 1, 10, ["a"]),
        ([run("b", R.SUCCEEDED, 2), run("a", R.SUCCEEDED, 1)], 1, 10, ["a"]),
        ([run("a", R.SUCCEEDED, 1), run("b", R.SUCCEEDED, 2)], 0, 10, ["a", "b"]),
        # FAILED, ABORTED and TIMED_OUT count against the failed limit together.
        (
            [run("a", R.FAILED, 1), run("b", R.ABORTED, 2), run("c", R.TIMED_OUT, 3)],
            10,
            1,
            ["a", "b"],
        ),
        # The two limits are separate.
        ([run("a", R.FAILED, 1), run("b", R.SUCCEEDED, 2)], 1, 1, []),
        # Unfinished runs are never deleted and do not count.
        ([run("a", R.RUNNING, 1, finished=False), run("b", R.SUCCEEDED, 2)], 0, 0, ["b"]),
        ([run("a", None, 1, finished=False)], 0, 0, []),
        # Child runs go with their parents, not by their flow's limits.
        ([run("a", R.SUCCEEDED, 1, child=True)], 0, 0, []),
        # Oldest first across both kinds.
        (
            [run("c", R.FAILED, 3), run("a", R.SUCCEEDED, 1), run("b", R.FAILED, 2)],
            0,
            0,
            ["a", "b", "c"],
        ),
        # A negative limit keeps nothing rather than failing.
        ([run("a", R.SUCCEEDED, 1)], -1, 10, ["a"]),
    ],
)
def test_runs_beyond_the_history_limits(runs, successful, failed, deleted):
    assert runs_to_delete(runs, successful, failed) == deleted


def test_a_run_without_an_end_time_sorts_by_its_creation():
    older = KeptRun("old", R.SUCCEEDED, None, T0)
    newer = KeptRun("new", R.SUCCEEDED, T0 + timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert runs_to_delete([newer, older], 1, 10) == ["old"]

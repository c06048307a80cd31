"""How a run's tasks are summed up: counts by phase, progress, a task's message."""

from __future__ import annotations

import pytest

from kascade.api import TaskPhase as T
from kascade.engine.progress import MESSAGE_LIMIT, progress, task_counts, task_message


@pytest.mark.parametrize(
    ("phases", "shown"),
    [
        ([], "0/0"),
        ([T.PENDING, T.RUNNING], "0/2"),
        ([T.SUCCEEDED, T.RUNNING], "1/2"),
        # Every finished task counts as done, whatever its outcome.
        ([T.SUCCEEDED, T.FAILED, T.UPSTREAM_FAILED, T.SKIPPED, T.REUSED], "5/5"),
        ([T.ABORTED, T.TIMED_OUT, T.RETRYING, T.QUEUED], "2/4"),
    ],
)
def test_progress_counts_finished_tasks(phases, shown):
    assert progress(phases) == shown


def test_counts_name_every_phase_and_add_up():
    counts = task_counts([T.SUCCEEDED, T.SUCCEEDED, T.FAILED])
    assert set(counts) == {phase.value for phase in T}
    assert counts["SUCCEEDED"] == 2
    assert counts["FAILED"] == 1
    assert counts["RUNNING"] == 0
    assert sum(counts.values()) == 3


@pytest.mark.parametrize(
    ("phase", "decided", "attempt", "message"),
    [
        (
            T.FAILED,
            "attempt 1 failed (exit code 3)",
            "boom",
            "attempt 1 failed (exit code 3): boom",
        ),
        (
            T.RETRYING,
            "attempt 1 failed; retry in 30s",
            "boom",
            "attempt 1 failed; retry in 30s: boom",
        ),
        (
            T.TIMED_OUT,
            "attempt 1 exceeded its deadline",
            "slow",
            "attempt 1 exceeded its deadline: slow",
        ),
        (T.FAILED, "attempt 1 failed (exit code 3)", None, "attempt 1 failed (exit code 3)"),
        # Other phases show the decision's words only.
        (T.SUCCEEDED, "attempt 1 succeeded", "noise", "attempt 1 succeeded"),
        (T.ABORTED, "attempt 1 was stopped", "log tail", "attempt 1 was stopped"),
        (T.REUSED, "result of run r1", None, "result of run r1"),
        (T.PENDING, None, None, None),
    ],
)
def test_a_tasks_message(phase, decided, attempt, message):
    assert task_message(phase, decided, attempt) == message


def test_a_message_is_bounded():
    message = task_message(T.FAILED, "attempt 1 failed", "x" * 5000)
    assert message is not None
    assert len(message) == MESSAGE_LIMIT

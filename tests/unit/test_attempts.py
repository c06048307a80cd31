"""What becomes of an attempt as its host sees it: ended, running, lost, adopted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kascade.api import TaskPhase
from kascade.engine.attempts import (
    LOST,
    Observation,
    Progress,
    adopt,
    attempt_end,
    start_failure,
)
from kascade.engine.runstate import AttemptState, RunState, TaskState

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
GRACE = 30.0
ENDED = Observation(
    Progress.ENDED,
    started=T0,
    ended=T0 + timedelta(seconds=5),
    exit_code=0,
    reason="Completed",
    outputs={"rows": 3},
)
FAILED = Observation(
    Progress.ENDED,
    started=T0,
    ended=T0 + timedelta(seconds=5),
    exit_code=3,
    reason="Error",
    message="boom",
)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("seen", "stop", "now", "expected"),
    [
        # Ended by itself: its time, code, reason and (on success) outputs.
        (ENDED, None, at(9), (at(5), 0, "Completed", None, {"rows": 3})),
        (FAILED, None, at(9), (at(5), 3, "Error", "boom", None)),
        # Stopped by the host: the host's reason wins, and outputs do not count.
        (ENDED, "Aborted", at(9), (at(5), 0, "Aborted", None, None)),
        (FAILED, "DeadlineExceeded", at(9), (at(5), 3, "DeadlineExceeded", "boom", None)),
        # Ended without an end time: now.
        (Observation(Progress.ENDED, exit_code=1), None, at(9), (at(9), 1, "Error", None, None)),
        # Still running: nothing to record.
        (Observation(Progress.RUNNING, started=T0), None, at(999), None),
        (Observation(Progress.RUNNING, started=T0), "Aborted", at(999), None),
        # Not seen: maybe not visible yet, within the grace period.
        (Observation(Progress.UNSEEN), None, at(GRACE), None),
        # Not seen after the grace period: lost.
        (
            Observation(Progress.UNSEEN),
            None,
            at(GRACE + 1),
            (at(GRACE + 1), None, LOST, "its Job or process disappeared", None),
        ),
        # Stopped by the host and gone: simply ended, at once.
        (Observation(Progress.UNSEEN), "Aborted", at(1), (at(1), None, "Aborted", None, None)),
    ],
)
def test_attempt_end(seen, stop, now, expected):
    end = attempt_end(seen, started=T0, stop_reason=stop, now=now, grace_seconds=GRACE)
    if expected is None:
        assert end is None
    else:
        assert end is not None
        assert (end.ended, end.exit_code, end.reason, end.message, end.outputs) == expected


def test_an_attempt_that_cannot_start_ends_with_its_reason():
    end = start_failure("task `x`: args[0]: template `{{ nope }}`: 'nope' is undefined", T0)
    assert (end.ended, end.exit_code, end.reason) == (T0, None, "StartError")
    assert "args[0]" in (end.message or "")


def state(**tasks):
    return RunState(phase=None, tasks=tasks)


@pytest.mark.parametrize(
    ("task", "seen", "adopted"),
    [
        (TaskState(TaskPhase.PENDING), Observation(Progress.RUNNING, started=at(3)), True),
        (TaskState(TaskPhase.QUEUED), Observation(Progress.RUNNING, started=at(3)), True),
        (TaskState(TaskPhase.PENDING), ENDED, True),  # it even ended meanwhile
        (TaskState(TaskPhase.PENDING), Observation(Progress.UNSEEN), False),
        (TaskState(TaskPhase.SUCCEEDED), Observation(Progress.RUNNING), False),
        (
            TaskState(TaskPhase.RUNNING, (AttemptState(1, T0),)),
            Observation(Progress.RUNNING),
            False,  # it has an open attempt already
        ),
    ],
)
def test_adoption_of_attempts_no_record_shows(task, seen, adopted):
    before = state(t=task)
    after = adopt(before, {"t": seen}, at(10))
    if not adopted:
        assert after.tasks["t"] == task
        return
    taken = after.tasks["t"]
    assert taken.phase == TaskPhase.RUNNING
    assert taken.reason == "Adopted"
    assert taken.attempts[-1].number == len(task.attempts) + 1
    assert taken.attempts[-1].started_at == (seen.started or at(10))
    assert taken.open_attempt is not None


def test_the_next_attempt_after_a_failed_one_is_adopted_with_its_number():
    first = AttemptState(1, T0, at(5), 1, "Error")
    retrying = TaskState(TaskPhase.RETRYING, (first,), retry_at=at(35))
    after = adopt(state(t=retrying), {"t": Observation(Progress.RUNNING, started=at(36))}, at(40))
    assert [a.number for a in after.tasks["t"].attempts] == [1, 2]

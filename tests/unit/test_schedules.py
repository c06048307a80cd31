"""Schedule arithmetic: cron in a time zone, DST, missed times, deadlines, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kascade.api import Schedule
from kascade.engine.schedules import cron_expression, fire_times, next_fire_time, tick


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def schedule(**fields) -> Schedule:
    return Schedule.model_validate(fields)


@pytest.mark.parametrize(
    ("every", "cron"),
    [
        ({"frequency": "minute"}, "* * * * *"),
        ({"frequency": "hour"}, "0 * * * *"),
        ({"frequency": "hour", "at": "00:15"}, "15 * * * *"),
        ({"frequency": "day", "at": "02:30"}, "30 2 * * *"),
        ({"frequency": "day"}, "0 0 * * *"),
        ({"frequency": "week", "at": "06:00", "dayOfWeek": "fri"}, "0 6 * * 5"),
        ({"frequency": "week"}, "0 0 * * 1"),
        ({"frequency": "week", "dayOfWeek": "sun"}, "0 0 * * 0"),
        ({"frequency": "month", "at": "23:59", "dayOfMonth": 15}, "59 23 15 * *"),
        ({"frequency": "month"}, "0 0 1 * *"),
    ],
)
def test_basic_mode_becomes_cron(every, cron):
    assert cron_expression(schedule(every=every)) == cron
    assert cron_expression(schedule(cron="5 4 * * *")) == "5 4 * * *"


def times(cron: str, zone: str, after: datetime, count: int) -> list[datetime]:
    found = fire_times(cron, zone, after)
    return [next(found) for _ in range(count)]


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        # plain UTC
        ("0 2 * * *", "UTC", utc(2026, 11, 1, 2, 0), [utc(2026, 11, 2, 2), utc(2026, 11, 3, 2)]),
        (
            "*/20 * * * *",
            "UTC",
            utc(2026, 11, 1, 0, 5),
            [utc(2026, 11, 1, 0, 20), utc(2026, 11, 1, 0, 40)],
        ),
        # Vienna, clocks go forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC):
        # 02:30 does not exist and fires at the jump, 03:00 CEST.
        (
            "30 2 * * *",
            "Europe/Vienna",
            utc(2026, 3, 28, 0),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        # several nonexistent times fire once
        (
            "*/30 2 * * *",
            "Europe/Vienna",
            utc(2026, 3, 28, 23),
            [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)],
        ),
        # Vienna, clocks go back 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC):
        # 02:30 happens twice and fires once, the first time.
        (
            "30 2 * * *",
            "Europe/Vienna",
            utc(2026, 10, 24, 0),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        (
            "*/30 * * * *",
            "Europe/Vienna",
            utc(2026, 10, 24, 23, 45),
            [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 0)],
        ),
        # New York, forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC)
        (
            "0 2 * * *",
            "America/New_York",
            utc(2026, 3, 7, 12),
            [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)],
        ),
        # New York, back 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC)
        (
            "0 1 * * *",
            "America/New_York",
            utc(2026, 10, 31, 12),
            [utc(2026, 11, 1, 5), utc(2026, 11, 2, 6)],
        ),
        # asking from inside the repeated hour does not fire the first occurrence again
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 45), [utc(2026, 11, 2, 6, 30)]),
    ],
)
def test_fire_times(cron, zone, after, expected):
    assert times(cron, zone, after, len(expected)) == expected


def test_each_instant_fires_once_through_a_whole_dst_year():
    for zone in ("Europe/Vienna", "America/New_York"):
        found = times("*/15 * * * *", zone, utc(2026, 1, 1), 4 * 24 * 365)
        assert found == sorted(set(found))


NOW = utc(2026, 11, 22, 10, 0, 30)
CREATED = utc(2026, 11, 1)


def test_nothing_due_gives_the_next_time():
    result = tick(schedule(cron="0 11 * * *"), utc(2026, 11, 21, 11), CREATED, NOW, [])
    assert (result.run_at, result.skipped) == (None, ())
    assert result.next_time == utc(2026, 11, 22, 11)
    assert result.checkpoint == utc(2026, 11, 21, 11)


def test_the_due_instant_runs_and_becomes_the_checkpoint():
    rule = schedule(cron="* * * * *")
    result = tick(rule, utc(2026, 11, 22, 9, 59), CREATED, NOW, [])
    assert result.run_at == utc(2026, 11, 22, 10, 0)
    assert result.checkpoint == utc(2026, 11, 22, 10, 0)
    assert result.next_time == utc(2026, 11, 22, 10, 1)
    again = tick(rule, result.checkpoint, CREATED, NOW, [])
    assert again.run_at is None  # the same instant never runs twice


def test_after_downtime_only_the_latest_missed_instant_runs():
    result = tick(schedule(cron="*/10 * * * *"), utc(2026, 11, 22, 9, 0), CREATED, NOW, [])
    assert result.run_at == utc(2026, 11, 22, 10, 0)
    assert [s.time for s in result.skipped] == [
        utc(2026, 11, 22, 9, m) for m in (10, 20, 30, 40, 50)
    ]


def test_a_missed_instant_outside_the_starting_deadline_does_not_run():
    rule = schedule(cron="0 9 * * *", startingDeadlineSeconds=600)
    result = tick(rule, utc(2026, 11, 21, 9), CREATED, NOW, [])
    assert result.run_at is None
    assert result.skipped[-1].time == utc(2026, 11, 22, 9)
    assert "past startingDeadlineSeconds 600" in result.skipped[-1].reason
    assert result.checkpoint == utc(2026, 11, 22, 9)
    inside = tick(
        schedule(cron="0 10 * * *", startingDeadlineSeconds=60),
        utc(2026, 11, 21, 10),
        CREATED,
        NOW,
        [],
    )
    assert inside.run_at == utc(2026, 11, 22, 10)


def test_without_a_deadline_the_latest_runs_however_late():
    result = tick(schedule(cron="0 3 * * *"), utc(2026, 11, 20, 3), CREATED, NOW, [])
    assert result.run_at == utc(2026, 11, 22, 3)


def test_times_before_the_flow_existed_never_run():
    result = tick(schedule(cron="0 * * * *"), None, utc(2026, 11, 22, 9, 30), NOW, [])
    assert result.run_at == utc(2026, 11, 22, 10)
    assert result.skipped == ()


@pytest.mark.parametrize(
    ("policy", "run", "abort", "reason"),
    [
        ("Allow", utc(2026, 11, 22, 10), (), None),
        ("Forbid", None, (), "concurrencyPolicy Forbid: run f-1 is still active"),
        ("Replace", utc(2026, 11, 22, 10), ("f-1",), None),
    ],
)
def test_concurrency_policies(policy, run, abort, reason):
    rule = schedule(cron="0 * * * *", concurrencyPolicy=policy)
    result = tick(rule, utc(2026, 11, 22, 9), CREATED, NOW, ["f-1"])
    assert (result.run_at, result.abort) == (run, abort)
    if reason:
        assert result.skipped[-1].reason == reason


def test_suspend_skips_and_unsuspend_starts_no_burst():
    rule = schedule(cron="*/5 * * * *", suspend=True)
    checkpoint = utc(2026, 11, 22, 9, 0)
    result = tick(rule, checkpoint, CREATED, NOW, [])
    assert result.run_at is None
    assert result.skipped[-1].reason == "the schedule is suspended"
    resumed = tick(
        schedule(cron="*/5 * * * *"), result.checkpoint, CREATED, NOW + timedelta(seconds=20), []
    )
    assert resumed.run_at is None
    assert resumed.next_time == utc(2026, 11, 22, 10, 5)


def test_a_very_long_outage_looks_back_a_week_for_the_latest_instant():
    result = tick(schedule(cron="0 * * * *"), utc(2026, 9, 1), utc(2026, 1, 1), NOW, [])
    assert result.run_at == utc(2026, 11, 22, 10)
    assert result.more_skipped


def test_no_schedule_means_no_runs():
    assert tick(None, None, CREATED, NOW, []).next_time is None


def test_next_fire_time():
    assert next_fire_time("0 0 1 1 *", "UTC", NOW) == utc(2027, 1, 1)

"""Schedule arithmetic: cron in an IANA time zone (or the basic mode translated to cron),
the instants it fires at, and what the scheduler should do at a given moment.

Instants are computed on the local wall clock and then placed on the UTC timeline:
- a wall time that occurs twice (clocks go back) fires once, at its first occurrence;
- a wall time that does not exist (clocks go forward) fires at the next valid instant,
  the moment the clocks jump (so `30 2 * * *` fires at 03:00 on that day), and several
  such times fire once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from kascade.api import ConcurrencyPolicy, Frequency, Schedule

WEEKDAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
LOOKBACK = timedelta(days=7)
_GAP_LIMIT = timedelta(hours=3)


def cron_expression(schedule: Schedule) -> str:
    """The cron expression of a schedule; the basic mode (`every`) translated."""
    if schedule.cron is not None:
        return schedule.cron
    every = schedule.every
    assert every is not None  # the model guarantees exactly one of cron and every
    hour, minute = (int(part) for part in (every.at or "00:00").split(":"))
    if every.frequency == Frequency.MINUTE:
        return "* * * * *"
    if every.frequency == Frequency.HOUR:
        return f"{minute} * * * *"
    if every.frequency == Frequency.DAY:
        return f"{minute} {hour} * * *"
    if every.frequency == Frequency.WEEK:
        return f"{minute} {hour} * * {WEEKDAY_NUMBERS[every.day_of_week or 'mon']}"
    return f"{minute} {hour} {every.day_of_month or 1} * *"


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time (first occurrence; the jump for a gap)."""
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return utc
    # The wall time falls in a gap: find the first instant whose wall time is past it.
    probe = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    limit = probe + _GAP_LIMIT
    while probe < limit and probe.astimezone(zone).replace(tzinfo=None) < wall:
        probe += timedelta(minutes=1)
    return probe.replace(second=0, microsecond=0)


def fire_times(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The instants (UTC) a cron fires at, strictly after `after`, in order."""
    zone = ZoneInfo(timezone)
    # Wall times map to instants in the same order (a repeated wall time maps to its first
    # occurrence), so every instant after `after` has a wall time after `after`'s own.
    wall = after.astimezone(zone).replace(tzinfo=None) - timedelta(minutes=1)
    walls = croniter(cron, wall)
    last: datetime | None = None
    while True:
        instant = _instant(walls.get_next(datetime), zone)
        if instant > after and instant != last:
            last = instant
            yield instant


def next_fire_time(cron: str, timezone: str, after: datetime) -> datetime:
    """The first instant a cron fires at after `after`."""
    return next(fire_times(cron, timezone, after))


def fire_times_between(
    cron: str, timezone: str, after: datetime, until: datetime
) -> tuple[list[datetime], bool]:
    """Instants in (after, until]; only the last week of them when the stretch is longer
    (the flag says so): the scheduler needs the latest instant, not a complete count."""
    start = max(after, until - LOOKBACK)
    found: list[datetime] = []
    for instant in fire_times(cron, timezone, start):
        if instant > until:
            break
        found.append(instant)
    return found, start > after


@dataclass(frozen=True)
class Skip:
    """A scheduled instant that did not run, why (for people), and a short cause (for
    metrics: Missed, Suspended, DeadlineExceeded or Forbidden)."""

    time: datetime
    reason: str
    cause: str = "Missed"


@dataclass(frozen=True)
class Tick:
    """What a Flow's schedule asks for at one moment."""

    run_at: datetime | None = None
    abort: tuple[str, ...] = ()
    skipped: tuple[Skip, ...] = ()
    more_skipped: bool = False
    checkpoint: datetime | None = None
    next_time: datetime | None = None


def tick(
    schedule: Schedule | None,
    checkpoint: datetime | None,
    created: datetime,
    now: datetime,
    active_runs: Sequence[str],
) -> Tick:
    """The scheduler's decision: which instant to run now (at most one), which to skip
    and why, which active runs to abort (Replace), the new checkpoint (the latest instant
    considered, whatever became of it) and when to look again.

    Only instants after the checkpoint (or the Flow's creation) count, so a restart or an
    unsuspend never runs an instant twice and never starts a burst: of the instants missed
    while nobody looked, the latest runs if it is within startingDeadlineSeconds (any
    delay when unset) and the others are skipped.
    """
    if schedule is None:
        return Tick(checkpoint=checkpoint)
    cron = cron_expression(schedule)
    base = max(checkpoint or created, created)
    due, more = fire_times_between(cron, schedule.timezone, base, now)
    upcoming = next_fire_time(cron, schedule.timezone, now)
    if not due:
        return Tick(checkpoint=checkpoint, next_time=upcoming)
    latest, earlier = due[-1], due[:-1]
    skipped = [Skip(t, "missed: an earlier instant nobody ran in time") for t in earlier]
    decision = _policy(schedule, latest, now, active_runs)
    if decision.run_at is None:
        skipped.append(decision.skipped[0])
    return Tick(
        run_at=decision.run_at,
        abort=decision.abort,
        skipped=tuple(skipped),
        more_skipped=more,
        checkpoint=latest,
        next_time=upcoming,
    )


def _policy(schedule: Schedule, latest: datetime, now: datetime, active: Sequence[str]) -> Tick:
    if schedule.suspend:
        return Tick(skipped=(Skip(latest, "the schedule is suspended", "Suspended"),))
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and (now - latest).total_seconds() > deadline:
        late = int((now - latest).total_seconds())
        return Tick(
            skipped=(
                Skip(
                    latest,
                    f"{late}s late, past startingDeadlineSeconds {deadline}",
                    "DeadlineExceeded",
                ),
            )
        )
    if active and schedule.concurrency_policy == ConcurrencyPolicy.FORBID:
        return Tick(
            skipped=(
                Skip(
                    latest,
                    f"concurrencyPolicy Forbid: run {active[0]} is still active",
                    "Forbidden",
                ),
            )
        )
    if active and schedule.concurrency_policy == ConcurrencyPolicy.REPLACE:
        return Tick(run_at=latest, abort=tuple(active))
    return Tick(run_at=latest)

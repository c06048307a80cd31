"""Admission of queued runs: operator-wide and per-flow limits, oldest first, and the
runs a Replace concurrency policy aborts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kascade.api import ConcurrencyPolicy
from kascade.engine.admission import ActiveRun, FlowLimits, QueuedRun, admission

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FORBID = FlowLimits(policy=ConcurrencyPolicy.FORBID)
REPLACE = FlowLimits(policy=ConcurrencyPolicy.REPLACE)
ALLOW = FlowLimits(policy=ConcurrencyPolicy.ALLOW)


def q(key, flow, minute):
    return QueuedRun(key, flow, T0 + timedelta(minutes=minute))


def a(key, flow):
    return ActiveRun(key, flow)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (FlowLimits(), None),
        (FlowLimits(max_active_runs=3), 3),
        (ALLOW, None),
        (FORBID, 1),
        (REPLACE, 1),
        (FlowLimits(max_active_runs=5, policy=ConcurrencyPolicy.FORBID), 1),
        (FlowLimits(max_active_runs=2, policy=ConcurrencyPolicy.ALLOW), 2),
    ],
)
def test_a_flows_limit_on_active_runs(limits, expected):
    assert limits.limit == expected


@pytest.mark.parametrize(
    ("queued", "active", "max_active", "flows", "admitted", "aborted"),
    [
        # No limits: everything starts.
        ([q("x", "f", 1), q("y", "f", 2)], [], None, {}, {"x", "y"}, set()),
        # Operator-wide limit: oldest first, whatever the order given.
        ([q("y", "f", 2), q("x", "f", 1)], [], 1, {}, {"x"}, set()),
        ([q("x", "f", 1)], [a("r", "g"), a("s", "g")], 2, {}, set(), set()),
        # Per-flow limit: a run that does not fit does not block another flow's.
        (
            [q("x", "f", 1), q("y", "g", 2)],
            [a("r", "f")],
            None,
            {"f": FlowLimits(max_active_runs=1)},
            {"y"},
            set(),
        ),
        # Forbid: one at a time; a manual run waits for the active one.
        ([q("x", "f", 1)], [a("r", "f")], None, {"f": FORBID}, set(), set()),
        ([q("x", "f", 1), q("y", "f", 2)], [], None, {"f": FORBID}, {"x"}, set()),
        # Replace: the newest queued run aborts the active ones and waits for their end.
        ([q("x", "f", 1)], [a("r", "f")], None, {"f": REPLACE}, set(), {"r"}),
        ([q("x", "f", 1), q("y", "f", 2)], [a("r", "f")], None, {"f": REPLACE}, set(), {"r"}),
        # ...and starts once they ended; nothing to abort then.
        ([q("x", "f", 1)], [], None, {"f": REPLACE}, {"x"}, set()),
        # Replace aborts only its own flow's runs.
        (
            [q("x", "f", 1)],
            [a("r", "f"), a("s", "g")],
            None,
            {"f": REPLACE, "g": ALLOW},
            set(),
            {"r"},
        ),
        # Replace with an operator-wide limit full of another flow's runs: nothing to
        # replace in its own flow.
        ([q("x", "f", 1)], [a("s", "g")], 1, {"f": REPLACE}, set(), set()),
    ],
)
def test_admission(queued, active, max_active, flows, admitted, aborted):
    decided = admission(queued, active, max_active, flows)
    assert decided.admitted == admitted
    assert decided.abort == aborted

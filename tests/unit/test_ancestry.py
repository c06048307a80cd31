"""The ancestry of runs: a flow task may not start a flow already in its run's chain, nor
nest deeper than the maximum; static cycles between flows are found for a warning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kascade.api import TaskType
from kascade.engine.ancestry import MAX_FLOW_DEPTH, child_flow_problem, flow_cycle, lineage_of
from kascade.engine.launch import LaunchError, RunIdentity, launch
from kascade.engine.plan import PlannedTask

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_top_level_run_is_its_own_chain_and_a_child_extends_its_parents():
    assert lineage_of(None, "a") == ("a",)
    assert lineage_of(("a", "b"), "c") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("lineage", "target", "found"),
    [
        (("a",), "b", None),
        (("a", "b"), "c", None),
        (("a",), "a", "flow recursion: a → a (flow `a` is already running in this chain"),
        (("a", "b"), "a", "flow recursion: a → b → a (flow `a`"),
        (("a", "b", "c"), "b", "flow recursion: a → b → c → b"),
        (("a", "b", "c", "d", "e"), "f", None),  # depth 5 is the default maximum
        (
            ("a", "b", "c", "d", "e", "f"),
            "g",
            "child flows nested too deeply: a → b → c → d → e → f → g would run 6 levels "
            "below its top-level run, more than the maximum of 5",
        ),
    ],
)
def test_what_a_flow_task_may_start(lineage, target, found):
    problem = child_flow_problem(lineage, target, MAX_FLOW_DEPTH)
    if found is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(found), problem


def test_a_maximum_depth_of_zero_allows_no_child_flows():
    assert child_flow_problem(("a",), "b", 0) is not None
    assert child_flow_problem(("a",), "b", 1) is None


@pytest.mark.parametrize(
    ("children", "cycle"),
    [
        ({}, None),
        ({"a": ["b"], "b": ["c"]}, None),
        ({"a": ["a"]}, ("a", "a")),
        ({"a": ["b"], "b": ["a"]}, ("a", "b", "a")),
        ({"a": ["x", "b"], "b": ["c"], "c": ["a"], "x": ["y"]}, ("a", "b", "c", "a")),
        # the shortest way back is the one shown
        ({"a": ["b", "c"], "b": ["d"], "d": ["a"], "c": ["a"]}, ("a", "c", "a")),
        # a cycle that does not pass through the flow is not its cycle
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, None),
    ],
)
def test_static_cycles_through_a_flow(children, cycle):
    assert flow_cycle("a", children) == cycle


def test_a_launch_of_a_flow_task_names_the_chain_it_would_repeat():
    task = PlannedTask(id="again", node="again", type=TaskType.FLOW, target="a")
    run = RunIdentity("b-1", "b", "SUBFLOW", None, T0, lineage=("a", "b"))
    with pytest.raises(LaunchError, match=r"task `again`: flow recursion: a → b → a"):
        launch(task, {}, 1, run, {})
    other = PlannedTask(id="next", node="next", type=TaskType.FLOW, target="c")
    assert launch(other, {}, 1, run, {}).target == "c"
    with pytest.raises(LaunchError, match="nested too deeply"):
        launch(other, {}, 1, run, {}, max_flow_depth=1)
    # a run that knows no chain is a top-level run of its flow
    alone = RunIdentity("a-1", "a", "MANUAL", None, T0)
    with pytest.raises(LaunchError, match=r"flow recursion: a → a"):
        launch(task, {}, 1, alone, {})

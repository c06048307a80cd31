"""The decision function, scenario by scenario, with a driven clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from kascade.api import RunPhase as R
from kascade.api import TaskPhase as T
from kascade.api import TriggerRule as Rule
from kascade.engine.errors import TransitionError
from kascade.engine.runstate import Limits, RunState, SetRunPhase, apply
from tests.unit.decisions import T0, Sim, kills, plan_of, run_phases, started, task

DIAMOND = plan_of(task("a"), task("b"), task("c", "a"), task("d", "b", "c"))


def test_a_new_run_is_queued_admitted_and_starts_its_roots():
    sim = Sim(DIAMOND)
    actions = sim.decide()
    assert run_phases(actions) == [R.QUEUED, R.RUNNING]
    assert started(actions) == ["a", "b"]
    assert sim.state.started_at == T0
    assert sim.decide() == []  # nothing new until something is observed


def test_tasks_start_in_dependency_order():
    sim = Sim(DIAMOND)
    sim.decide()
    sim.finish("a")
    assert started(sim.decide()) == ["c"]
    sim.finish("c")
    assert started(sim.decide()) == []  # d also waits for b
    sim.finish("b")
    assert started(sim.decide()) == ["d"]
    sim.finish("d")
    assert run_phases(sim.decide()) == [R.SUCCEEDING, R.SUCCEEDED]
    assert set(sim.phases().values()) == {T.SUCCEEDED}
    assert sim.state.finished_at == T0


def test_a_run_waits_for_admission():
    sim = Sim(DIAMOND)
    sim.admit(False)
    assert run_phases(sim.decide()) == [R.QUEUED]
    assert sim.decide() == []
    sim.admit(True)
    assert run_phases(sim.decide()) == [R.RUNNING]


def test_a_scheduled_run_waits_for_its_time():
    sim = Sim(DIAMOND)
    sim.state = RunState.initial(DIAMOND, scheduled_time=T0 + timedelta(minutes=5))
    assert run_phases(sim.decide()) == [R.SCHEDULED]
    assert sim.last.wake_at == T0 + timedelta(minutes=5)
    sim.advance(299)
    assert sim.decide() == []
    sim.advance(1)
    actions = sim.decide()
    assert run_phases(actions) == [R.QUEUED, R.RUNNING]
    assert started(actions) == ["a", "b"]


def test_max_parallel_tasks_queues_the_rest():
    sim = Sim(plan_of(task("a"), task("b"), task("c")), Limits(max_parallel_tasks=2))
    assert started(sim.decide()) == ["a", "b"]
    assert sim.phases()["c"] == T.QUEUED
    sim.finish("b")
    assert started(sim.decide()) == ["c"]
    assert sim.phases() == {"a": T.RUNNING, "b": T.SUCCEEDED, "c": T.RUNNING}


def test_a_failure_fails_downstream_lets_independent_tasks_finish_then_runs_failure_hooks():
    plan = plan_of(
        task("a"),
        task("b"),
        task("c", "a"),
        task("e", "c"),
        task("alert", hook="onFailure"),
        task("party", hook="onSuccess"),
        task("always", hook="onFinish"),
    )
    sim = Sim(plan)
    sim.decide()
    sim.finish("a", exit_code=3)
    actions = sim.decide()
    assert run_phases(actions) == [R.FAILING]
    assert sim.state.message == "task `a` failed"
    assert sim.phases()["c"] == T.UPSTREAM_FAILED
    assert sim.phases()["e"] == T.UPSTREAM_FAILED
    assert sim.phases()["b"] == T.RUNNING  # independent work goes on
    assert started(actions) == []
    sim.finish("b")
    assert started(sim.decide()) == ["alert", "always"]
    sim.finish("alert")
    sim.finish("always", exit_code=1)  # a failing hook does not change a failed run
    assert run_phases(sim.decide()) == [R.FAILED]
    assert sim.phases()["party"] == T.SKIPPED
    assert sim.state.tasks["a"].attempts[0].exit_code == 3


def test_success_hooks_run_while_succeeding_and_a_failing_hook_fails_the_run():
    plan = plan_of(task("a"), task("party", hook="onSuccess"), task("alert", hook="onFailure"))
    sim = Sim(plan)
    sim.decide()
    sim.finish("a")
    actions = sim.decide()
    assert run_phases(actions) == [R.SUCCEEDING]
    assert started(actions) == ["party"]
    sim.finish("party", exit_code=2)
    assert run_phases(sim.decide()) == [R.FAILED]
    assert sim.state.reason == "HookFailed"
    assert sim.state.message == "hook `party` failed"
    assert sim.phases()["alert"] == T.SKIPPED


def test_retries_wait_out_the_delay_with_a_new_attempt():
    sim = Sim(plan_of(task("a", retries=2, delay=30)))
    sim.decide()
    sim.advance(5)
    sim.finish("a", exit_code=1)
    sim.decide()
    assert sim.phases()["a"] == T.RETRYING
    assert sim.state.tasks["a"].retry_at == T0 + timedelta(seconds=35)
    assert sim.last.wake_at == T0 + timedelta(seconds=35)
    sim.advance(29)
    assert started(sim.decide()) == []
    sim.advance(1)
    assert started(sim.decide()) == ["a"]
    assert sim.state.tasks["a"].attempts[-1].number == 2
    sim.finish("a", exit_code=1)
    sim.decide()
    sim.advance(30)
    sim.decide()
    sim.finish("a", exit_code=1)
    assert run_phases(sim.decide()) == [R.FAILING, R.FAILED]
    assert sim.phases()["a"] == T.FAILED
    assert len(sim.state.tasks["a"].attempts) == 3


def test_a_task_past_its_timeout_is_killed_and_times_out():
    sim = Sim(plan_of(task("a", timeout=60), task("b", "a")))
    sim.decide()
    assert sim.last.wake_at == T0 + timedelta(seconds=60)
    sim.advance(59)
    assert kills(sim.decide()) == []
    sim.advance(1)
    actions = sim.decide()
    assert kills(actions) == [("a", "DeadlineExceeded")]
    sim.kill(actions)
    assert run_phases(sim.decide()) == [R.FAILING, R.FAILED]
    assert sim.phases() == {"a": T.TIMED_OUT, "b": T.UPSTREAM_FAILED}
    assert sim.state.message == "task `a` timed out"


def test_a_timed_out_attempt_is_retried_when_retries_remain():
    sim = Sim(plan_of(task("a", timeout=10, retries=1, delay=0)))
    sim.decide()
    sim.advance(10)
    sim.kill(sim.decide())
    assert started(sim.decide()) == ["a"]
    assert sim.phases()["a"] == T.RUNNING
    assert [a.number for a in sim.state.tasks["a"].attempts] == [1, 2]


def test_the_run_deadline_times_out_the_run_and_stops_its_tasks():
    sim = Sim(DIAMOND, Limits(timeout_seconds=100))
    sim.decide()
    sim.finish("a")
    sim.decide()  # c starts
    assert sim.last.wake_at == T0 + timedelta(seconds=100)
    sim.advance(100)
    actions = sim.decide()
    assert run_phases(actions) == [R.TIMED_OUT]
    assert sim.phases() == {"a": T.SUCCEEDED, "b": T.TIMED_OUT, "c": T.TIMED_OUT, "d": T.ABORTED}
    assert sorted(kills(actions)) == [("b", "RunEnded"), ("c", "RunEnded")]
    sim.kill(actions)
    assert sim.decide() == []
    assert sim.last.wake_at is None


def test_abort_stops_running_tasks_then_the_run_is_aborted():
    sim = Sim(DIAMOND)
    sim.decide()
    sim.finish("a")
    sim.abort()
    actions = sim.decide()
    assert run_phases(actions) == [R.ABORTING]
    assert sim.phases()["c"] == T.ABORTED  # never started
    assert sim.phases()["d"] == T.ABORTED
    assert kills(actions) == [("b", "Aborted")]
    sim.kill(actions)
    assert run_phases(sim.decide()) == [R.ABORTED]
    assert sim.phases() == {"a": T.SUCCEEDED, "b": T.ABORTED, "c": T.ABORTED, "d": T.ABORTED}


@pytest.mark.parametrize("admitted", [True, False])
def test_abort_before_start_ends_the_run_at_once(admitted):
    sim = Sim(DIAMOND)
    sim.admit(False)
    sim.decide()
    sim.admit(admitted)
    sim.abort()
    assert run_phases(sim.decide()) == [R.ABORTED]
    assert set(sim.phases().values()) == {T.ABORTED}


def test_fail_fast_stops_the_other_tasks_and_starts_no_more():
    plan = plan_of(task("a"), task("b"), task("c"), task("d", "b"), task("alert", hook="onFailure"))
    sim = Sim(plan, Limits(max_parallel_tasks=2, fail_fast=True))
    sim.decide()  # a, b start; c queued
    sim.finish("a", exit_code=1)
    actions = sim.decide()
    assert run_phases(actions) == [R.FAILING]
    assert started(actions) == []
    assert kills(actions) == [("b", "FailFast")]
    assert sim.phases()["c"] == T.ABORTED
    sim.kill(actions)
    actions = sim.decide()
    assert started(actions) == ["alert"]  # failure hooks still run
    assert sim.phases()["b"] == T.ABORTED
    assert sim.phases()["d"] == T.UPSTREAM_FAILED
    sim.finish("alert")
    assert run_phases(sim.decide()) == [R.FAILED]


def test_trigger_rules_run_cleanup_after_failure_and_skip_otherwise():
    plan = plan_of(
        task("a"),
        task("cleanup", "a", trigger=Rule.ALL_DONE),
        task("on_error", "a", trigger=Rule.ONE_FAILED),
        task("only_ok", "a", trigger=Rule.NONE_FAILED),
    )
    sim = Sim(plan)
    sim.decide()
    sim.finish("a", exit_code=1)
    actions = sim.decide()
    assert started(actions) == ["cleanup", "on_error"]
    assert sim.phases()["only_ok"] == T.UPSTREAM_FAILED

    sim = Sim(plan)
    sim.decide()
    sim.finish("a")
    actions = sim.decide()
    assert started(actions) == ["cleanup", "only_ok"]
    assert sim.phases()["on_error"] == T.SKIPPED


def test_a_skipped_upstream_skips_all_success_tasks():
    plan = plan_of(task("a"), task("b", "a", trigger=Rule.ONE_FAILED), task("c", "b"))
    sim = Sim(plan)
    sim.decide()
    sim.finish("a")
    assert run_phases(sim.decide()) == [R.SUCCEEDING, R.SUCCEEDED]
    assert sim.phases() == {"a": T.SUCCEEDED, "b": T.SKIPPED, "c": T.SKIPPED}


def test_reused_tasks_count_as_succeeded_and_are_not_started():
    state = RunState.initial(DIAMOND, reused=["a", "b"])
    sim = Sim(DIAMOND, state=state)
    actions = sim.decide()
    assert started(actions) == ["c"]
    assert sim.phases()["a"] == T.REUSED


def test_a_run_that_cannot_start_fails_naming_why():
    sim = Sim(DIAMOND)
    sim.state = replace(sim.state, start_error="parameter `as_of`: required, no default")
    assert run_phases(sim.decide()) == [R.QUEUED, R.FAILED]
    assert sim.state.message == "parameter `as_of`: required, no default"
    assert set(sim.phases().values()) == {T.ABORTED}


def test_an_empty_plan_succeeds():
    sim = Sim(plan_of())
    assert run_phases(sim.decide()) == [R.QUEUED, R.RUNNING, R.SUCCEEDING, R.SUCCEEDED]


def test_illegal_transitions_raise():
    state = RunState.initial(DIAMOND)
    with pytest.raises(TransitionError):
        apply(state, [SetRunPhase(R.SUCCEEDED, "x")], T0)
    done = apply(state, [SetRunPhase(R.QUEUED, "x"), SetRunPhase(R.FAILED, "x")], T0)
    with pytest.raises(TransitionError, match="FAILED -> RUNNING"):
        apply(done, [SetRunPhase(R.RUNNING, "x")], T0)

"""Property tests of the decision function: random plans, outcomes, clocks and aborts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kascade.api import RunPhase, TaskPhase, TriggerRule
from kascade.engine.runstate import KillTask, Limits, SetRunPhase, StartTask
from kascade.engine.statemachine import run_is_terminal, task_is_terminal
from tests.unit.decisions import Sim, plan_of, task

MAX_ROUNDS = 400


@st.composite
def runs(draw: st.DrawFn) -> Sim:
    size = draw(st.integers(0, 10))
    tasks = []
    for index in range(size):
        deps = (
            draw(st.lists(st.sampled_from(range(index)), max_size=3, unique=True)) if index else []
        )
        tasks.append(
            task(
                f"t{index}",
                *(f"t{d}" for d in deps),
                trigger=draw(st.sampled_from(list(TriggerRule))),
                retries=draw(st.integers(0, 2)),
                delay=draw(st.integers(0, 60)),
                timeout=draw(st.none() | st.integers(1, 120)),
            )
        )
    for index, event in enumerate(
        draw(st.lists(st.sampled_from(["onSuccess", "onFailure", "onFinish"]), max_size=3))
    ):
        tasks.append(task(f"h{index}", hook=event, retries=draw(st.integers(0, 1))))
    limits = Limits(
        max_parallel_tasks=draw(st.integers(1, 4)),
        fail_fast=draw(st.booleans()),
        timeout_seconds=draw(st.none() | st.integers(30, 3000)),
    )
    return Sim(plan_of(*tasks), limits)


@settings(max_examples=300, deadline=None)
@given(runs(), st.data())
def test_every_run_ends_in_exactly_one_terminal_phase_and_respects_order_and_limits(sim, data):
    plan = sim.plan
    terminal_phases: list[RunPhase] = []
    for _ in range(MAX_ROUNDS):
        actions = sim.decide()
        running = [i for i, t in sim.state.tasks.items() if t.phase == TaskPhase.RUNNING]
        assert len(running) <= sim.limits.max_parallel_tasks
        for action in actions:
            if isinstance(action, StartTask):
                for dep in plan.by_id[action.task].depends_on:
                    # never before its dependencies have ended
                    upstream = sim.state.tasks[dep]
                    assert task_is_terminal(upstream.phase), (action.task, dep)
                    assert upstream.open_attempt is None, (action.task, dep)
            if isinstance(action, SetRunPhase) and run_is_terminal(action.phase):
                terminal_phases.append(action.phase)
        if run_is_terminal(sim.phase):
            break
        sim.kill(actions)
        # the world: some running attempts end, with any exit code
        for task_id in running:
            if sim.state.tasks[task_id].open_attempt and data.draw(st.booleans()):
                sim.finish(task_id, exit_code=data.draw(st.sampled_from([0, 0, 1, 2])))
        if data.draw(st.integers(0, 40)) == 0:
            sim.abort()
        wake = sim.last.wake_at
        if wake is not None and data.draw(st.booleans()):
            sim.now = max(sim.now, wake)
        else:
            sim.advance(data.draw(st.integers(0, 90)))
    else:
        raise AssertionError(f"run never ended; phases {sim.phases()}")

    assert len(terminal_phases) == 1
    assert terminal_phases[0] == sim.phase
    final = sim.phase
    # once terminal, nothing changes phase again, whatever happens next
    for task_id, state in sim.state.tasks.items():
        if state.open_attempt:
            sim.finish(task_id, exit_code=0)
    sim.advance(10_000)
    later = sim.decide()
    assert not [a for a in later if not isinstance(a, KillTask)]
    assert sim.phase == final
    assert all(task_is_terminal(phase) for phase in sim.phases().values()), sim.phases()
    if final == RunPhase.SUCCEEDED:
        assert all(
            sim.phases()[t.id] in (TaskPhase.SUCCEEDED, TaskPhase.SKIPPED) for t in plan.tasks
        )

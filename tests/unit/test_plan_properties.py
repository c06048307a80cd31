"""Property tests of planning over random model graphs (hypothesis)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kascade.engine.errors import PlanError
from kascade.engine.graph import Graph
from kascade.engine.plan import build_plan
from kascade.engine.project import Project
from kascade.engine.resources import Kind, Resource
from tests.projects import flow


def project_of(parents: dict[str, list[str]]) -> Project:
    """A project of models only, whose refs are `parents` (by name)."""

    def uid(name: str) -> str:
        return f"model.p.{name}"

    resources = {
        uid(name): Resource(uid(name), Kind.MODEL, name, "p", f"models/{name}.sql", ("p", name))
        for name in parents
    }
    graph = Graph({uid(name): [uid(up) for up in ups] for name, ups in parents.items()})
    return Project(Path("."), "p", resources, {}, graph)


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random acyclic model graphs: a model only refs models with a smaller number."""
    size = draw(st.integers(1, 25))
    names = [f"m{i}" for i in range(size)]
    return {
        name: draw(st.lists(st.sampled_from(names[:i]), max_size=4, unique=True)) if i else []
        for i, name in enumerate(names)
    }


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random model graphs that may contain cycles."""
    size = draw(st.integers(1, 12))
    names = [f"m{i}" for i in range(size)]
    return {name: draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) for name in names}


def reaches(parents: dict[str, list[str]], start: str, goal: str) -> bool:
    """Independent oracle: does `start` depend (transitively) on `goal`?"""
    stack, seen = list(parents[start]), set()
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(parents[current])
    return False


def has_cycle(parents: dict[str, list[str]]) -> bool:
    """Independent oracle: repeatedly drop models nothing depends on still; a rest is cyclic."""
    remaining = {name: set(ups) for name, ups in parents.items()}
    while True:
        free = [n for n, ups in remaining.items() if not ups & remaining.keys()]
        if not free:
            return bool(remaining)
        for name in free:
            del remaining[name]


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_plans_are_topological_and_keep_transitive_edges(parents, data):
    selected = data.draw(st.lists(st.sampled_from(sorted(parents)), min_size=1, unique=True))
    plan = build_plan(
        flow([{"name": "n", "transformation": {"include": selected}}]), project_of(parents)
    )
    assert {task.id for task in plan.tasks} == set(selected)
    position = {task.id: index for index, task in enumerate(plan.tasks)}
    task_parents = {task.id: list(task.depends_on) for task in plan.tasks}
    for task in plan.tasks:
        assert all(position[dep] < position[task.id] for dep in task.depends_on)
    for a in selected:
        for b in selected:
            if a != b:
                # a task waits for b exactly when model a depends on model b in the project
                assert reaches(task_parents, a, b) == reaches(parents, a, b)


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_dependencies_hold_across_nodes(parents, data):
    names = sorted(parents)
    split = data.draw(st.lists(st.sampled_from(names), unique=True))
    rest = [name for name in names if name not in split]
    nodes = [
        {"name": f"n{i}", "transformation": {"include": part}}
        for i, part in enumerate((split, rest))
        if part
    ]
    plan = build_plan(flow(nodes), project_of(parents))
    task_parents = {task.id: list(task.depends_on) for task in plan.tasks}
    for a in names:
        for b in names:
            if a != b:
                assert reaches(task_parents, a, b) == reaches(parents, a, b)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_cycles_are_always_found_and_printed_as_real_cycles(parents):
    project = project_of(parents)
    if not has_cycle(parents):
        build_plan(flow([{"name": "n", "transformation": {}}]), project)
        return
    with pytest.raises(PlanError) as err:
        build_plan(flow([{"name": "n", "transformation": {}}]), project)
    assert err.value.problems
    for problem in err.value.problems:
        assert problem.startswith("cycle in model refs: ")
        cycle = problem.removeprefix("cycle in model refs: ").split(" -> ")
        assert cycle[0] == cycle[-1]
        for child, parent in itertools.pairwise(cycle):
            assert parent in parents[child]

"""The dbt side of expansion: which resources each transformation node selects, how their
tests become test tasks, and the dependencies between resource and test tasks (the
project graph restricted to what is selected, with transitive edges kept, and dbt build's
rule that a resource's tests pass before its descendants start)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kascade.api import Node
from kascade.engine.errors import SelectorError
from kascade.engine.graph import Graph
from kascade.engine.project import Project
from kascade.engine.resources import REFABLE, Kind, Resource
from kascade.engine.selectors import check_selection, select

_LISTED = 10


@dataclass(frozen=True)
class TestGroup:
    """Tests one task runs: the tests of one resource (`<name>.test`), or one test on
    several resources (or on sources only), named after the test."""

    id: str
    target: str
    tests: tuple[str, ...]
    """Unique ids of the tests, in file order."""


@dataclass
class Selections:
    """Per transformation node: the models, seeds and snapshots it runs, and its test tasks."""

    resources: dict[str, list[str]]
    tests: dict[str, list[TestGroup]]


def select_nodes(project: Project, nodes: Sequence[Node], problems: list[str]) -> Selections:
    """Evaluate every transformation node's selectors; problems name the node and entry."""
    chosen = {
        node.name: found
        for node in nodes
        if (found := _select_node(project, node, problems)) is not None
    }
    _keep_first_owner(project, nodes, chosen, problems)
    return Selections(
        resources={
            name: [uid for uid in uids if _runs(project.resources[uid])]
            for name, uids in chosen.items()
        },
        tests={name: _test_groups(project, uids) for name, uids in chosen.items()},
    )


def _runs(resource: Resource) -> bool:
    """Whether a selected resource is a task of its own: an ephemeral model is not (dbt
    builds nothing for it; the models that ref it inline it)."""
    if resource.kind == Kind.TEST:
        return False
    return not (resource.kind == Kind.MODEL and resource.materialized == "ephemeral")


def _select_node(project: Project, node: Node, problems: list[str]) -> list[str] | None:
    transformation = node.transformation
    if transformation is None:
        return None
    include, exclude = transformation.include, transformation.exclude
    broken = False
    for label, entries in (("include", include or []), ("exclude", exclude or [])):
        for index, entry in enumerate(entries):
            try:
                check_selection(project, [entry])
            except SelectorError as err:
                problems.append(f"node `{node.name}`: {label}[{index}]: {err}")
                broken = True
    if broken:
        return None
    resources = project.resources
    wanted = (*REFABLE, Kind.TEST) if transformation.tests else REFABLE
    found = {uid for uid in select(project, include, exclude) if resources[uid].kind in wanted}
    if not found and not transformation.allow_empty:
        problems.append(
            f"node `{node.name}` selects no models "
            f"(include: {_show_include(project, include, exclude)}"
            f"{'; exclude: ' + _show(exclude) if exclude else ''}); "
            "set transformation.allowEmpty: true if that is intended"
        )
    return [uid for uid in resources if uid in found]


def _show(entries: Sequence[str] | None) -> str:
    return ", ".join(entries or [])


def _show_include(
    project: Project, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> str:
    if include is not None:
        return _show(include)
    default = project.selectors.default
    if default is not None and not exclude:
        return f"the default selector `{default}` of selectors.yml"
    return "all"


def _keep_first_owner(
    project: Project, nodes: Sequence[Node], chosen: dict[str, list[str]], problems: list[str]
) -> None:
    """Report models, seeds and snapshots selected by two nodes and keep each in the first
    node only; a test two nodes select stays with the first, silently."""
    owner: dict[str, str] = {}
    shared: dict[tuple[str, str], list[str]] = {}
    resources = project.resources
    for node in nodes:
        if node.name not in chosen:
            continue
        own: list[str] = []
        for uid in chosen[node.name]:
            if uid not in owner:
                owner[uid] = node.name
                own.append(uid)
            elif resources[uid].kind != Kind.TEST:
                shared.setdefault((owner[uid], node.name), []).append(uid)
        chosen[node.name] = own
    for (first, second), uids in shared.items():
        listed = ", ".join(f"`{resources[uid].name}`" for uid in uids[:_LISTED])
        more = f" and {len(uids) - _LISTED} more" if len(uids) > _LISTED else ""
        noun = "model" if len(uids) == 1 else "models"
        problems.append(
            f"{noun} {listed}{more} selected by two nodes: `{first}` and `{second}`; "
            "a model may belong to one node only"
        )


def _test_groups(project: Project, uids: Sequence[str]) -> list[TestGroup]:
    resources = project.resources
    by_resource: dict[str, list[str]] = {}
    single: list[TestGroup] = []
    for uid in uids:
        resource = resources[uid]
        if resource.kind != Kind.TEST:
            continue
        tested = [p for p in project.graph.parents(uid) if resources[p].kind in REFABLE]
        if len(tested) == 1:
            by_resource.setdefault(tested[0], []).append(uid)
        else:
            single.append(TestGroup(resource.name, resource.name, (uid,)))
    grouped = [
        TestGroup(f"{resources[parent].name}.test", resources[parent].name, tuple(tests))
        for parent, tests in by_resource.items()
    ]
    return grouped + single


def resource_dependencies(project: Project, selections: Selections) -> dict[str, list[str]]:
    """Task id -> the task ids it waits for, for every resource and test task."""
    resources = project.resources
    graph = project.graph
    selected = {uid for uids in selections.resources.values() for uid in uids}
    nearest = nearest_selected_parents(graph, selected)
    deps: dict[str, list[str]] = {
        resources[uid].name: [resources[p].name for p in nearest[uid]] for uid in selected
    }
    followers: dict[str, list[str]] = {}
    for uid in selected:
        for parent in nearest[uid]:
            followers.setdefault(parent, []).append(uid)
    descendants = _Descendants(graph)
    for groups in selections.tests.values():
        for group in groups:
            upstream: dict[str, None] = {}
            tested: set[str] = set()
            for test in group.tests:
                upstream.update(dict.fromkeys(resources[p].name for p in nearest[test]))
                tested |= {p for p in graph.parents(test) if resources[p].kind in REFABLE}
            deps[group.id] = list(upstream)
            for follower in _waiting_for(tested, selected, followers, descendants):
                deps[resources[follower].name].append(group.id)
    return deps


class _Descendants:
    """Descendants of a vertex, computed once per vertex asked about."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.known: dict[str, set[str]] = {}

    def of(self, uid: str) -> set[str]:
        if uid not in self.known:
            self.known[uid] = self.graph.descendants([uid])
        return self.known[uid]


def _waiting_for(
    tested: set[str],
    selected: set[str],
    followers: Mapping[str, list[str]],
    descendants: _Descendants,
) -> list[str]:
    """The selected resources right after a tested one that descend from every resource
    the tests are on: they wait for the tests (dbt build), and everything after them waits
    through them."""
    candidates = {uid for parent in tested & selected for uid in followers.get(parent, ())}
    if len(tested) <= 1:
        return sorted(candidates)
    return sorted(
        uid for uid in candidates if all(uid in descendants.of(parent) for parent in tested)
    )


def nearest_selected_parents(graph: Graph, selected: set[str]) -> dict[str, tuple[str, ...]]:
    """For every vertex, the selected vertices it depends on, looking through unselected
    ones: if c refs b refs a and only a and c are selected, c depends on a."""
    reach: dict[str, tuple[str, ...]] = {}
    for vertex in graph.topological_order():
        found: dict[str, None] = {}
        for parent in graph.parents(vertex):
            if parent in selected:
                found[parent] = None
            else:
                found.update(dict.fromkeys(reach[parent]))
        reach[vertex] = tuple(found)
    return reach

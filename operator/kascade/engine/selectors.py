"""dbt's node selection over a project's resources, evaluated as dbt evaluates it.

Each criterion selects what its method matches, with its graph operators over the whole
project graph (tests and sources included), then takes the tests of what it selected along
(dbt's indirect selection: eager by default; cautious, buildable or empty in a YAML
selector). Unions, intersections and differences combine those sets. A node selects
`union(include) - union(exclude)`; without include, everything, or the default selector of
selectors.yml when it has no exclude either (as `dbt build` without `--select`).
`selector:NAME` in an include or exclude stands for that YAML selector.

Parsing lives in engine.selectorspec, the methods in engine.selectormethods.
"""

from __future__ import annotations

from collections.abc import Sequence

from kascade.engine.errors import SelectorError
from kascade.engine.project import Project
from kascade.engine.resources import Kind
from kascade.engine.selectormethods import predicate
from kascade.engine.selectorspec import (
    METHODS,
    Combination,
    Criterion,
    Indirect,
    SetOperation,
    Spec,
    criteria,
    parse_criterion,
    parse_selection,
)

__all__ = [
    "METHODS",
    "Criterion",
    "check_selection",
    "evaluate",
    "node_spec",
    "parse_criterion",
    "parse_selection",
    "select",
]


def select(
    project: Project, include: Sequence[str] | None, exclude: Sequence[str] | None = None
) -> set[str]:
    """Unique ids of the resources a node with this include and exclude selects."""
    return evaluate(project, node_spec(project, include, exclude))


def node_spec(
    project: Project, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> Spec:
    """What a node selects, as one spec: dbt's `--select`/`--exclude`, or the default
    selector when there is neither."""
    default = project.selectors.default
    if include is None and not exclude and default is not None:
        return project.selectors.specs[default]
    included: Spec = parse_selection(include) if include is not None else _everything()
    if not exclude:
        return included
    return Combination(SetOperation.DIFFERENCE, (included, parse_selection(exclude)))


def _everything() -> Spec:
    """dbt's default include: every node and every source."""
    return Combination(
        SetOperation.UNION,
        (parse_criterion("fqn:*"), parse_criterion("source:*")),
    )


def check_selection(project: Project, entries: Sequence[str]) -> None:
    """SelectorError when the entries do not parse or name a selector selectors.yml lacks."""
    for criterion in criteria(parse_selection(entries)):
        if criterion.method == "selector" and criterion.value not in project.selectors.specs:
            defined = ", ".join(project.selectors.specs) or "none"
            raise SelectorError(
                f"selector `{criterion.raw}`: selectors.yml defines no selector "
                f"`{criterion.value}` (defined: {defined})"
            )


def evaluate(project: Project, spec: Spec) -> set[str]:
    """The unique ids a spec selects, tests taken along as each criterion says."""
    if isinstance(spec, Criterion):
        return _criterion(project, spec)
    sets = [evaluate(project, part) for part in spec.parts]
    if not sets:
        return set()
    if spec.operation == SetOperation.UNION:
        return set().union(*sets)
    if spec.operation == SetOperation.INTERSECTION:
        return set.intersection(*sets)
    return sets[0].difference(*sets[1:])


def _criterion(project: Project, criterion: Criterion) -> set[str]:
    if criterion.method == "selector":
        specs = project.selectors.specs
        if criterion.value not in specs:
            raise SelectorError(
                f"selector `{criterion.raw}`: selectors.yml defines no selector `{criterion.value}`"
            )
        return evaluate(project, specs[criterion.value])
    test = predicate(project, criterion)
    base = {uid for uid, resource in project.resources.items() if test(resource)}
    graph = project.graph
    selected = set(base)
    if criterion.childrens_parents:
        family = base | graph.descendants(base)
        selected |= family | graph.ancestors(family)
    if criterion.parents:
        selected |= graph.ancestors(base, criterion.parents_depth)
    if criterion.children:
        selected |= graph.descendants(base, criterion.children_depth)
    return selected | _indirect_tests(project, selected, criterion.indirect)


def _indirect_tests(project: Project, selected: set[str], mode: Indirect) -> set[str]:
    """The tests dbt takes along with a criterion's selection."""
    if mode == Indirect.EMPTY:
        return set()
    graph = project.graph
    resources = project.resources
    tests = {
        child
        for uid in selected
        for child in graph.children(uid)
        if resources[child].kind == Kind.TEST
    }
    if mode == Indirect.EAGER:
        return tests
    reach = selected
    if mode == Indirect.BUILDABLE:
        sources = {uid for uid, r in resources.items() if r.kind == Kind.SOURCE}
        reach = selected | graph.ancestors(selected) | sources
    return {test for test in tests if set(graph.parents(test)) <= reach}

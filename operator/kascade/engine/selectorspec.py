"""dbt's node selection, parsed: criteria (a method and value with graph operators) and
their unions, intersections and differences, as dbt builds them from `--select` strings and
from selectors.yml. engine.selectors evaluates them over a project.

A selector list is a union; inside one string, spaces separate union members and commas
join criteria into an intersection. A criterion is an optional graph operator around a
method and value: `@x`, `+x`, `2+x`, `x+`, `x+1`, `tag:daily`, `path:models/marts`, ...,
or a bare value (a path when it contains "/", a file when it ends in .sql/.py/.csv, else
fqn). `selector:NAME` names a selector of selectors.yml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kascade.engine.errors import SelectorError

_CRITERION = re.compile(
    r"^(?P<at>@)?"
    r"(?:(?P<parents_depth>\d*)(?P<parents>\+))?"
    r"(?:(?P<method>[A-Za-z_][\w.]*):)?"
    r"(?P<value>.*?)"
    r"(?:(?P<children>\+)(?P<children_depth>\d*))?$"
)
METHODS = (
    "fqn",
    "tag",
    "path",
    "file",
    "config",
    "package",
    "resource_type",
    "source",
    "test_type",
    "test_name",
    "selector",
)


class Indirect(StrEnum):
    """dbt's indirect selection: which tests of the selected resources come along."""

    EAGER = "eager"
    """Every test of a selected resource."""
    CAUTIOUS = "cautious"
    """Tests all of whose resources are selected."""
    BUILDABLE = "buildable"
    """Tests whose resources are selected or ancestors of selected ones."""
    EMPTY = "empty"
    """No test but those selected themselves."""


@dataclass(frozen=True)
class Criterion:
    """One atom of a selector: a method and value, with its graph operators."""

    raw: str
    method: str
    value: str
    key: tuple[str, ...] = ()
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    childrens_parents: bool = False
    indirect: Indirect = Indirect.EAGER


class SetOperation(StrEnum):
    """How a combination joins its parts."""

    UNION = "union"
    INTERSECTION = "intersection"
    DIFFERENCE = "difference"
    """The first part less every other."""


@dataclass(frozen=True)
class Combination:
    """Parts joined by a set operation."""

    operation: SetOperation
    parts: tuple[Spec, ...]


Spec = Criterion | Combination


def parse_criterion(raw: str, *, allow_selector: bool = True) -> Criterion:
    """Parse one atom such as `2+tag:staging` or `@fct_orders`; SelectorError if malformed."""
    match = _CRITERION.match(raw)
    if match is None:  # the pattern accepts any string; kept for the type checker
        raise SelectorError(f"selector `{raw}` does not parse")
    value = match["value"]
    if not value:
        raise SelectorError(f"selector `{raw}` has no value to match")
    if "+" in value or "@" in value:
        raise SelectorError(
            f"selector `{raw}`: graph operators go only at the ends: `+x`, `N+x`, `x+`, `x+N`, `@x`"
        )
    if match["at"] and match["children"]:
        raise SelectorError(f'selector `{raw}`: the "@" prefix and a "+" suffix are incompatible')
    method, key = method_of(raw, match["method"], value)
    graph = match["at"] or match["parents"] or match["children"]
    if method == "selector" and (graph or not allow_selector):
        raise SelectorError(
            f"selector `{raw}`: `selector:` names a selector of selectors.yml"
            + (
                ", without graph operators"
                if graph
                else "; here write {method: selector, value: NAME}"
            )
        )
    return Criterion(
        raw=raw,
        method=method,
        value=value,
        key=key,
        parents=bool(match["parents"]),
        parents_depth=int(match["parents_depth"]) if match["parents_depth"] else None,
        children=bool(match["children"]),
        children_depth=int(match["children_depth"]) if match["children_depth"] else None,
        childrens_parents=bool(match["at"]),
    )


def method_of(raw: str, written: str | None, value: str) -> tuple[str, tuple[str, ...]]:
    """The method of a criterion and its key (`config.materialized` -> config, materialized);
    the default method for a bare value."""
    if written is None:
        if "/" in value or "\\" in value:
            return "path", ()
        if value.lower().endswith((".sql", ".py", ".csv")):
            return "file", ()
        return "fqn", ()
    name, *key = written.split(".")
    if name not in METHODS:
        known = ", ".join(m if m != "config" else "config.<key>" for m in METHODS)
        raise SelectorError(f"selector `{raw}`: unknown method `{written}` (known: {known})")
    if name == "config" and (not key or not all(key)):
        raise SelectorError(f"selector `{raw}`: config needs a key, e.g. config.materialized:table")
    if name != "config" and key:
        raise SelectorError(f"selector `{raw}`: method `{name}` takes no `.{'.'.join(key)}`")
    return name, tuple(key)


def parse_selection(entries: Iterable[str]) -> Combination:
    """Parse a selector list (entries and spaces: union; commas: intersection)."""
    groups: list[Spec] = []
    for entry in entries:
        if not entry.strip():
            raise SelectorError("empty selector")
        for token in entry.split():
            parts = token.split(",")
            if not all(parts):
                raise SelectorError(f"selector `{token}`: empty criterion around a comma")
            criteria = tuple(parse_criterion(part) for part in parts)
            groups.append(Combination(SetOperation.INTERSECTION, criteria))
    return Combination(SetOperation.UNION, tuple(groups))


def criteria(spec: Spec) -> Iterable[Criterion]:
    """Every criterion of a spec, depth first."""
    if isinstance(spec, Criterion):
        yield spec
        return
    for part in spec.parts:
        yield from criteria(part)

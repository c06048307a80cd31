"""dbt's node selection language over a project's resources.

A selector list is a union; inside one string, spaces separate union members and commas
join criteria into an intersection. A criterion is an optional graph operator around a
method and value: `@x`, `+x`, `2+x`, `x+`, `x+1`, `tag:daily`, `path:models/marts`,
`fqn:marts.finance.*`, `config.materialized:table`, `file:stg_*.sql`, `package:shop`,
`resource_type:seed`, `source:raw.orders`, `test_type:singular`, `test_name:not_null`, or
a bare value (a path when it contains "/", a file when it ends in .sql/.py/.csv, else fqn).
Ancestors and descendants are taken over the whole project graph, tests and sources
included, as dbt does; tests of selected resources join them (dbt's eager indirect
selection) unless a test is excluded itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from kascade.engine.errors import SelectorError
from kascade.engine.project import Project
from kascade.engine.resources import Kind, Resource

_CRITERION = re.compile(
    r"^(?P<at>@)?"
    r"(?:(?P<parents_depth>\d*)(?P<parents>\+))?"
    r"(?:(?P<method>[A-Za-z_][\w.]*):)?"
    r"(?P<value>.*?)"
    r"(?:(?P<children>\+)(?P<children_depth>\d*))?$"
)
_GLOB_CHARACTERS = frozenset("*?[]")
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
)
_TEST_TYPES = {"generic": True, "schema": True, "singular": False, "data": False}


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


Intersection = tuple[Criterion, ...]


@dataclass(frozen=True)
class Selection:
    """A parsed selector list: a union of intersections of criteria."""

    groups: tuple[Intersection, ...]


def parse_criterion(raw: str) -> Criterion:
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
    method, key = _method(raw, match["method"], value)
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


def _method(raw: str, written: str | None, value: str) -> tuple[str, tuple[str, ...]]:
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


def parse_selection(entries: Iterable[str]) -> Selection:
    """Parse a selector list (entries and spaces: union; commas: intersection)."""
    groups: list[Intersection] = []
    for entry in entries:
        if not entry.strip():
            raise SelectorError("empty selector")
        for token in entry.split():
            parts = token.split(",")
            if not all(parts):
                raise SelectorError(f"selector `{token}`: empty criterion around a comma")
            groups.append(tuple(parse_criterion(part) for part in parts))
    return Selection(tuple(groups))


def select(
    project: Project, include: Sequence[str] | None, exclude: Sequence[str] | None = None
) -> set[str]:
    """Unique ids of the resources selected: union(include) - union(exclude), no include
    meaning everything. Each side takes the tests of what it selects along (dbt's eager
    indirect selection), so excluding a model excludes its tests too."""
    resources = project.resources
    chosen = set(resources) if include is None else evaluate(project, parse_selection(include))
    if exclude:
        excluded = evaluate(project, parse_selection(exclude))
        return _with_tests(project, chosen) - _with_tests(project, excluded)
    return _with_tests(project, chosen)


def _with_tests(project: Project, chosen: set[str]) -> set[str]:
    """The selection and every test of a resource in it."""
    graph = project.graph
    resources = project.resources
    tests = {
        child
        for uid in chosen
        if uid in graph
        for child in graph.children(uid)
        if resources[child].kind == Kind.TEST
    }
    return chosen | tests


def evaluate(project: Project, selection: Selection) -> set[str]:
    """The unique ids a parsed selection picks (before indirect selection)."""
    chosen: set[str] = set()
    for group in selection.groups:
        result = _with_graph_operators(project, group[0])
        for criterion in group[1:]:
            if not result:
                break
            result &= _with_graph_operators(project, criterion)
        chosen |= result
    return chosen


def _with_graph_operators(project: Project, criterion: Criterion) -> set[str]:
    test = predicate(project, criterion)
    base = {uid for uid, resource in project.resources.items() if test(resource)}
    graph = project.graph
    if criterion.childrens_parents:
        family = base | graph.descendants(base)
        return family | graph.ancestors(family)
    result = set(base)
    if criterion.parents:
        result |= graph.ancestors(base, criterion.parents_depth)
    if criterion.children:
        result |= graph.descendants(base, criterion.children_depth)
    return result


def predicate(project: Project, criterion: Criterion) -> Callable[[Resource], bool]:
    """Whether a resource satisfies a criterion's method and value (graph operators aside)."""
    value = criterion.value
    method = criterion.method
    if method == "fqn":
        return lambda resource: _fqn_matches(resource, value)
    if method == "tag":
        if _has_glob(value):
            return lambda resource: any(fnmatchcase(tag, value) for tag in resource.tags)
        return lambda resource: value in resource.tags
    if method == "path":
        return lambda resource: (
            _path_matches(resource.path, value)
            or (resource.patch_path is not None and _path_matches(resource.patch_path, value))
        )
    if method == "file":
        return lambda resource: _file_matches(resource.path, value)
    if method == "package":
        in_package = fnmatchcase(project.name, value)
        return lambda resource: in_package
    if method == "resource_type":
        return lambda resource: resource.kind.value == value
    if method == "source":
        return lambda resource: _source_matches(resource, value)
    if method == "test_type":
        generic = _TEST_TYPES.get(value)
        return lambda resource: (
            resource.test is not None and generic is not None and resource.test.generic == generic
        )
    if method == "test_name":
        return lambda resource: resource.test is not None and _test_name_matches(resource, value)
    key = criterion.key
    return lambda resource: _config_matches(resource.config, key, value)


def _source_matches(resource: Resource, value: str) -> bool:
    """`source:raw`, `source:raw.orders`, `source:shop.raw.orders`, with wildcards."""
    if resource.kind != Kind.SOURCE or resource.source_name is None:
        return False
    parts = value.split(".")
    if len(parts) > 3:
        return False
    own = (resource.package, resource.source_name, resource.name)[: len(parts)]
    if len(parts) < 3:
        own = (resource.source_name, resource.name)[: len(parts)]
    return all(fnmatchcase(actual, wanted) for actual, wanted in zip(own, parts, strict=True))


def _test_name_matches(resource: Resource, value: str) -> bool:
    test = resource.test
    assert test is not None
    return fnmatchcase(test.test_name.rpartition(".")[2] if test.generic else resource.name, value)


def _file_matches(path: str, value: str) -> bool:
    file = PurePosixPath(path)
    return fnmatchcase(file.name, value) or fnmatchcase(file.stem, value)


def _fqn_matches(resource: Resource, value: str) -> bool:
    if resource.fqn[-1] == value:
        return True
    # dbt matches a wildcard against the model name only at the top of the project;
    # `stg_*` selecting stg_orders in any folder is what users expect (and dbt is adopting).
    if "." not in value and _has_glob(value) and fnmatchcase(resource.name, value):
        return True
    return _fqn_prefix_matches(resource.fqn, value) or _fqn_prefix_matches(resource.fqn[1:], value)


def _fqn_prefix_matches(fqn: Sequence[str], value: str) -> bool:
    flat = [piece for segment in fqn for piece in segment.split(".")]
    parts = value.split(".")
    if len(flat) < len(parts):
        return False
    for index, part in enumerate(parts):
        if _has_glob(part):
            return fnmatchcase(".".join(flat[index:]), ".".join(parts[index:]))
        if flat[index] != part:
            return False
    return True


def _has_glob(text: str) -> bool:
    return not _GLOB_CHARACTERS.isdisjoint(text)


def _path_matches(model_path: str, value: str) -> bool:
    pattern = value.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    path = PurePosixPath(model_path)
    candidates = [model_path, *(p.as_posix() for p in path.parents if p.as_posix() != ".")]
    if not _has_glob(pattern):
        return pattern in candidates
    regex = _glob_regex(pattern)
    return any(regex.fullmatch(candidate) for candidate in candidates)


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: `*` and `?` stay inside one folder, `**` spans folders."""
    pieces: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            pieces.append(".*" if last else "(?:[^/]+/)*")
            continue
        pieces.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(pieces))


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in segment[index + 1 :]:
            end = segment.index("]", index + 1)
            body = segment[index + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body}]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def _config_matches(config: Any, key: Sequence[str], value: str) -> bool:
    current = config
    for part in key:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    if isinstance(current, list | tuple):
        return any(_scalar_matches(item, value) for item in current)
    return _scalar_matches(current, value)


def _scalar_matches(actual: Any, value: str) -> bool:
    if isinstance(actual, bool):
        return value.lower() == str(actual).lower()
    if actual is None:
        return False
    return str(actual) == value

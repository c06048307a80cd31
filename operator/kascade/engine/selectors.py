"""dbt's node selection language over a model project.

A selector list is a union; inside one string, spaces separate union members and commas
join criteria into an intersection. A criterion is an optional graph operator around a
method and value: `@x`, `+x`, `2+x`, `x+`, `x+1`, `tag:daily`, `path:models/marts`,
`fqn:marts.finance.*`, `config.materialized:table`, `file:stg_*.sql`, `package:shop`, or a
bare value (a path when it contains "/", a file when it ends in .sql/.py/.csv, else fqn).
Ancestors and descendants are taken over the whole project graph.
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
from kascade.engine.project import Model, Project

_CRITERION = re.compile(
    r"^(?P<at>@)?"
    r"(?:(?P<parents_depth>\d*)(?P<parents>\+))?"
    r"(?:(?P<method>[A-Za-z_][\w.]*):)?"
    r"(?P<value>.*?)"
    r"(?:(?P<children>\+)(?P<children_depth>\d*))?$"
)
_GLOB_CHARACTERS = frozenset("*?[]")
METHODS = ("fqn", "tag", "path", "file", "config", "package")


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
    """Names of the models selected: union(include) - union(exclude); no include means all."""
    chosen = set(project.models) if include is None else evaluate(project, parse_selection(include))
    if exclude:
        chosen -= evaluate(project, parse_selection(exclude))
    return chosen


def evaluate(project: Project, selection: Selection) -> set[str]:
    """The models a parsed selection picks."""
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
    base = {name for name, model in project.models.items() if test(model)}
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


def predicate(project: Project, criterion: Criterion) -> Callable[[Model], bool]:
    """Whether a model satisfies a criterion's method and value (graph operators aside)."""
    value = criterion.value
    method = criterion.method
    if method == "fqn":
        return lambda model: _fqn_matches(model, value)
    if method == "tag":
        if _has_glob(value):
            return lambda model: any(fnmatchcase(tag, value) for tag in model.tags)
        return lambda model: value in model.tags
    if method == "path":
        return lambda model: _path_matches(model.path, value)
    if method == "file":
        return lambda model: _file_matches(model.path, value)
    if method == "package":
        in_package = fnmatchcase(project.name, value)
        return lambda model: in_package
    key = criterion.key
    return lambda model: _config_matches(model.config, key, value)


def _file_matches(path: str, value: str) -> bool:
    file = PurePosixPath(path)
    return fnmatchcase(file.name, value) or fnmatchcase(file.stem, value)


def _fqn_matches(model: Model, value: str) -> bool:
    if model.name == value:
        return True
    # dbt matches a wildcard against the model name only at the top of the project;
    # `stg_*` selecting stg_orders in any folder is what users expect (and dbt is adopting).
    if "." not in value and _has_glob(value) and fnmatchcase(model.name, value):
        return True
    return _fqn_prefix_matches(model.fqn, value) or _fqn_prefix_matches(model.fqn[1:], value)


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

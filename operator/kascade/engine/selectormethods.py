"""dbt's selector methods: whether one resource matches a criterion's method and value
(graph operators aside), with dbt's meaning for each method.

Paths are dbt's `original_file_path`: relative to the project, and for a resource of an
installed package relative to that package. Like dbt, `path:` matches the paths a glob of
the value finds in the project's folder, so a package's `models/x.sql` is selected by
`path:models` when the project has a `models` folder too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from kascade.engine.project import Project
from kascade.engine.resources import Kind, Resource
from kascade.engine.selectorspec import Criterion

_GLOB_CHARACTERS = frozenset("*?[]")
_TEST_TYPES = {"generic": True, "schema": True, "singular": False, "data": False}

Predicate = Callable[[Resource], bool]


def predicate(project: Project, criterion: Criterion) -> Predicate:
    """Whether a resource satisfies a criterion's method and value (graph operators aside)."""
    value = criterion.value
    method = criterion.method
    if method == "fqn":
        return lambda resource: resource.kind != Kind.SOURCE and _fqn_matches(resource, value)
    if method == "tag":
        if _has_glob(value):
            return lambda resource: any(fnmatchcase(tag, value) for tag in resource.tags)
        return lambda resource: value in resource.tags
    if method == "path":
        return _path_predicate(project, value)
    if method == "file":
        return lambda resource: _file_matches(resource.dbt_path, value)
    if method == "package":
        wanted = project.name if value == "this" else value
        return lambda resource: fnmatchcase(resource.package, wanted)
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


def _path_predicate(project: Project, value: str) -> Predicate:
    pattern = value.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    exists = _Existing(str(project.root))

    def matches(resource: Resource) -> bool:
        paths = [resource.dbt_path]
        if resource.patch_path is not None:
            paths.append(resource.patch_path)
        for path in paths:
            # a package's path names a file of the project only where the project has it
            check = exists if resource.in_package else None
            if _path_matches(path, pattern, check):
                return True
        return False

    return matches


class _Existing:
    """Whether a path exists in the project's folder (asked once per path)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.known: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        if path not in self.known:
            self.known[path] = os.path.lexists(os.path.join(self.root, path))
        return self.known[path]


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


def _path_matches(path: str, pattern: str, exists: Callable[[str], bool] | None) -> bool:
    """Whether the file, or a folder above it, matches; `exists`: only paths the project
    has count (for a package's resources)."""
    candidates = [path, *(p.as_posix() for p in PurePosixPath(path).parents if p.as_posix() != ".")]
    if exists is not None:
        candidates = [candidate for candidate in candidates if exists(candidate)]
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

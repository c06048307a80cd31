"""Properties files (`models/**/*.yml`): per-resource configs, source tables, the generic
tests declared on models, seeds, snapshots, sources and their columns, and snapshots
defined in YAML (dbt >= 1.9: a `snapshots:` entry with a `relation`), as written."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import as_list, load_yaml, merge_config
from kascade.engine.resources import Kind, tags_of, unique_tags

_SECTIONS = {"models": Kind.MODEL, "seeds": Kind.SEED, "snapshots": Kind.SNAPSHOT}
_TEST_KEYS = ("data_tests", "tests")


@dataclass(frozen=True)
class PropertiesFile:
    """A properties file to read: where it is and the folders that place it in the fqn."""

    absolute: str
    path: str
    folders: tuple[str, ...]


@dataclass(frozen=True)
class DeclaredTest:
    """A generic test as a properties file declares it, on a resource or a column."""

    file: PropertiesFile
    target_kind: Kind
    target: str
    """The resource name; `source.table` for a source table."""
    definition: Any
    column: str | None = None
    column_tags: tuple[str, ...] = ()
    """Tags the test takes from where it is declared (its column, a source table)."""


@dataclass(frozen=True)
class SourceTable:
    """A table of a source."""

    file: PropertiesFile
    source: str
    table: str
    config: Mapping[str, Any]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class YamlSnapshot:
    """A snapshot defined in a properties file: `relation: ref('x')` or `source('s', 't')`."""

    file: PropertiesFile
    name: str
    relation: Any


@dataclass
class Properties:
    """What every properties file of the project declares."""

    configs: dict[tuple[Kind, str], dict[str, Any]] = field(default_factory=dict)
    described: dict[tuple[Kind, str], str] = field(default_factory=dict)
    """The properties file of each resource that has an entry (the first one)."""
    tests: list[DeclaredTest] = field(default_factory=list)
    sources: list[SourceTable] = field(default_factory=list)
    snapshots: list[YamlSnapshot] = field(default_factory=list)


Render = Callable[[Any, str, tuple[str, ...]], Any]
"""Renders the `var()` templates of a value: (value, file, keys) -> value."""


def _as_written(value: Any, shown: str, keys: tuple[str, ...]) -> Any:
    return value


def read_properties(
    files: Sequence[PropertiesFile], problems: list[str], render: Render = _as_written
) -> Properties:
    """Read properties files in the order they apply; problems name the file. The configs
    and tags of entries are rendered (dbt renders them; tests and descriptions later)."""
    found = Properties()
    for file in files:
        document = load_yaml(Path(file.absolute), problems, file.path)
        if not isinstance(document, dict):
            continue
        for section, kind in _SECTIONS.items():
            for entry in _entries(document, section, file, problems):
                entry = _rendered(entry, render, file.path, (section, entry["name"]))
                _read_resource(found, file, kind, entry)
                if kind == Kind.SNAPSHOT and "relation" in entry:
                    found.snapshots.append(YamlSnapshot(file, entry["name"], entry["relation"]))
        for entry in _entries(document, "sources", file, problems):
            entry = _rendered(entry, render, file.path, ("sources", entry["name"]))
            tables = entry.get("tables")
            if isinstance(tables, list):
                entry["tables"] = [
                    _rendered(table, render, file.path, ("sources", entry["name"], str(index)))
                    if isinstance(table, dict)
                    else table
                    for index, table in enumerate(tables)
                ]
            _read_source(found, file, entry, problems)
    return found


def _rendered(
    entry: dict[str, Any], render: Render, shown: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """The entry with its `config` and `tags` rendered."""
    rendered = dict(entry)
    for key in ("config", "tags"):
        if key in entry:
            rendered[key] = render(entry[key], shown, (*keys, key))
    return rendered


def _entries(
    document: Mapping[str, Any], section: str, file: PropertiesFile, problems: list[str]
) -> list[dict[str, Any]]:
    entries = document.get(section)
    if entries is None:
        return []
    if not isinstance(entries, list):
        problems.append(f"{file.path}: `{section}` must be a list of entries with a `name`")
        return []
    kept: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            kept.append(entry)
        else:
            problems.append(f"{file.path}: {section}[{index}] has no `name`")
    return kept


def _read_resource(
    found: Properties, file: PropertiesFile, kind: Kind, entry: dict[str, Any]
) -> None:
    name = str(entry["name"])
    found.described.setdefault((kind, name), file.path)
    config = entry.get("config")
    own: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
    if entry.get("tags") is not None:  # the older place for tags, still honoured by dbt
        own = merge_config(own, {"tags": as_list(entry["tags"])})
    if own:
        key = (kind, name)
        found.configs[key] = merge_config(found.configs.get(key, {}), own)
    _read_tests(found, file, kind, name, entry)


def _read_tests(
    found: Properties,
    file: PropertiesFile,
    kind: Kind,
    target: str,
    entry: Mapping[str, Any],
    inherited: tuple[str, ...] = (),
) -> None:
    """The tests of an entry and of its columns. Tests take the tags of their column and,
    on a source table, those of the source and table (`inherited`), as in dbt."""
    for definition in _tests_of(entry):
        found.tests.append(DeclaredTest(file, kind, target, definition, column_tags=inherited))
    columns = entry.get("columns")
    for column in columns if isinstance(columns, list) else []:
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            continue
        config = column.get("config")
        tags = [
            *inherited,
            *as_list(column.get("tags")),
            *as_list(config.get("tags") if isinstance(config, dict) else None),
        ]
        for definition in _tests_of(column):
            found.tests.append(
                DeclaredTest(
                    file,
                    kind,
                    target,
                    definition,
                    column=str(column["name"]),
                    column_tags=unique_tags(tags),
                )
            )


def _tests_of(entry: Mapping[str, Any]) -> list[Any]:
    definitions: list[Any] = []
    for key in _TEST_KEYS:
        value = entry.get(key)
        if isinstance(value, list):
            definitions += value
    return definitions


def _read_source(
    found: Properties, file: PropertiesFile, entry: dict[str, Any], problems: list[str]
) -> None:
    source = str(entry["name"])
    config = entry.get("config")
    base: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
    base = merge_config(base, {"tags": as_list(entry.get("tags"))})
    tables = entry.get("tables")
    if tables is None:
        return
    if not isinstance(tables, list):
        problems.append(f"{file.path}: source `{source}`: `tables` must be a list")
        return
    for index, table in enumerate(tables):
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            problems.append(f"{file.path}: source `{source}`: tables[{index}] has no `name`")
            continue
        name = str(table["name"])
        own = table.get("config")
        merged = merge_config(base, dict(own) if isinstance(own, dict) else {})
        merged = merge_config(merged, {"tags": as_list(table.get("tags"))})
        tags = tags_of(merged)
        found.sources.append(SourceTable(file, source, name, merged, tags))
        _read_tests(found, file, Kind.SOURCE, f"{source}.{name}", table, tags)

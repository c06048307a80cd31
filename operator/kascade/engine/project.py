"""A dbt project on disk as kascade plans it: its models, seeds, snapshots, tests and
sources (dbt's resources, by unique id, with merged configs), the graph of what depends on
what, its scripts, and the problems found reading it.

Files are found by engine.projectfiles, which never leaves the project. Problems are
collected, not raised: a plan lists them all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import (
    ProjectSettings,
    as_list,
    folder_levels,
    merge_config,
    read_settings,
)
from kascade.engine.graph import Graph
from kascade.engine.projectfiles import SCRIPT_ENTRY, SCRIPTS_DIR, ProjectFile, Walker
from kascade.engine.properties import DeclaredTest, Properties, PropertiesFile, read_properties
from kascade.engine.resources import REFABLE, Kind, Resource, TestSpec, tags_of, unique_id
from kascade.engine.sqlscan import Ref, Source, scan_sql
from kascade.engine.testnames import CONFIG_ARGUMENTS, generic_test_name

__all__ = ["SCRIPTS_DIR", "SCRIPT_ENTRY", "Project", "Resource", "load_project"]

_PROPERTIES_FILES = (".yml", ".yaml")
_DEFAULTS: Mapping[Kind, Mapping[str, Any]] = {
    Kind.MODEL: {"materialized": "view", "enabled": True, "tags": []},
    Kind.SEED: {"materialized": "seed", "enabled": True, "tags": []},
    Kind.SNAPSHOT: {"materialized": "snapshot", "enabled": True, "tags": []},
    Kind.TEST: {"materialized": "test", "enabled": True, "severity": "ERROR", "tags": []},
    Kind.SOURCE: {"enabled": True, "tags": []},
}
_SECTION = {
    Kind.MODEL: "models",
    Kind.SEED: "seeds",
    Kind.SNAPSHOT: "snapshots",
    Kind.TEST: "data_tests",
    Kind.SOURCE: "sources",
}
_SNAPSHOT_BLOCK = re.compile(
    r"\{%-?\s*snapshot\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*endsnapshot\s*-?%\}", re.DOTALL
)
_GENERIC_TEST_BLOCK = re.compile(r"\{%-?\s*test\s+[A-Za-z_]\w*\s*\(")


@dataclass(frozen=True)
class Project:
    """Everything kascade knows of a project directory, and the problems found loading it."""

    root: Path
    name: str
    resources: Mapping[str, Resource]
    """Every resource by unique id, models first, each kind in file order."""
    scripts: Mapping[str, str]
    graph: Graph
    """Unique ids and the unique ids each depends on (tests and sources included)."""
    problems: tuple[str, ...] = ()

    @cached_property
    def models(self) -> Mapping[str, Resource]:
        """The models by name."""
        return {r.name: r for r in self.resources.values() if r.kind == Kind.MODEL}

    @cached_property
    def refable(self) -> Mapping[str, Resource]:
        """Models, seeds and snapshots by name (what ref() names)."""
        return {r.name: r for r in self.resources.values() if r.kind in REFABLE}

    @cached_property
    def seeds(self) -> frozenset[str]:
        """The names of the seeds."""
        return frozenset(r.name for r in self.resources.values() if r.kind == Kind.SEED)


def load_project(root: Path | str) -> Project:
    """Read a project directory; problems (unknown refs, bad YAML) are collected, not raised."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        problems.append(f"project directory {root} does not exist")
        return Project(root, root.name, {}, {}, Graph({}), tuple(problems))
    settings = read_settings(root, problems)
    walker = Walker(root, problems)
    reader = _Reader(settings, walker, problems)
    resources = reader.read()
    if resources and not os.path.lexists(root / "dbt_project.yml"):
        problems.append(
            "dbt_project.yml is missing: dbt needs it to run the project's models, seeds "
            f"and tests (`name: {_project_name(root)}` is enough)"
        )
    graph = Graph(
        {uid: _resolve(resource, reader, problems) for uid, resource in resources.items()}
    )
    return Project(
        root=root,
        name=settings.name,
        resources=resources,
        scripts=walker.scripts(),
        graph=graph,
        problems=tuple(problems),
    )


class _Reader:
    """Reads every resource of one project (one instance per load)."""

    def __init__(self, settings: ProjectSettings, walker: Walker, problems: list[str]) -> None:
        self.settings = settings
        self.package = settings.name
        self.walker = walker
        self.problems = problems
        self.enabled: dict[str, Resource] = {}
        self.disabled: dict[str, Resource] = {}
        self.by_name: dict[str, Resource] = {}
        self.properties = Properties()

    def read(self) -> dict[str, Resource]:
        model_files = self._files(self.settings.model_paths, (".sql", *_PROPERTIES_FILES))
        seed_files = self._files(self.settings.seed_paths, (".csv", *_PROPERTIES_FILES))
        snapshot_files = self._files(self.settings.snapshot_paths, (".sql", *_PROPERTIES_FILES))
        test_files = self._files(self.settings.test_paths, (".sql", *_PROPERTIES_FILES))
        properties = read_properties(
            [
                PropertiesFile(f.absolute, f.path, f.folders)
                for f in (*model_files, *seed_files, *snapshot_files, *test_files)
                if f.path.endswith(_PROPERTIES_FILES)
            ],
            self.problems,
        )
        self.properties = properties
        for file in _of(model_files, ".sql"):
            self._add_sql(Kind.MODEL, file, file.name, self._read(file))
        for file in _of(seed_files, ".csv"):
            self._add(self._resource(Kind.SEED, file, file.name, {}))
        for file in _of(snapshot_files, ".sql"):
            text = self._read(file)
            for match in _SNAPSHOT_BLOCK.finditer(text or ""):
                offset = text.count("\n", 0, match.start(2)) if text else 0
                self._add_sql(Kind.SNAPSHOT, file, match[1], match[2], offset)
        for source in properties.sources:
            self._add_source(source.file, source.source, source.table, source.config)
        for file in _of(test_files, ".sql"):
            if file.folders[:1] == ("generic",):
                continue  # generic test definitions: macros, not tests
            text = self._read(file)
            if text is not None and not _GENERIC_TEST_BLOCK.search(text):
                self._add_sql(Kind.TEST, file, file.name, text, test=TestSpec(False, file.name))
        for declared in properties.tests:
            self._add_generic_test(declared)
        return self.enabled

    def _files(self, folders: Iterable[str], suffixes: tuple[str, ...]) -> list[ProjectFile]:
        found = [file for folder in folders for file in self.walker.files(folder, suffixes)]
        return sorted(found, key=lambda f: f.path.split("/"))

    def _read(self, file: ProjectFile) -> str | None:
        try:
            with open(file.absolute, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as err:
            self.problems.append(f"{file.path}: cannot read: {err}")
            return None

    def _folder_config(self, kind: Kind, fqn: tuple[str, ...]) -> dict[str, Any]:
        config: dict[str, Any] = dict(_DEFAULTS[kind])
        tree = self.settings.configs.get(_SECTION[kind], {})
        for level in folder_levels(tree, fqn):
            config = merge_config(config, level)
        return config

    def _resource(
        self,
        kind: Kind,
        file: ProjectFile | PropertiesFile,
        name: str,
        own: Mapping[str, Any],
        **extra: Any,
    ) -> Resource:
        fqn = (self.package, *file.folders, *extra.pop("fqn_tail", (name,)))
        config = self._folder_config(kind, fqn)
        declared = self.properties.configs.get((kind, name))
        if declared:
            config = merge_config(config, declared)
        if own:
            config = merge_config(config, own)
        uid = extra.pop("uid", None) or unique_id(kind, self.package, name)
        if kind in REFABLE:
            extra["patch_path"] = self.properties.described.get((kind, name))
        return Resource(
            unique_id=uid,
            kind=kind,
            name=name,
            package=self.package,
            path=file.path,
            fqn=fqn,
            config=config,
            tags=tags_of(config),
            **extra,
        )

    def _add_sql(
        self,
        kind: Kind,
        file: ProjectFile,
        name: str,
        text: str | None,
        line_offset: int = 0,
        test: TestSpec | None = None,
    ) -> None:
        if text is None:
            return
        scan = scan_sql(text)
        self.problems.extend(f"{file.path}: {_shift(error, line_offset)}" for error in scan.errors)
        own: dict[str, Any] = dict(scan.config)
        if scan.config_tags:
            own["tags"] = scan.config_tags
        refs = tuple(Ref(r.name, r.package, r.line + line_offset) for r in scan.refs)
        sources = tuple(Source(s.source, s.table, s.line + line_offset) for s in scan.sources)
        self._add(self._resource(kind, file, name, own, refs=refs, sources=sources, test=test))

    def _add_source(
        self, file: PropertiesFile, source: str, table: str, config: Mapping[str, Any]
    ) -> None:
        uid = unique_id(Kind.SOURCE, self.package, source, table)
        resource = self._resource(
            Kind.SOURCE, file, table, config, uid=uid, fqn_tail=(source, table), source_name=source
        )
        if uid in self.enabled:
            self.problems.append(f"{file.path}: source table `{source}.{table}` is defined twice")
        elif resource.config.get("enabled", True):
            self.enabled[uid] = resource

    def _add_generic_test(self, declared: DeclaredTest) -> None:
        parsed = _test_definition(declared.definition)
        where = f"{declared.file.path}: {declared.target}"
        if isinstance(parsed, str):
            self.problems.append(f"{where}: {parsed}")
            return
        test, arguments = parsed
        if declared.column is not None:
            arguments["column_name"] = declared.column
        own = {key: arguments.pop(key) for key in list(arguments) if key in CONFIG_ARGUMENTS}
        config = arguments.pop("config", None)
        if isinstance(config, dict):
            own = merge_config(own, config)
        if declared.target_kind == Kind.SOURCE:
            source, _, table = declared.target.partition(".")
            target_name = f"{source}_{table}"
            attached = unique_id(Kind.SOURCE, self.package, source, table)
            refs: tuple[Ref, ...] = ()
            sources: tuple[Source, ...] = (Source(source, table, 0),)
        else:
            target_name = declared.target
            attached = unique_id(declared.target_kind, self.package, declared.target)
            refs, sources = (Ref(declared.target, None, 0),), ()
        if attached not in self.enabled:
            return  # dbt drops the tests of a disabled or missing resource
        named = arguments.get("name")
        name = (
            str(named)
            if named
            else generic_test_name(
                test, target_name, arguments, source=declared.target_kind == Kind.SOURCE
            )
        )
        for value in _strings(arguments):
            if "ref(" in value or "source(" in value:
                scan = scan_sql("{{ " + value + " }}")
                refs += tuple(scan.refs)
                sources += tuple(scan.sources)
        tags = sorted({*declared.column_tags, *as_list(own.get("tags"))})
        if tags:
            own["tags"] = tags
        spec = TestSpec(True, test, attached=attached, column=declared.column)
        self._add(
            self._resource(
                Kind.TEST, declared.file, name, own, refs=refs, sources=sources, test=spec
            ),
            where=declared.file.path,
        )

    def _add(self, resource: Resource, where: str | None = None) -> None:
        if not resource.config.get("enabled", True):
            self.disabled.setdefault(resource.name, resource)
            return
        if resource.unique_id in self.enabled:
            self.problems.append(
                f"{resource.label} is defined twice: "
                f"{self.enabled[resource.unique_id].path} and {where or resource.path}"
            )
            return
        if resource.kind in REFABLE:
            other = self.by_name.get(resource.name)
            if other is not None:
                self.problems.append(
                    f"`{resource.name}` is defined twice: {other.path} ({other.kind.value}) "
                    f"and {resource.path} ({resource.kind.value}); ref() could not tell them apart"
                )
                return
            self.by_name[resource.name] = resource
        self.enabled[resource.unique_id] = resource


def _project_name(root: Path) -> str:
    """A dbt project name made from a folder name (letters, digits and `_`)."""
    name = re.sub(r"\W", "_", root.resolve().name) or "project"
    return name if not name[0].isdigit() else f"p_{name}"


def _of(files: list[ProjectFile], suffix: str) -> list[ProjectFile]:
    return [file for file in files if file.path.endswith(suffix)]


def _shift(error: str, offset: int) -> str:
    """A scan error's `line N:` moved by the lines before the block it came from."""
    if not offset:
        return error
    return re.sub(r"^line (\d+)", lambda m: f"line {int(m[1]) + offset}", error)


def _test_definition(definition: Any) -> tuple[str, dict[str, Any]] | str:
    """(test, arguments) of a test entry, or why it is not one."""
    if isinstance(definition, str):
        return definition, {}
    if not isinstance(definition, dict):
        return f"a test must be a name or a mapping, not {type(definition).__name__}"
    if "test_name" in definition:
        arguments = dict(definition)
        return str(arguments.pop("test_name")), arguments
    if len(definition) != 1:
        keys = ", ".join(str(key) for key in definition)
        return f"a test mapping must have one key, the test's name (found: {keys})"
    test, value = next(iter(definition.items()))
    if value is None:
        value = {}
    if not isinstance(value, dict):
        return f"test `{test}`: its arguments must be a mapping"
    arguments = dict(value)
    nested = arguments.pop("arguments", None)
    if isinstance(nested, dict):
        arguments.update(nested)
    return str(test), arguments


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _resolve(resource: Resource, reader: _Reader, problems: list[str]) -> list[str]:
    """The unique ids a resource depends on; unknown refs and sources are problems."""
    parents: list[str] = []
    for ref in resource.refs:
        where = f"{resource.path}:{ref.line}" if ref.line else resource.path
        target = reader.by_name.get(ref.name)
        if ref.package is not None and ref.package != reader.package:
            problems.append(
                f"{resource.label} refs `{ref.name}` in unknown package `{ref.package}` "
                f"(this project is `{reader.package}`) ({where})"
            )
        elif target is not None:
            parents.append(target.unique_id)
        elif ref.name in reader.disabled:
            problems.append(
                f"{resource.label} refs disabled {reader.disabled[ref.name].kind.value} "
                f"`{ref.name}` ({reader.disabled[ref.name].path} sets enabled: false) ({where})"
            )
        else:
            problems.append(f"{resource.label} refs unknown model `{ref.name}` ({where})")
    for source in resource.sources:
        uid = unique_id(Kind.SOURCE, reader.package, source.source, source.table)
        if uid in reader.enabled:
            parents.append(uid)
        else:
            where = f"{resource.path}:{source.line}" if source.line else resource.path
            problems.append(
                f"{resource.label} uses source `{source.source}.{source.table}`, which no "
                f"properties file defines (sources: in a .yml file) ({where})"
            )
    return list(dict.fromkeys(parents))

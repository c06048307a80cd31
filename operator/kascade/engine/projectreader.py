"""Reading the resources of one dbt project (the root project, or an installed package) as
dbt parses them: models and their calls, seeds, snapshot blocks and YAML snapshots,
singular tests, sources and generic tests from properties files, each with dbt's unique
id, fqn and merged config. Every package adds to one Catalog."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kascade.engine.dbtconfig import (
    ConfigRenderer,
    ProjectSettings,
    as_list,
    folder_levels,
    merge_config,
)
from kascade.engine.dbtvars import Vars
from kascade.engine.projectfiles import ProjectFile, Walker
from kascade.engine.properties import (
    DeclaredTest,
    Properties,
    PropertiesFile,
    YamlSnapshot,
    read_properties,
)
from kascade.engine.resources import REFABLE, Kind, Resource, TestSpec, tags_of, unique_id
from kascade.engine.sqlcalls import Computed, Ref, Source
from kascade.engine.sqlscan import scan_sql
from kascade.engine.testnames import CONFIG_ARGUMENTS, generic_test_name

PROPERTIES_FILES = (".yml", ".yaml")
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


@dataclass
class Catalog:
    """The resources of every package of one load."""

    root: str
    """The root project's name."""
    problems: list[str]
    enabled: dict[str, Resource] = field(default_factory=dict)
    disabled: dict[tuple[str, str], Resource] = field(default_factory=dict)
    """Disabled models, seeds and snapshots by (package, name)."""
    by_name: dict[tuple[str, str], Resource] = field(default_factory=dict)
    """Models, seeds and snapshots by (package, name)."""


def at(label: str, path: str, line: int, message: str) -> str:
    """A problem of a resource at a line of its file (0: the file)."""
    where = f"{path}:{line}" if line else path
    return f"{label} ({where}): {message}"


class PackageReader:
    """Reads every resource of one project into the catalog (one instance per package)."""

    def __init__(
        self,
        catalog: Catalog,
        settings: ProjectSettings,
        walker: Walker,
        vars: Vars,
        *,
        folder: str = "",
        root_configs: Mapping[str, Mapping[str, Any]] | None = None,
        macro_calls: re.Pattern[str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.problems = catalog.problems
        self.settings = settings
        self.package = settings.name
        self.walker = walker
        self.vars = vars
        self.prefix = f"{folder}/" if folder else ""
        self.root_configs = root_configs
        self.macro_calls = macro_calls
        self.properties = Properties()

    def lookup(self, name: str, default: Any) -> Any:
        """A var of this package's SQL."""
        return self.vars.lookup(name, default, package=self.package)

    def _render(self, value: Any, shown: str, keys: tuple[str, ...]) -> Any:
        """A value of a properties file, its `var()` templates rendered as dbt does."""
        renderer = ConfigRenderer(self.vars, shown, self.problems, package=self.package)
        return renderer.render(value, keys)

    def read(self) -> None:
        suffixes = (".sql", *PROPERTIES_FILES)
        model_files = self._files(self.settings.model_paths, suffixes)
        seed_files = self._files(self.settings.seed_paths, (".csv", *PROPERTIES_FILES))
        snapshot_files = self._files(self.settings.snapshot_paths, suffixes)
        test_files = self._files(self.settings.test_paths, suffixes)
        properties = read_properties(
            [
                PropertiesFile(f.absolute, f.path, f.folders)
                for f in (*model_files, *seed_files, *snapshot_files, *test_files)
                if f.path.endswith(PROPERTIES_FILES)
            ],
            self.problems,
            self._render,
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
        for snapshot in properties.snapshots:
            self._add_yaml_snapshot(snapshot)
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

    def _files(self, folders: Iterable[str], suffixes: tuple[str, ...]) -> list[ProjectFile]:
        found = [
            file for folder in folders for file in self.walker.files(self.prefix + folder, suffixes)
        ]
        return sorted(found, key=lambda f: f.path.split("/"))

    def _read(self, file: ProjectFile) -> str | None:
        try:
            with open(file.absolute, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as err:
            self.problems.append(f"{file.path}: cannot read: {err}")
            return None

    def _config(self, kind: Kind, fqn: tuple[str, ...], name: str, own: Mapping[str, Any]) -> Any:
        """dbt's order: the package's dbt_project.yml levels, the properties file, config()
        in the SQL, then (for an installed package) the root project's levels."""
        config: dict[str, Any] = dict(_DEFAULTS[kind])
        for level in folder_levels(self.settings.configs.get(_SECTION[kind], {}), fqn):
            config = merge_config(config, level)
        declared = self.properties.configs.get((kind, name))
        if declared:
            config = merge_config(config, declared)
        if own:
            config = merge_config(config, own)
        if self.root_configs is not None:
            for level in folder_levels(self.root_configs.get(_SECTION[kind], {}), fqn):
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
        config = self._config(kind, fqn, name, own)
        uid = extra.pop("uid", None) or unique_id(kind, self.package, name)
        if kind in REFABLE:
            described = self.properties.described.get((kind, name))
            extra["patch_path"] = self._original(described) if described else None
        return Resource(
            unique_id=uid,
            kind=kind,
            name=name,
            package=self.package,
            path=file.path,
            fqn=fqn,
            config=config,
            tags=tags_of(config),
            original_path=self._original(file.path) if self.prefix else None,
            **extra,
        )

    def _original(self, path: str) -> str:
        """A path relative to this package (dbt's original_file_path)."""
        return path[len(self.prefix) :] if path.startswith(self.prefix) else path

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
        scan = scan_sql(text, self.lookup, self.macro_calls)
        label = f"{kind.value} `{name}`"

        def shifted(line: int) -> int:
            return line + line_offset if line else 0

        self.problems.extend(
            at(label, file.path, shifted(error.line), error.message) for error in scan.errors
        )
        own: dict[str, Any] = dict(scan.config)
        if scan.config_tags:
            own["tags"] = scan.config_tags
        refs = tuple(Ref(r.name, r.package, shifted(r.line)) for r in scan.refs)
        sources = tuple(Source(s.source, s.table, shifted(s.line)) for s in scan.sources)
        unresolved = tuple(
            Computed(shifted(item.line), item.message, item.what) for item in scan.computed
        )
        resource = self._resource(
            kind, file, name, own, refs=refs, sources=sources, test=test, unresolved=unresolved
        )
        self._add(resource)

    def _add_yaml_snapshot(self, snapshot: YamlSnapshot) -> None:
        relation = snapshot.relation
        scan = scan_sql("{{ " + relation + " }}") if isinstance(relation, str) else None
        if scan is None or scan.errors or scan.computed or len(scan.refs) + len(scan.sources) != 1:
            self.problems.append(
                f"{snapshot.file.path}: snapshot `{snapshot.name}`: `relation` must be "
                f"ref('model') or source('source', 'table'), not {relation!r}"
            )
            return
        refs = tuple(Ref(r.name, r.package, 0) for r in scan.refs)
        sources = tuple(Source(s.source, s.table, 0) for s in scan.sources)
        resource = self._resource(
            Kind.SNAPSHOT, snapshot.file, snapshot.name, {}, refs=refs, sources=sources
        )
        self._add(resource, where=snapshot.file.path)

    def _add_source(
        self, file: PropertiesFile, source: str, table: str, config: Mapping[str, Any]
    ) -> None:
        uid = unique_id(Kind.SOURCE, self.package, source, table)
        resource = self._resource(
            Kind.SOURCE, file, table, config, uid=uid, fqn_tail=(source, table), source_name=source
        )
        if uid in self.catalog.enabled:
            self.problems.append(f"{file.path}: source table `{source}.{table}` is defined twice")
        elif resource.config.get("enabled", True):
            self.catalog.enabled[uid] = resource

    def _add_generic_test(self, declared: DeclaredTest) -> None:
        parsed = parse_test_entry(declared.definition)
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
        if attached not in self.catalog.enabled:
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
                scan = scan_sql("{{ " + value + " }}", self.lookup)
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
        catalog = self.catalog
        key = (resource.package, resource.name)
        if not resource.config.get("enabled", True):
            if resource.kind in REFABLE:
                catalog.disabled.setdefault(key, resource)
            return
        if resource.unique_id in catalog.enabled:
            self.problems.append(
                f"{resource.label} is defined twice: "
                f"{catalog.enabled[resource.unique_id].path} and {where or resource.path}"
            )
            return
        if resource.kind in REFABLE:
            other = catalog.by_name.get(key)
            if other is not None:
                self.problems.append(
                    f"`{resource.name}` is defined twice: {other.path} ({other.kind.value}) "
                    f"and {resource.path} ({resource.kind.value}); ref() could not tell them apart"
                )
                return
            catalog.by_name[key] = resource
        catalog.enabled[resource.unique_id] = resource


def _of(files: list[ProjectFile], suffix: str) -> list[ProjectFile]:
    return [file for file in files if file.path.endswith(suffix)]


def parse_test_entry(definition: Any) -> tuple[str, dict[str, Any]] | str:
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

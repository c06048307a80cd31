"""A model project on disk: SQL models (with their refs and configs), scripts and seeds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import (
    DEFAULT_CONFIG,
    as_list,
    folder_levels,
    merge_config,
    read_properties,
    read_settings,
)
from kascade.engine.graph import Graph
from kascade.engine.sqlscan import Ref, Source, scan_sql

SCRIPTS_DIR = "scripts"
SCRIPT_ENTRY = "__main__.py"


@dataclass(frozen=True)
class Model:
    """One SQL model: its name, file, fully qualified name, dependencies and merged config."""

    name: str
    path: str
    fqn: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    sources: tuple[Source, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    """Tags from dbt_project.yml folders, properties files and config(), first seen first."""

    @property
    def materialized(self) -> str:
        """view (the default) or table."""
        return str(self.config.get("materialized", "view"))

    @property
    def schema(self) -> str | None:
        """The schema the model is built in, when config() or dbt_project.yml names one."""
        value = self.config.get("schema")
        return None if value is None else str(value)


@dataclass(frozen=True)
class Project:
    """Everything kascade knows of a project directory, and the problems found loading it."""

    root: Path
    name: str
    models: Mapping[str, Model]
    scripts: Mapping[str, str]
    seeds: frozenset[str]
    graph: Graph
    problems: tuple[str, ...] = ()


def load_project(root: Path | str) -> Project:
    """Read a project directory; problems (unknown refs, bad YAML) are collected, not raised."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        problems.append(f"project directory {root} does not exist")
        return Project(root, root.name, {}, {}, frozenset(), Graph({}), tuple(problems))
    settings = read_settings(root, problems)
    configs = _FolderConfigs(settings.name, settings.models_config)
    properties = read_properties(root, settings.model_paths, problems)
    models: dict[str, Model] = {}
    disabled: dict[str, str] = {}
    for file in _sql_files(root, settings.model_paths):
        model = _load_model(file, configs, properties, problems)
        if model is None:
            continue
        if not model.config.get("enabled", True):
            disabled[model.name] = model.path
        elif model.name in models:
            problems.append(
                f"model name `{model.name}` is defined twice: "
                f"{models[model.name].path} and {model.path}"
            )
        else:
            models[model.name] = model
    seeds = _seed_names(root, settings.seed_paths)
    parents = {
        name: _resolve_refs(model, settings.name, models, disabled, seeds, problems)
        for name, model in models.items()
    }
    return Project(
        root=root,
        name=settings.name,
        models=models,
        scripts=_scripts(root),
        seeds=frozenset(seeds),
        graph=Graph(parents),
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class _SqlFile:
    """A model file found under a model path."""

    absolute: str
    path: str
    folders: tuple[str, ...]
    name: str


def _sql_files(root: Path, model_paths: tuple[str, ...]) -> list[_SqlFile]:
    """Every .sql file under the model paths, in path order (plain os.walk: this runs for
    every model of a big project, and pathlib costs several times more per file)."""
    found: list[_SqlFile] = []
    for model_path in model_paths:
        base = os.path.join(root, model_path)
        for directory, subdirectories, files in os.walk(base):
            subdirectories.sort()
            relative = os.path.relpath(directory, base)
            folders = () if relative == "." else tuple(relative.split(os.sep))
            prefix = "/".join((model_path, *folders))
            for file in files:
                if file.endswith(".sql"):
                    found.append(
                        _SqlFile(
                            absolute=os.path.join(directory, file),
                            path=f"{prefix}/{file}",
                            folders=folders,
                            name=file[: -len(".sql")],
                        )
                    )
    found.sort(key=lambda f: f.path.split("/"))
    return found


class _FolderConfigs:
    """dbt_project.yml configs merged down to each folder, computed once per folder."""

    def __init__(self, project_name: str, tree: Mapping[str, Any]) -> None:
        self.project_name = project_name
        self.tree = tree
        self._by_folder: dict[tuple[str, ...], tuple[dict[str, Any], Mapping[str, Any] | None]] = {}

    def for_model(self, folders: tuple[str, ...], name: str) -> dict[str, Any]:
        """The merged config of the model's folder, and of the model's own entry if any."""
        if folders not in self._by_folder:
            self._by_folder[folders] = self._merge_down(folders)
        config, level = self._by_folder[folders]
        own = level.get(name) if level is not None else None
        if isinstance(own, dict):
            config = merge_config(config, next(iter(folder_levels(own, ()))))
        return config

    def _merge_down(
        self, folders: tuple[str, ...]
    ) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
        config: dict[str, Any] = dict(DEFAULT_CONFIG)
        path = (self.project_name, *folders)
        for level in folder_levels(self.tree, path):
            config = merge_config(config, level)
        node: Any = self.tree
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return config, node if isinstance(node, dict) else None


def _load_model(
    file: _SqlFile,
    configs: _FolderConfigs,
    properties: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> Model | None:
    try:
        with open(file.absolute, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{file.path}: cannot read: {err}")
        return None
    scan = scan_sql(text)
    problems.extend(f"{file.path}: {error}" for error in scan.errors)
    config = configs.for_model(file.folders, file.name)
    if file.name in properties:
        config = merge_config(config, properties[file.name])
    if scan.config or scan.config_tags:
        config = merge_config(config, {**scan.config, "tags": scan.config_tags})
    return Model(
        name=file.name,
        path=file.path,
        fqn=(configs.project_name, *file.folders, file.name),
        refs=tuple(scan.refs),
        sources=tuple(scan.sources),
        config=config,
        tags=tuple(dict.fromkeys(str(tag) for tag in as_list(config.get("tags")))),
    )


def _resolve_refs(
    model: Model,
    project_name: str,
    models: Mapping[str, Model],
    disabled: Mapping[str, str],
    seeds: set[str],
    problems: list[str],
) -> list[str]:
    parents: list[str] = []
    for ref in model.refs:
        where = f"{model.path}:{ref.line}" if ref.line else model.path
        if ref.package is not None and ref.package != project_name:
            problems.append(
                f"model `{model.name}` refs `{ref.name}` in unknown package `{ref.package}` "
                f"(this project is `{project_name}`) ({where})"
            )
        elif ref.name in models:
            parents.append(ref.name)
        elif ref.name in disabled:
            problems.append(
                f"model `{model.name}` refs disabled model `{ref.name}` "
                f"({disabled[ref.name]} sets enabled: false) ({where})"
            )
        elif ref.name not in seeds:
            problems.append(f"model `{model.name}` refs unknown model `{ref.name}` ({where})")
    return parents


def _seed_names(root: Path, seed_paths: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for seed_path in seed_paths:
        base = root / seed_path
        if base.is_dir():
            names.update(file.stem for file in base.rglob("*.csv"))
    return names


def _scripts(root: Path) -> dict[str, str]:
    base = root / SCRIPTS_DIR
    if not base.is_dir():
        return {}
    return {
        entry.parent.name: entry.relative_to(root).as_posix()
        for entry in sorted(base.glob(f"*/{SCRIPT_ENTRY}"))
    }

"""A model project on disk: SQL models (with their refs and configs), scripts and seeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
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

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags from dbt_project.yml folders, properties files and config(), first seen first."""
        return tuple(dict.fromkeys(str(tag) for tag in as_list(self.config.get("tags"))))

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
    properties = read_properties(root, settings.model_paths, problems)
    models: dict[str, Model] = {}
    disabled: dict[str, str] = {}
    for model_path in settings.model_paths:
        base = root / model_path
        if not base.is_dir():
            continue
        for file in sorted(base.rglob("*.sql")):
            model = _load_model(
                root, base, file, settings.name, settings.models_config, properties, problems
            )
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


def _load_model(
    root: Path,
    base: Path,
    file: Path,
    project_name: str,
    tree: Mapping[str, Any],
    properties: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> Model | None:
    path = file.relative_to(root).as_posix()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}: cannot read: {err}")
        return None
    name = file.stem
    folders = PurePosixPath(file.relative_to(base).as_posix()).parent.parts
    fqn = (project_name, *folders, name)
    scan = scan_sql(text)
    problems.extend(f"{path}: {error}" for error in scan.errors)
    config: dict[str, Any] = dict(DEFAULT_CONFIG)
    for level in folder_levels(tree, fqn):
        config = merge_config(config, level)
    config = merge_config(config, properties.get(name, {}))
    config = merge_config(config, {**scan.config, "tags": scan.config_tags})
    return Model(
        name=name,
        path=path,
        fqn=fqn,
        refs=tuple(scan.refs),
        sources=tuple(scan.sources),
        config=config,
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

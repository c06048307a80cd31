"""A model project on disk: SQL models (with their refs and configs), scripts and seeds.

The project is read without leaving it: a link out of the project (or to nothing) and a
file that is not a regular file (a FIFO, a device) are problems naming the path, never
followed or read. Links inside the project are followed, each real folder read once.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import (
    DEFAULT_CONFIG,
    ProjectRoot,
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
_MODEL_FILES = (".sql", ".yml", ".yaml")
_PROPERTIES_FILES = (".yml", ".yaml")


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
    walker = _Walker(root, problems)
    configs = _FolderConfigs(settings.name, settings.models_config)
    model_files = [walker.files(path, _MODEL_FILES) for path in settings.model_paths]
    properties = read_properties(
        [
            (file.absolute, file.path)
            for files in model_files
            for file in sorted(files, key=lambda f: f.path.split("/"))
            if file.path.endswith(_PROPERTIES_FILES)
        ],
        problems,
    )
    sql_files = [file for files in model_files for file in files if file.path.endswith(".sql")]
    sql_files.sort(key=lambda f: f.path.split("/"))
    models: dict[str, Model] = {}
    disabled: dict[str, str] = {}
    for file in sql_files:
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
    seeds = {
        file.name[: -len(".csv")]
        for seed_path in settings.seed_paths
        for file in walker.files(seed_path, (".csv",))
    }
    parents = {
        name: _resolve_refs(model, settings.name, models, disabled, seeds, problems)
        for name, model in models.items()
    }
    return Project(
        root=root,
        name=settings.name,
        models=models,
        scripts=walker.scripts(),
        seeds=frozenset(seeds),
        graph=Graph(parents),
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class _File:
    """A file found under a folder of the project."""

    absolute: str
    path: str
    """Relative to the project, with `/`: models/marts/fct_orders.sql."""
    folders: tuple[str, ...]
    """The folders between the model path and the file: ("marts",)."""
    name: str
    """The name without its suffix, for a .sql file: fct_orders."""


class _Walker:
    """Regular files under folders of the project, read without leaving it.

    Uses os.scandir, whose entries know without a system call whether they are links,
    folders or files: this runs for every model of a big project. Plain folders are read
    first; folders reached through links inside the project come after, each real folder
    once (so a link loop ends, and two links to one folder are a problem).
    """

    def __init__(self, root: Path, problems: list[str]) -> None:
        self.root = str(root)
        self.inside = ProjectRoot(root)
        self.problems = problems

    def files(self, folder: str, suffixes: tuple[str, ...]) -> list[_File]:
        """Every regular file under `folder` whose name ends with one of `suffixes`."""
        base = os.path.join(self.root, folder)
        top = self._real_folder(base, folder)
        if top is None:
            return []
        found: list[_File] = []
        visited = {top}
        pending: list[tuple[str, str, tuple[str, ...]]] = [(base, top, ())]
        links: deque[tuple[str, str, tuple[str, ...]]] = deque()
        while pending or links:
            if not pending:
                path, target, folders = links.popleft()
                if target in visited:
                    self.problems.append(
                        f"{'/'.join((folder, *folders))}: a link to {target}, a folder read "
                        "already; not read again"
                    )
                else:
                    visited.add(target)
                    pending.append((path, target, folders))
                continue
            directory, real, folders = pending.pop()
            for entry in self._entries(directory, "/".join((folder, *folders))):
                shown = "/".join((folder, *folders, entry.name))
                wanted = entry.name.endswith(suffixes)
                if entry.is_symlink():
                    mode = self._link_mode(entry.path, shown, wanted)
                    if mode is not None and stat.S_ISDIR(mode):
                        target = os.path.realpath(entry.path)
                        links.append((entry.path, target, (*folders, entry.name)))
                        continue
                    regular = mode is not None and stat.S_ISREG(mode)
                    if mode is None:
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    below = os.path.join(real, entry.name)
                    if below not in visited:
                        visited.add(below)
                        pending.append((entry.path, below, (*folders, entry.name)))
                    continue
                else:
                    regular = entry.is_file(follow_symlinks=False)
                if not wanted:
                    continue
                if not regular:
                    self.problems.append(f"{shown}: not a regular file; not read")
                    continue
                stem = entry.name[: -len(".sql")] if entry.name.endswith(".sql") else entry.name
                found.append(_File(entry.path, shown, folders, stem))
        return found

    def scripts(self) -> dict[str, str]:
        """Script packages: scripts/<name>/__main__.py, each inside the project."""
        base = os.path.join(self.root, SCRIPTS_DIR)
        if self._real_folder(base, SCRIPTS_DIR) is None:
            return {}
        found: dict[str, str] = {}
        for entry in self._entries(base, SCRIPTS_DIR):
            if entry.name.startswith("."):  # as a shell glob, hidden names are no scripts
                continue
            shown = f"{SCRIPTS_DIR}/{entry.name}"
            if entry.is_symlink():
                mode = self._link_mode(entry.path, shown, wanted=False)
                if mode is None or not stat.S_ISDIR(mode):
                    continue
            elif not entry.is_dir(follow_symlinks=False):
                continue
            script = f"{shown}/{SCRIPT_ENTRY}"
            problem = self.inside.file_problem(os.path.join(entry.path, SCRIPT_ENTRY), script)
            if problem is not None:
                self.problems.append(problem)
            elif os.path.lexists(os.path.join(entry.path, SCRIPT_ENTRY)):
                found[entry.name] = script
        return found

    def _real_folder(self, path: str, shown: str) -> str | None:
        """The real path of a folder to read, or None: absent, not a folder, or (a problem)
        reached through a link out of the project."""
        if not os.path.lexists(path):
            return None
        real = os.path.realpath(path)
        if not self.inside.holds(real):
            self.problems.append(f"{shown}: a link to {real}, outside the project; not read")
            return None
        return real if os.path.isdir(real) else None

    def _link_mode(self, path: str, shown: str, wanted: bool) -> int | None:
        """The mode of what a link inside the project points to; None (and a problem when the
        link is a folder or a wanted file) when it leaves the project or points nowhere."""
        real = os.path.realpath(path)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            if wanted:
                self.problems.append(f"{shown}: a link to {real}, which does not exist")
            return None
        if not self.inside.holds(real):
            if wanted or stat.S_ISDIR(mode):
                self.problems.append(f"{shown}: a link to {real}, outside the project; not read")
            return None
        return mode

    def _entries(self, directory: str, shown: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as listing:
                return sorted(listing, key=lambda entry: entry.name)
        except OSError as err:
            self.problems.append(f"{shown}: cannot read: {err.strerror or err}")
            return []


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
    file: _File,
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

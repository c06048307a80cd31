"""A dbt project on disk as kascade plans it: its models, seeds, snapshots, tests and
sources and those of its installed packages (dbt's resources, by unique id, with merged
configs), the graph of what depends on what, its YAML selectors, its scripts, and the
problems found reading it.

Files are found by engine.projectfiles, which never leaves the project; each project (the
root, each package) is read by engine.projectreader, and dependencies are resolved by
engine.projectrefs. dbt vars come from dbt_project.yml and from the Flow (`load_project(root,
vars)`; a plan reads the project again through Project.with_vars when the Flow's vars
change a var the project uses). Problems are collected, not raised: a plan lists them all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import ProjectSettings, read_settings
from kascade.engine.dbtvars import MISSING, Vars
from kascade.engine.graph import Graph
from kascade.engine.macros import macro_call_pattern, macro_names, macros_calling_refs
from kascade.engine.packages import Package, installed_packages
from kascade.engine.projectfiles import SCRIPT_ENTRY, SCRIPTS_DIR, Walker
from kascade.engine.projectreader import Catalog, PackageReader
from kascade.engine.projectrefs import Resolver, take_from_manifest
from kascade.engine.resources import REFABLE, Kind, Resource
from kascade.engine.selectorsyaml import YamlSelectors, read_selectors

__all__ = ["SCRIPTS_DIR", "SCRIPT_ENTRY", "Project", "Resource", "load_project"]

_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


@dataclass(frozen=True)
class Project:
    """Everything kascade knows of a project directory, and the problems found loading it."""

    root: Path
    name: str
    resources: Mapping[str, Resource]
    """Every resource by unique id: the root project's (models first, each kind in file
    order), then each installed package's."""
    scripts: Mapping[str, str]
    graph: Graph
    """Unique ids and the unique ids each depends on (tests and sources included)."""
    problems: tuple[str, ...] = ()
    selectors: YamlSelectors = field(default_factory=YamlSelectors)
    """The selectors of selectors.yml, and the default one."""
    packages: Mapping[str, str] = field(default_factory=dict)
    """Installed packages: name -> folder, relative to the project."""
    vars: Mapping[str, Any] = field(default_factory=dict)
    """The Flow's vars the project was read with (dbt's `--vars`)."""
    vars_used: frozenset[str] = frozenset()
    """The names of the vars reading the project looked up."""
    macros: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """The macros the root project and each installed package define, by package name."""
    var_names: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """The vars with a value for the resources of the root project and of each package."""

    @cached_property
    def models(self) -> Mapping[str, Resource]:
        """The root project's models by name."""
        return {
            r.name: r
            for r in self.resources.values()
            if r.kind == Kind.MODEL and r.package == self.name
        }

    @cached_property
    def refable(self) -> Mapping[str, Resource]:
        """The root project's models, seeds and snapshots by name (what ref() names)."""
        return {
            r.name: r
            for r in self.resources.values()
            if r.kind in REFABLE and r.package == self.name
        }

    @cached_property
    def seeds(self) -> frozenset[str]:
        """The names of the seeds."""
        return frozenset(r.name for r in self.resources.values() if r.kind == Kind.SEED)

    def with_vars(self, vars: Mapping[str, Any] | None) -> Project:
        """The project as the Flow's vars make it: itself when they change no var it uses,
        else read again with them."""
        wanted = dict(vars or {})
        if all(
            self.vars.get(name, MISSING) == wanted.get(name, MISSING) for name in self.vars_used
        ):
            return self
        return load_project(self.root, wanted)


def load_project(root: Path | str, vars: Mapping[str, Any] | None = None) -> Project:
    """Read a project directory with the Flow's `vars` (dbt's `--vars`); problems (unknown
    refs, bad YAML) are collected, not raised."""
    root = Path(root)
    problems: list[str] = []
    cli = dict(vars or {})
    if not root.is_dir():
        problems.append(f"project directory {root} does not exist")
        return Project(root, root.name, {}, {}, Graph({}), tuple(problems), vars=cli)
    known = Vars(root="", cli=cli)
    settings = read_settings(root, problems, known)
    known.root = settings.name
    known.projects[settings.name] = settings.vars
    packages = installed_packages(root, settings, known, problems)
    for package in packages:
        known.projects.setdefault(package.name, package.settings.vars)
    selectors = read_selectors(root, known, problems)
    walker = Walker(root, problems)
    catalog = Catalog(settings.name, problems)
    texts = _macro_texts(root, settings, packages)
    calls = macro_call_pattern(macros_calling_refs(t for each in texts.values() for t in each))
    PackageReader(catalog, settings, walker, known, macro_calls=calls).read()
    for package in packages:
        PackageReader(
            catalog,
            package.settings,
            walker,
            known,
            folder=package.folder,
            root_configs=settings.configs,
            macro_calls=calls,
        ).read()
    if catalog.enabled and not os.path.lexists(root / "dbt_project.yml"):
        problems.append(
            "dbt_project.yml is missing: dbt needs it to run the project's models, seeds "
            f"and tests (`name: {_project_name(root)}` is enough)"
        )
    resolver = Resolver(catalog, [package.name for package in packages])
    parents = {uid: resolver.parents(resource) for uid, resource in catalog.enabled.items()}
    take_from_manifest(root, catalog, parents, _parsed_folders(settings), _PROJECT_FILES)
    return Project(
        root=root,
        name=settings.name,
        resources=catalog.enabled,
        scripts=walker.scripts(),
        graph=Graph(parents),
        problems=tuple(problems),
        selectors=selectors,
        packages={package.name: package.folder for package in packages},
        vars=cli,
        vars_used=frozenset(known.used),
        macros={name: macro_names(each) for name, each in texts.items()},
        var_names={name: known.names_for(name) for name in texts},
    )


def _macro_texts(
    root: Path, settings: ProjectSettings, packages: Iterable[Package]
) -> dict[str, list[str]]:
    """The text of every macro file of the project and of each package, by project name."""
    walker = Walker(root, [])  # a macro file that cannot be read is dbt's problem to report
    folders = {settings.name: list(settings.macro_paths)}
    for package in packages:
        folders.setdefault(package.name, []).extend(
            f"{package.folder}/{path}" for path in package.settings.macro_paths
        )
    texts: dict[str, list[str]] = {}
    for name, paths in folders.items():
        found = texts.setdefault(name, [])
        for folder in paths:
            for file in walker.files(folder, (".sql",)):
                try:
                    with open(file.absolute, encoding="utf-8") as handle:
                        found.append(handle.read())
                except (OSError, UnicodeDecodeError):
                    continue
    return texts


def _parsed_folders(settings: ProjectSettings) -> list[str]:
    """The folders dbt parses the project from (its manifest is as old as their files)."""
    return [
        *settings.model_paths,
        *settings.seed_paths,
        *settings.snapshot_paths,
        *settings.test_paths,
        *settings.macro_paths,
        settings.install_path,
    ]


def _project_name(root: Path) -> str:
    """A dbt project name made from a folder name (letters, digits and `_`)."""
    name = re.sub(r"\W", "_", root.resolve().name) or "project"
    return name if not name[0].isdigit() else f"p_{name}"

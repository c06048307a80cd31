"""dbt_project.yml and model properties files: project name, paths, and folder-level configs.

Merging follows dbt: levels apply from the project root down to the model (`+key` or a
plain key with a non-mapping value is a config, a plain key with a mapping is a folder),
then the model's properties file, then its own config(). `tags` accumulate across levels,
`meta` is merged key by key, every other key is replaced by the more specific level.

Nothing outside the project is read: path entries that leave it are problems, and so are
project files that are links out of it, links to nothing, or not regular files (a FIFO
would block the reader forever).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kascade.engine.dbtvars import (
    UNKNOWN,
    MissingVar,
    Unrenderable,
    Vars,
    missing_var_message,
    render_yaml_value,
)
from kascade.engine.manifests import alias_problem, yaml_value_error

DEFAULT_MODEL_PATHS = ("models",)
DEFAULT_SEED_PATHS = ("seeds",)
DEFAULT_SNAPSHOT_PATHS = ("snapshots",)
DEFAULT_TEST_PATHS = ("tests",)
DEFAULT_MACRO_PATHS = ("macros",)
DEFAULT_INSTALL_PATH = "dbt_packages"
CONFIG_SECTIONS = ("models", "seeds", "snapshots", "data_tests", "sources")
"""The sections of dbt_project.yml that configure resources by folder."""
DEFAULT_CONFIG: Mapping[str, Any] = {"materialized": "view", "enabled": True, "tags": []}
_SEPARATORS = re.compile(r"[\\/]")


class ProjectRoot:
    """The real path of a project directory, and what lies inside it."""

    def __init__(self, root: Path | str) -> None:
        self.real = os.path.realpath(root)
        self._prefix = self.real if self.real.endswith(os.sep) else self.real + os.sep

    def holds(self, real: str) -> bool:
        """Whether a real (symlink-free) path is the project directory or inside it."""
        return real == self.real or real.startswith(self._prefix)

    def file_problem(self, path: str, shown: str) -> str | None:
        """Why the project file at `path` must not be read, or None when it may be (or does
        not exist): a link out of the project or to nothing, or not a regular file."""
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            real = os.path.realpath(path)
            if not self.holds(real):
                return f"{shown}: a link to {real}, outside the project; not read"
            try:
                mode = os.stat(path).st_mode
            except OSError:
                return f"{shown}: a link to {real}, which does not exist"
        if not stat.S_ISREG(mode):
            return f"{shown}: not a regular file; not read"
        return None


@dataclass(frozen=True)
class ProjectSettings:
    """What kascade reads of a dbt_project.yml (all optional)."""

    name: str
    model_paths: tuple[str, ...] = DEFAULT_MODEL_PATHS
    seed_paths: tuple[str, ...] = DEFAULT_SEED_PATHS
    snapshot_paths: tuple[str, ...] = DEFAULT_SNAPSHOT_PATHS
    test_paths: tuple[str, ...] = DEFAULT_TEST_PATHS
    macro_paths: tuple[str, ...] = DEFAULT_MACRO_PATHS
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Folder configs by section (CONFIG_SECTIONS): `models`, `seeds`, ..., their `var()`
    templates rendered as dbt does."""
    vars: Mapping[str, Any] = field(default_factory=dict)
    """The `vars:` block, unrendered (dbt renders a var's value where it is used)."""
    install_path: str = DEFAULT_INSTALL_PATH
    """`packages-install-path`: where `dbt deps` puts packages."""

    @property
    def models_config(self) -> Mapping[str, Any]:
        """The `models:` folder configs."""
        return self.configs.get("models", {})


def read_settings(
    root: Path, problems: list[str], vars: Vars | None = None, shown: str = "dbt_project.yml"
) -> ProjectSettings:
    """The settings of the project (or installed package) at `root`, its configs rendered
    with the Flow's `vars`; a missing dbt_project.yml means defaults named after the folder.
    `shown` is how messages name the file."""
    fallback = ProjectSettings(name=root.resolve().name)
    path = root / "dbt_project.yml"
    inside = ProjectRoot(root)
    problem = inside.file_problem(str(path), shown)
    if problem is not None:
        problems.append(problem)
        return fallback
    if not path.is_file():
        return fallback
    document = load_yaml(path, problems, shown)
    if document is None:
        return fallback
    if not isinstance(document, dict):
        problems.append(f"{shown}: expected a mapping at the top level")
        return fallback
    name = document.get("name", fallback.name)
    renderer = ConfigRenderer(vars or Vars(str(name)), shown, problems)
    configs: dict[str, Mapping[str, Any]] = {}
    for section in CONFIG_SECTIONS:
        keys = (section, "tests") if section == "data_tests" else (section,)
        value: Any = next((document[k] for k in keys if document.get(k) is not None), {})
        if not isinstance(value, dict):
            problems.append(f"{shown}: `{keys[-1]}` must be a mapping of folders to configs")
            value = {}
        configs[section] = renderer.render(value, (keys[-1],))
    project_vars = document.get("vars") or {}
    if not isinstance(project_vars, dict):
        problems.append(f"{shown}: `vars` must be a mapping of names to values")
        project_vars = {}
    paths = _Paths(document, inside, problems, shown)
    install = paths.read(("packages-install-path",), (DEFAULT_INSTALL_PATH,), single=True)
    return ProjectSettings(
        name=str(name),
        model_paths=paths.read(("model-paths", "source-paths"), DEFAULT_MODEL_PATHS),
        seed_paths=paths.read(("seed-paths", "data-paths"), DEFAULT_SEED_PATHS),
        snapshot_paths=paths.read(("snapshot-paths",), DEFAULT_SNAPSHOT_PATHS),
        test_paths=paths.read(("test-paths",), DEFAULT_TEST_PATHS),
        macro_paths=paths.read(("macro-paths",), DEFAULT_MACRO_PATHS),
        configs=configs,
        vars={str(key): value for key, value in project_vars.items()},
        install_path=install[0] if install else DEFAULT_INSTALL_PATH,
    )


@dataclass(frozen=True)
class _Paths:
    """The path entries of one dbt_project.yml."""

    document: Mapping[str, Any]
    inside: ProjectRoot
    problems: list[str]
    shown: str

    def read(
        self, keys: Sequence[str], default: tuple[str, ...], *, single: bool = False
    ) -> tuple[str, ...]:
        """The folders of the first key set; an entry leaving the project is a problem,
        left out. `single`: the key holds one folder, not a list."""
        for key in keys:
            value = self.document.get(key)
            if single and isinstance(value, str) and value:
                value = [value]
            if isinstance(value, list) and value:
                kept: list[str] = []
                for item in value:
                    entry = str(item)
                    problem = _outside_entry(entry, self.inside)
                    if problem is None:
                        kept.append(entry.strip("/"))
                    else:
                        self.problems.append(
                            f"{self.shown}: {key} entry {entry!r} {problem}; ignored"
                        )
                return tuple(kept)
        return default


_DECIDING = frozenset({"enabled", "materialized"})
"""Configs that decide which tasks a plan has: a template there must be rendered."""
_HOOKS = frozenset({"pre-hook", "post-hook", "pre_hook", "post_hook"})


@dataclass(frozen=True)
class ConfigRenderer:
    """Renders the `var()` templates of a config tree of dbt_project.yml or selectors.yml
    (with the Flow's vars only) or of a properties file of `package` (with the project's
    too), as dbt does when it reads them (hooks stay as written, dbt renders them later)."""

    vars: Vars
    shown: str
    problems: list[str]
    package: str | None = None
    """For a properties file: the package it belongs to."""

    def lookup(self, name: str, default: Any) -> Any:
        if self.package is None:
            return self.vars.in_project_file(name, default)
        return self.vars.lookup(name, default, package=self.package)

    def render(self, value: Any, keys: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {
                key: item if _is_hook(key) else self.render(item, (*keys, str(key)))
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.render(item, (*keys, str(index))) for index, item in enumerate(value)]
        if not isinstance(value, str):
            return value
        where = f"{self.shown}: {'.'.join(keys)}"
        try:
            rendered = render_yaml_value(value, self.lookup)
        except MissingVar as missing:
            message = missing_var_message(missing.name, project_file=self.package is None)
            self.problems.append(f"{where}: {message}")
            return value
        except Unrenderable:
            rendered = UNKNOWN
        if rendered is UNKNOWN:
            if keys[-1].lstrip("+ ") in _DECIDING:
                self.problems.append(
                    f"{where}: `{value}` is only known when dbt renders it (the planner renders "
                    "`var()` here, with known values only); write the value, or use a var "
                    "with a value"
                )
            return value
        return rendered


def _is_hook(key: Any) -> bool:
    return isinstance(key, str) and key.lstrip("+ ") in _HOOKS


def _outside_entry(entry: str, inside: ProjectRoot) -> str | None:
    """Why a path entry of dbt_project.yml leaves the project, or None when it does not."""
    if "\x00" in entry:
        return "holds a NUL byte"
    if os.path.isabs(entry) or entry.startswith(("/", "\\")):
        return "is an absolute path: it must be a folder inside the project"
    if ".." in _SEPARATORS.split(entry):
        return "goes up with `..`: it must be a folder inside the project"
    real = os.path.realpath(os.path.join(inside.real, entry.strip("/")))
    if not inside.holds(real):
        return f"resolves to {real}, outside the project"
    return None


# libyaml's safe loader when PyYAML has it, as dbt itself loads YAML (the same documents,
# several times faster than the pure-Python loader on a big properties file).
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, problems: list[str], shown: str) -> Any:
    """Parse one YAML file; a problem naming the file (and line) instead of an exception."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problems.append(f"{where}: invalid YAML: {getattr(err, 'problem', None) or err}")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{shown}: cannot read: {err}")
    except RecursionError:
        problems.append(f"{shown}: invalid YAML: nested too deeply")
    except ValueError as err:  # an integer of more digits than Python converts
        problems.append(f"{shown}: invalid YAML: {yaml_value_error(err)}")
    else:
        problem = alias_problem(document)
        if problem is None:
            return document
        problems.append(f"{shown}: invalid YAML: {problem}")
    return None


def folder_levels(tree: Mapping[str, Any], fqn: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The config set at each level of `models:` on the way to a model, root first."""
    level: Mapping[str, Any] | None = tree
    yield _configs_at(tree)
    for part in fqn:
        nested = level.get(part) if level is not None else None
        if not isinstance(nested, dict):
            return
        level = nested
        yield _configs_at(level)


def _configs_at(level: Mapping[str, Any]) -> dict[str, Any]:
    configs: dict[str, Any] = {}
    for key, value in level.items():
        key = str(key)
        if key.startswith("+"):
            configs[key[1:].strip()] = value
        elif not isinstance(value, dict):
            configs[key] = value
    return configs


def merge_config(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """dbt's merge: tags accumulate, meta merges by key, anything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if key == "tags":
            merged["tags"] = [*as_list(merged.get("tags")), *as_list(value)]
        elif key == "meta" and isinstance(value, dict) and isinstance(merged.get("meta"), dict):
            merged["meta"] = {**merged["meta"], **value}
        else:
            merged[key] = value
    return merged


def as_list(value: Any) -> list[Any]:
    """A tag value as a list: dbt accepts a single string where a list is expected."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]

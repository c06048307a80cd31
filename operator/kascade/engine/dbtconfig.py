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

from kascade.engine.manifests import alias_problem, yaml_value_error

DEFAULT_MODEL_PATHS = ("models",)
DEFAULT_SEED_PATHS = ("seeds",)
DEFAULT_SNAPSHOT_PATHS = ("snapshots",)
DEFAULT_TEST_PATHS = ("tests",)
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
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Folder configs by section (CONFIG_SECTIONS): `models`, `seeds`, ..."""

    @property
    def models_config(self) -> Mapping[str, Any]:
        """The `models:` folder configs."""
        return self.configs.get("models", {})


def read_settings(root: Path, problems: list[str]) -> ProjectSettings:
    """The project's settings; a missing dbt_project.yml means defaults named after the folder."""
    fallback = ProjectSettings(name=root.resolve().name)
    path = root / "dbt_project.yml"
    inside = ProjectRoot(root)
    problem = inside.file_problem(str(path), "dbt_project.yml")
    if problem is not None:
        problems.append(problem)
        return fallback
    if not path.is_file():
        return fallback
    document = load_yaml(path, problems, "dbt_project.yml")
    if document is None:
        return fallback
    if not isinstance(document, dict):
        problems.append("dbt_project.yml: expected a mapping at the top level")
        return fallback
    name = document.get("name", fallback.name)
    configs: dict[str, Mapping[str, Any]] = {}
    for section in CONFIG_SECTIONS:
        keys = (section, "tests") if section == "data_tests" else (section,)
        value: Any = next((document[k] for k in keys if document.get(k) is not None), {})
        if not isinstance(value, dict):
            problems.append(
                f"dbt_project.yml: `{keys[-1]}` must be a mapping of folders to configs"
            )
            value = {}
        configs[section] = value
    return ProjectSettings(
        name=str(name),
        model_paths=_paths(
            document, ("model-paths", "source-paths"), DEFAULT_MODEL_PATHS, inside, problems
        ),
        seed_paths=_paths(
            document, ("seed-paths", "data-paths"), DEFAULT_SEED_PATHS, inside, problems
        ),
        snapshot_paths=_paths(
            document, ("snapshot-paths",), DEFAULT_SNAPSHOT_PATHS, inside, problems
        ),
        test_paths=_paths(document, ("test-paths",), DEFAULT_TEST_PATHS, inside, problems),
        configs=configs,
    )


def _paths(
    document: Mapping[str, Any],
    keys: Sequence[str],
    default: tuple[str, ...],
    inside: ProjectRoot,
    problems: list[str],
) -> tuple[str, ...]:
    """The folders of the first key set; an entry leaving the project is a problem, left out."""
    for key in keys:
        value = document.get(key)
        if isinstance(value, list) and value:
            kept: list[str] = []
            for item in value:
                entry = str(item)
                problem = _outside_entry(entry, inside)
                if problem is None:
                    kept.append(entry.strip("/"))
                else:
                    problems.append(f"dbt_project.yml: {key} entry {entry!r} {problem}; ignored")
            return tuple(kept)
    return default


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


def load_yaml(path: Path, problems: list[str], shown: str) -> Any:
    """Parse one YAML file; a problem naming the file (and line) instead of an exception."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
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

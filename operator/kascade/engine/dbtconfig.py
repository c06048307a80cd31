"""dbt_project.yml and model properties files: project name, paths, and folder-level configs.

Merging follows dbt: levels apply from the project root down to the model (`+key` or a
plain key with a non-mapping value is a config, a plain key with a mapping is a folder),
then the model's properties file, then its own config(). `tags` accumulate across levels,
`meta` is merged key by key, every other key is replaced by the more specific level.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODEL_PATHS = ("models",)
DEFAULT_SEED_PATHS = ("seeds",)
DEFAULT_CONFIG: Mapping[str, Any] = {"materialized": "view", "enabled": True, "tags": []}


@dataclass(frozen=True)
class ProjectSettings:
    """What kascade reads of a dbt_project.yml (all optional)."""

    name: str
    model_paths: tuple[str, ...] = DEFAULT_MODEL_PATHS
    seed_paths: tuple[str, ...] = DEFAULT_SEED_PATHS
    models_config: Mapping[str, Any] = field(default_factory=dict)


def read_settings(root: Path, problems: list[str]) -> ProjectSettings:
    """The project's settings; a missing dbt_project.yml means defaults named after the folder."""
    fallback = ProjectSettings(name=root.resolve().name)
    path = root / "dbt_project.yml"
    if not path.is_file():
        return fallback
    document = load_yaml(path, problems, "dbt_project.yml")
    if document is None:
        return fallback
    if not isinstance(document, dict):
        problems.append("dbt_project.yml: expected a mapping at the top level")
        return fallback
    name = document.get("name", fallback.name)
    models = document.get("models") or {}
    if not isinstance(models, dict):
        problems.append("dbt_project.yml: `models` must be a mapping of folders to configs")
        models = {}
    return ProjectSettings(
        name=str(name),
        model_paths=_paths(document, ("model-paths", "source-paths"), DEFAULT_MODEL_PATHS),
        seed_paths=_paths(document, ("seed-paths", "data-paths"), DEFAULT_SEED_PATHS),
        models_config=models,
    )


def _paths(
    document: Mapping[str, Any], keys: Sequence[str], default: tuple[str, ...]
) -> tuple[str, ...]:
    for key in keys:
        value = document.get(key)
        if isinstance(value, list) and value:
            return tuple(str(item).strip("/") for item in value)
    return default


def load_yaml(path: Path, problems: list[str], shown: str) -> Any:
    """Parse one YAML file; a problem naming the file (and line) instead of an exception."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problems.append(f"{where}: invalid YAML: {getattr(err, 'problem', None) or err}")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{shown}: cannot read: {err}")
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


def read_properties(
    root: Path, model_paths: Sequence[str], problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Model configs from properties files (models/**/*.yml: `models: [{name, config}]`)."""
    configs: dict[str, dict[str, Any]] = {}
    for model_path in model_paths:
        base = root / model_path
        if not base.is_dir():
            continue
        for path in sorted([*base.rglob("*.yml"), *base.rglob("*.yaml")]):
            document = load_yaml(path, problems, path.relative_to(root).as_posix())
            entries = document.get("models") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if isinstance(entry, dict) and "name" in entry:
                    config = entry.get("config")
                    if isinstance(config, dict):
                        configs[str(entry["name"])] = config
    return configs

"""Helpers that write small model projects and flows for tests."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import dedent
from typing import Any

import yaml

from kascade.api import Flow


def write_project(root: Path, files: dict[str, str], *, dbt_project: bool = True) -> Path:
    """Write `files` (relative path -> text) under root and return root. A project with
    dbt resources gets the dbt_project.yml dbt needs (`name:` the folder's name) unless it
    has one or `dbt_project` is false."""
    dbt_folders = ("models/", "seeds/", "snapshots/", "tests/")
    if (
        dbt_project
        and "dbt_project.yml" not in files
        and any(path.startswith(dbt_folders) for path in files)
    ):
        name = re.sub(r"\W", "_", root.resolve().name)
        files = {
            "dbt_project.yml": f"name: {name if not name[0].isdigit() else 'p_' + name}\n",
            **files,
        }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    return root


def manifest(nodes: list[dict[str, Any]], name: str = "f", **spec: Any) -> dict[str, Any]:
    """A Flow manifest with the given nodes and extra spec fields."""
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"nodes": nodes, **spec},
    }


def flow(nodes: list[dict[str, Any]], name: str = "f", **spec: Any) -> Flow:
    """A Flow object with the given nodes and extra spec fields."""
    return Flow.model_validate(manifest(nodes, name, **spec))


def flow_yaml(nodes: list[dict[str, Any]], name: str = "f", **spec: Any) -> str:
    """A Flow manifest as YAML text."""
    return yaml.safe_dump(manifest(nodes, name, **spec), sort_keys=False)

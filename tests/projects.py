"""Helpers that write small model projects and flows for tests."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import yaml

from kascade.api import Flow


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> text) under root and return root."""
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

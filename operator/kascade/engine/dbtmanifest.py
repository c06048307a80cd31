"""dbt's own parse, when the planner cannot read a resource's refs or config statically (a
ref built by a macro, a var only the run knows): `target/manifest.json` that `dbt parse`
wrote, used only when it is fresh (newer than every file of the project it was built from)
and of the same project. A project the operator unpacked from `kascade project push` has
no target/ but may carry the slim manifest the push's own `dbt parse` made from exactly
its files (PUSHED_MANIFEST), used when there is no target/manifest.json.

Reading the manifest is a pure function of its text; freshness compares modification
times of the project's own files, nothing outside the project.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import ProjectRoot

MANIFEST = "target/manifest.json"
# What `kascade project push` stores with a project: the part of its own `dbt parse`'s
# manifest the planner reads, made from exactly the files of the archive.
PUSHED_MANIFEST = ".kascade-push/dbt/manifest.json"


@dataclass(frozen=True)
class ManifestNode:
    """What the planner takes of one node of dbt's manifest."""

    depends_on: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """The nodes of a manifest by unique id, and the project it was parsed for."""

    project_name: str | None
    nodes: Mapping[str, ManifestNode]


def read_manifest(text: str) -> Manifest | str:
    """The nodes of a manifest.json text, or why it cannot be used."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as err:
        return f"not valid JSON: {err}"
    if not isinstance(document, dict) or not isinstance(document.get("nodes"), dict):
        return "not a dbt manifest (no `nodes`)"
    metadata = document.get("metadata")
    name = metadata.get("project_name") if isinstance(metadata, dict) else None
    nodes: dict[str, ManifestNode] = {}
    for unique_id, node in document["nodes"].items():
        if isinstance(node, dict):
            nodes[str(unique_id)] = _node(node)
    return Manifest(str(name) if isinstance(name, str) else None, nodes)


def slim_manifest(document: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a manifest.json document the planner reads (project name; each node's
    parents, config and tags): what a pushed project carries."""
    metadata = document.get("metadata")
    name = metadata.get("project_name") if isinstance(metadata, dict) else None
    nodes = document.get("nodes")
    slim: dict[str, Any] = {}
    for unique_id, node in (nodes if isinstance(nodes, dict) else {}).items():
        if isinstance(node, dict):
            read = _node(node)
            slim[str(unique_id)] = {
                "depends_on": {"nodes": list(read.depends_on)},
                "config": dict(read.config),
                "tags": list(read.tags),
            }
    return {"metadata": {"project_name": name}, "nodes": slim}


def _node(node: Mapping[str, Any]) -> ManifestNode:
    depends = node.get("depends_on")
    parents = depends.get("nodes") if isinstance(depends, dict) else None
    config = node.get("config")
    tags = node.get("tags")
    return ManifestNode(
        depends_on=tuple(str(p) for p in parents) if isinstance(parents, list) else (),
        config=dict(config) if isinstance(config, dict) else {},
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
    )


def fresh_manifest(root: Path, folders: Iterable[str], files: Iterable[str]) -> Manifest | str:
    """The project's target/manifest.json when it is newer than every file under `folders`
    and every one of `files` (relative to the project), or why it cannot be used."""
    path = root / MANIFEST
    try:
        built = os.stat(path).st_mtime
    except OSError:
        if (root / PUSHED_MANIFEST).is_file():  # an unpacked pushed project: it goes with it
            return _read(root / PUSHED_MANIFEST, PUSHED_MANIFEST)
        return f"there is no {MANIFEST}"
    newer = _newer_file(str(root), folders, files, built)
    if newer is not None:
        return f"{MANIFEST} is older than {newer}"
    return _read(path, MANIFEST)


def _read(path: Path, shown: str) -> Manifest | str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return f"{shown}: cannot read: {err}"
    found = read_manifest(text)
    return f"{shown}: {found}" if isinstance(found, str) else found


def _newer_file(
    root: str, folders: Iterable[str], files: Iterable[str], built: float
) -> str | None:
    """A file of the project modified after `built`, if any."""
    for relative in files:
        try:
            if os.stat(os.path.join(root, relative)).st_mtime > built:
                return relative
        except OSError:
            continue
    inside = ProjectRoot(root)
    for folder in folders:
        pending = [os.path.join(root, folder)]
        seen: set[str] = set()
        while pending:
            directory = pending.pop()
            real = os.path.realpath(directory)
            if real in seen or not inside.holds(real):
                continue
            seen.add(real)
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir():
                            pending.append(entry.path)
                        elif inside.holds(os.path.realpath(entry.path)) and (
                            entry.stat().st_mtime > built
                        ):
                            return os.path.relpath(entry.path, root)
            except OSError:
                continue
    return None

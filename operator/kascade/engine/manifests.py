"""Reading Flow manifests from YAML, with errors that name the file and the field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kascade.api import Flow
from kascade.api.crd import API_VERSION
from kascade.engine.errors import ManifestError


def load_flow(path: Path | str) -> Flow:
    """The Flow in a manifest file (the first document of kind Flow)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read: {err}") from err
    return parse_flow(text, str(path))


def parse_flow(text: str, source: str) -> Flow:
    """Parse and validate a Flow manifest; ManifestError names the file and every bad field."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ManifestError(
            f"{where}: invalid YAML: {getattr(err, 'problem', None) or err}"
        ) from err
    flows = [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "Flow"]
    if not flows:
        raise ManifestError(f"{source}: no document of kind Flow (expected `kind: Flow`)")
    document = flows[0]
    if document.get("apiVersion") != API_VERSION:
        raise ManifestError(
            f"{source}: apiVersion must be {API_VERSION}, got {document.get('apiVersion')!r}"
        )
    try:
        flow = Flow.model_validate(document)
    except ValidationError as err:
        raise ManifestError(format_validation_error(err, source, document)) from err
    if not flow.metadata.name:
        raise ManifestError(f"{source}: metadata.name: the Flow needs a name")
    return flow


def format_validation_error(err: ValidationError, source: str, document: Any = None) -> str:
    """One line per problem: `file: spec.nodes[1] (staging).retries: must be >= 0`."""
    lines = [f"{source}: {len(err.errors())} invalid field(s):"]
    for problem in err.errors():
        where = field_path(problem["loc"], document)
        lines.append(f"  - {where}: {_message(problem)}")
    return "\n".join(lines)


def field_path(loc: Sequence[int | str], document: Any = None) -> str:
    """A pydantic error location as a field path; list items of named objects show the name."""
    out = ""
    current = document
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            item = current[part] if isinstance(current, list) and part < len(current) else None
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                out += f" ({item['name']})"
            current = item
        else:
            out += f".{part}" if out else str(part)
            current = current.get(part) if isinstance(current, dict) else None
    return out or "(document)"


def _message(problem: Any) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = str(problem["msg"])
    return message.removeprefix("Value error, ")

"""Reading Flow manifests from YAML, with errors that name the file and the field."""

from __future__ import annotations

import stat
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
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would never end
            raise ManifestError(f"{path}: not a regular file")
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
    except RecursionError as err:
        raise ManifestError(f"{source}: invalid YAML: nested too deeply") from err
    except ValueError as err:  # an integer of more digits than Python converts, and the like
        raise ManifestError(f"{source}: invalid YAML: {yaml_value_error(err)}") from err
    for document in documents:
        problem = alias_problem(document)
        if problem is not None:
            raise ManifestError(f"{source}: invalid YAML: {problem}")
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


# More values than any Flow or dbt file holds, far fewer than a YAML alias bomb expands to.
MAX_VALUES = 200_000


def alias_problem(document: Any, limit: int = MAX_VALUES) -> str | None:
    """Why a loaded YAML document cannot be read as data, if it cannot: YAML aliases make
    it refer to itself, or expand to more than `limit` values (what a reader walking it
    would visit; a "billion laughs" file is a few lines long)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _SelfReference
        open_nodes.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    try:
        if size(document) > limit:
            return f"expands to more than {limit:,} values (YAML aliases?)"
    except _SelfReference:
        return "a YAML alias makes it refer to itself"
    except RecursionError:
        return "nested too deeply"
    return None


class _SelfReference(Exception):
    """A document that contains itself."""


def yaml_value_error(err: ValueError) -> str:
    """The message of a ValueError raised while YAML was read, without Python's advice
    to raise the limit of digits (a user cannot)."""
    return str(err).partition("; use sys.set_int_max_str_digits")[0]


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

"""What a dbt invocation means for its task: the outputs it publishes, and the one line a
user reads when it fails (resource, file and the first line of the real error, without
dbt's headers, hints and SQL excerpts)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

FAILED = frozenset({"error", "fail", "runtime error", "partial success"})
MAX_WARNINGS = 10
# dbt's first line of an error: "Runtime Error in model stg_orders (models/stg_orders.sql)"
_HEADER = re.compile(
    r"^(?P<category>[A-Z][A-Za-z ]*Error)"
    r"(?: in (?P<type>[\w ]+?) (?P<name>\S+) \((?P<path>[^)]*)\))?$"
)
_JINJA_LINE = re.compile(r"^line \d+$")


class NodeConfig(Protocol):
    """The parts of a dbt node's config the runtime reads."""

    @property
    def materialized(self) -> str: ...


class Node(Protocol):
    """The parts of a dbt manifest node the runtime reads."""

    @property
    def name(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def original_file_path(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def alias(self) -> str: ...
    @property
    def config(self) -> NodeConfig: ...


class Result(Protocol):
    """The parts of one dbt node result the runtime reads."""

    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str | None: ...
    @property
    def failures(self) -> int | None: ...
    @property
    def adapter_response(self) -> Mapping[str, Any]: ...
    @property
    def node(self) -> Node: ...


def failed(results: Sequence[Result]) -> list[Result]:
    """The results that fail the task (a warning does not)."""
    return [result for result in results if str(result.status) in FAILED]


def failure_message(failures: Sequence[Result]) -> str:
    """One line for the failed results: the first in full, the others by name."""
    first = failures[0]
    message = f"{describe(first.node)}: {first_line(first.message or str(first.status))}"
    others = [f"`{result.node.name}`" for result in failures[1:]]
    if others:
        message += f" (and {len(others)} more failed: {', '.join(others[:5])})"
    return message


def describe(node: Node) -> str:
    """A resource as the user knows it: "model `stg_orders` (models/staging/stg_orders.sql)"."""
    return f"{node.resource_type} `{node.name}` ({node.original_file_path})"


def first_line(message: str) -> str:
    """The first meaningful line of a dbt error message: its header and indentation dropped;
    a Jinja error keeps the line number that follows it."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and _HEADER.match(lines[0]) and len(lines) > 1:
        lines = lines[1:]
    if not lines:
        return message.strip()
    if len(lines) > 1 and _JINJA_LINE.match(lines[1]):
        return f"{lines[0]} ({lines[1]})"
    return lines[0]


def exception_message(error: BaseException, verb: str) -> str:
    """One line for an error dbt raised instead of running (a compilation error, a missing
    ref, a broken dbt_project.yml)."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        detail = lines[0] if lines else type(error).__name__
        return f"dbt {verb} failed: {detail}"
    if header["name"]:
        return f"{header['type']} `{header['name']}` ({header['path']}): {first_line(text)}"
    return f"{header['category']}: {first_line(text)}"


def resource_outputs(results: Sequence[Result], name: str) -> dict[str, Any]:
    """Outputs of a model, seed or snapshot: its relation, materialization and, when the
    adapter reports it, the rows it affected."""
    if not results:
        return {}
    named = [result for result in results if result.node.name == name]
    result = (named or list(results))[0]
    node = result.node
    outputs: dict[str, Any] = {
        "relation": f"{node.schema}.{node.alias}",
        "materialized": node.config.materialized,
    }
    rows = result.adapter_response.get("rows_affected")
    if isinstance(rows, int) and rows >= 0:
        outputs["rows"] = rows
    return outputs


def outputs_of_tests(results: Sequence[Result]) -> dict[str, Any]:
    """Outputs of a test task: tests run, failing rows summed, and the warnings."""
    warnings = [
        f"test `{result.node.name}`: {result.failures or 0} failing rows (warn)"
        for result in results
        if str(result.status) == "warn"
    ]
    return {
        "tests": len(results),
        "failures": sum(result.failures or 0 for result in results),
        "warnings": warnings[:MAX_WARNINGS],
    }

"""dbt vars as the planner knows them: from `vars:` of dbt_project.yml (global, and scoped to
a package: `vars: {shop: {...}}`), from the projects of installed packages, and from the
Flow's `spec.vars` (dbt's `--vars`, which win).

A value is known, unknown or missing. A string holding a template (`{{ params.as_of }}` in
the Flow, `{{ modules.datetime... }}` in dbt_project.yml) is only rendered when a task
starts: at plan time it is UNKNOWN. A var with no value and no default is MISSING.

dbt looks vars up differently by place, and this module mirrors each:
- in a model's SQL (ref, source, config arguments) and in properties files: the node's own
  package's vars, then the root project's (global, then scoped to the node's package) over
  them, then `--vars` over all;
- in dbt_project.yml and selectors.yml: `--vars` only; the project's own `vars:` block is
  not visible there (and a missing var fails the whole project).

Every lookup is recorded by name, so a project read once can tell whether other Flow vars
would change it (Project.with_vars).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Marker(Enum):
    """What a var lookup gives when it has no value to give."""

    UNKNOWN = "unknown"
    """A template only a run renders."""
    MISSING = "missing"
    """No value and no default."""


UNKNOWN = Marker.UNKNOWN
MISSING = Marker.MISSING
_TEMPLATE = ("{{", "{%")


def is_template(value: Any) -> bool:
    """Whether a var value holds a template anywhere (a string, or inside a list or mapping)."""
    if isinstance(value, str):
        return any(mark in value for mark in _TEMPLATE)
    if isinstance(value, Mapping):
        return any(is_template(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(is_template(item) for item in value)
    return False


def missing_var_message(name: str, *, project_file: bool = False) -> str:
    """What to say about a var with no value and no default."""
    if project_file:
        return (
            f"var `{name}` has no value: set it in the Flow's `spec.vars` or give a default "
            "(dbt_project.yml does not see its own `vars:`)"
        )
    return f"var `{name}` has no value: set it in dbt_project.yml `vars:` or the Flow's `spec.vars`"


@dataclass
class Vars:
    """Every var source of one planning, and the names looked up so far."""

    root: str
    cli: Mapping[str, Any] = field(default_factory=dict)
    projects: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    """The `vars:` block of the root project and of each package, by project name."""
    used: set[str] = field(default_factory=set)
    _scopes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lookup(self, name: str, default: Any = MISSING, *, package: str | None = None) -> Any:
        """A var in a model's SQL or a properties file of `package` (None: the root
        project)."""
        self.used.add(name)
        scope = self._scope(package or self.root)
        return _known(scope[name]) if name in scope else default

    def names_for(self, package: str) -> frozenset[str]:
        """The vars with a value in the resources of `package` (without looking them up)."""
        return frozenset(self._scope(package))

    def in_project_file(self, name: str, default: Any = MISSING) -> Any:
        """A var in dbt_project.yml or selectors.yml: the Flow's vars only."""
        self.used.add(name)
        return _known(self.cli[name]) if name in self.cli else default

    def _scope(self, package: str) -> dict[str, Any]:
        if package not in self._scopes:
            merged = _layers(self.projects.get(package, {}), package)
            if package != self.root:
                merged.update(_layers(self.projects.get(self.root, {}), package))
            merged.update(self.cli)
            self._scopes[package] = merged
        return self._scopes[package]


def _layers(block: Mapping[str, Any], package: str) -> dict[str, Any]:
    """A `vars:` block as dbt reads it for a node of `package`: the whole block, then the
    entries scoped to the package."""
    merged = dict(block)
    scoped = block.get(package)
    if isinstance(scoped, Mapping):
        merged.update(scoped)
    return merged


def _known(value: Any) -> Any:
    return UNKNOWN if is_template(value) else value


# --- templates in YAML values -------------------------------------------------------------

_EXPRESSION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_VAR_CALL = re.compile(
    r"^var\s*\(\s*(?P<args>.*?)\s*\)\s*(?:\|\s*(?P<filter>as_bool|as_number|as_native|as_text))?$",
    re.DOTALL,
)


class Unrenderable(Exception):
    """A template the planner cannot render: it needs more of dbt than `var()`."""


class MissingVar(Exception):
    """A `var()` with no value and no default."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


VarLookup = Callable[[str, Any], Any]
"""(name, default or MISSING) -> the value, UNKNOWN or MISSING."""


def render_yaml_value(value: str, lookup: VarLookup) -> Any:
    """A string of a YAML file rendered as dbt does (natively: a value
    that is one `{{ var(...) }}` keeps the var's type), when its only Jinja is
    `{{ var('name') }}` or `{{ var('name', default) }}` (optionally `| as_bool`,
    `| as_number`, `| as_native`, `| as_text`). UNKNOWN when a var is a template;
    Unrenderable when it needs more of dbt; MissingVar for a var with no value."""
    if not any(mark in value for mark in _TEMPLATE):
        return value
    if "{%" in value or "{#" in value:
        raise Unrenderable(value)
    pieces: list[Any] = []
    position = 0
    for expression in _EXPRESSION.finditer(value):
        if expression.start() > position:
            pieces.append(value[position : expression.start()])
        pieces.append(_render_expression(expression[1], lookup))
        position = expression.end()
    if position < len(value):
        pieces.append(value[position:])
    if any(piece is UNKNOWN for piece in pieces):
        return UNKNOWN
    if len(pieces) == 1:
        return pieces[0]
    return "".join(str(piece) for piece in pieces)


def _render_expression(expression: str, lookup: VarLookup) -> Any:
    call = _VAR_CALL.match(expression)
    if call is None:
        raise Unrenderable(expression)
    try:
        parsed = jinja_literal(f"({call['args']},)") if call["args"] else ()
        args: tuple[Any, ...] = tuple(parsed)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise Unrenderable(expression) from err
    if not 1 <= len(args) <= 2 or not isinstance(args[0], str):
        raise Unrenderable(expression)
    found = lookup(args[0], args[1] if len(args) == 2 else MISSING)
    if found is MISSING:
        raise MissingVar(args[0])
    if found is UNKNOWN:
        return UNKNOWN
    return _filtered(found, call["filter"], expression)


_JINJA_NAMES = {"true": True, "false": False, "none": None}


def jinja_literal(source: str) -> Any:
    """A Jinja literal (Python's, with `true`, `false` and `none` too); ValueError if the
    text is anything else."""
    return _literal(ast.parse(source.strip(), mode="eval").body)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id.lower() in _JINJA_NAMES:
        return _JINJA_NAMES[node.id.lower()]
    if isinstance(node, ast.List | ast.Tuple):
        items = [_literal(item) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {
            _literal(key): _literal(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    raise ValueError("not a literal")


def _filtered(value: Any, name: str | None, expression: str) -> Any:
    if name is None:
        return value
    if name == "as_text":
        return str(value)
    try:
        converted = value if not isinstance(value, str) else ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        converted = value
    if name == "as_bool" and not isinstance(converted, bool):
        raise Unrenderable(f"{expression}: `{value}` is not a boolean")
    if name == "as_number" and (
        isinstance(converted, bool) or not isinstance(converted, int | float)
    ):
        raise Unrenderable(f"{expression}: `{value}` is not a number")
    return converted

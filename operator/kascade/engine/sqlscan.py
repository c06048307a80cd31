"""Finds ref(), source() and config() calls in a model's SQL.

A fast static pass reads every literal call inside the `{{ ... }}` and `{% ... %}` blocks,
nested ones included, without rendering. Like dbt's static parser it reads every branch
of an `{% if %}`, so a conditional ref still orders the model after its target. Only a
model with a call whose arguments are computed (a loop variable, a `var()`) is also
rendered with Jinja, with stand-ins that record the calls.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.sandbox

_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_BLOCK = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
_CALL_NAMES = ("ref", "source", "config")
_MENTION = re.compile(r"\b(ref|source|config)\s*\(")
_STRING_ARGUMENTS = re.compile(r"""^\s*(['"])([^'"\\]*)\1\s*(?:,\s*(['"])([^'"\\]*)\3\s*)?$""")
_JINJA_CONSTANTS = {"true": True, "false": False, "none": None}


@dataclass(frozen=True)
class Ref:
    """A ref() call: the model it names, the package if given, and its line."""

    name: str
    package: str | None
    line: int


@dataclass(frozen=True)
class Source:
    """A source() call: an external relation `source.table`; no dependency."""

    source: str
    table: str
    line: int


@dataclass
class Scan:
    """What a model's SQL declares."""

    refs: list[Ref] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    config_tags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Dynamic(Exception):
    """A call whose arguments are not literals: the model needs rendering."""


def scan_sql(text: str) -> Scan:
    """Extract the calls of one model; problems land in `errors` with their line."""
    stripped = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text) if "{#" in text else text
    if not _MENTION.search(stripped):
        return Scan()
    scan, dynamic = _scan_static(stripped)
    if dynamic:
        _merge_rendered(scan, _scan_rendered(text))
    return scan


def _scan_static(text: str) -> tuple[Scan, bool]:
    """Literal calls of every block, and whether any call needs rendering."""
    scan = Scan()
    dynamic = False
    for block in _BLOCK.finditer(text):
        body = block.group(1) if block.group(1) is not None else block.group(2)
        line = 0
        for call in _MENTION.finditer(body):
            end = _closing_parenthesis(body, call.end())
            line = line or text.count("\n", 0, block.start()) + 1
            try:
                if end < 0:
                    raise _Dynamic
                args, kwargs = _literal_arguments(body[call.end() : end])
            except _Dynamic:
                dynamic = True
                continue
            _record(scan, call.group(1), args, kwargs, line)
    return scan, dynamic


def _merge_rendered(scan: Scan, rendered: Scan) -> None:
    """Add what rendering found to the literal calls (which count in every branch)."""
    known_refs = {(ref.package, ref.name) for ref in scan.refs}
    scan.refs += [r for r in rendered.refs if (r.package, r.name) not in known_refs]
    known_sources = {(source.source, source.table) for source in scan.sources}
    scan.sources += [s for s in rendered.sources if (s.source, s.table) not in known_sources]
    scan.config.update(rendered.config)
    scan.config_tags += [tag for tag in rendered.config_tags if tag not in scan.config_tags]
    scan.errors += rendered.errors


def _closing_parenthesis(text: str, start: int) -> int:
    """Index of the `)` closing the call whose arguments begin at `start`, or -1."""
    depth = 1
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _literal_arguments(source: str) -> tuple[list[Any], dict[str, Any]]:
    plain = _STRING_ARGUMENTS.match(source)
    if plain is not None:  # the common `'a'` / `'a', 'b'` case, without the Python parser
        return [value for value in plain.group(2, 4) if value is not None], {}
    try:
        tree = ast.parse(f"_({source})", mode="eval")
    except SyntaxError as err:
        raise _Dynamic from err
    call = tree.body
    if not isinstance(call, ast.Call) or any(isinstance(a, ast.Starred) for a in call.args):
        raise _Dynamic
    args = [_literal(arg) for arg in call.args]
    kwargs = {kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg is not None}
    if len(kwargs) != len(call.keywords):
        raise _Dynamic
    return args, kwargs


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id.lower() in _JINJA_CONSTANTS:
        return _JINJA_CONSTANTS[node.id.lower()]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(key): _literal(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    raise _Dynamic


def _record(scan: Scan, name: str, args: list[Any], kwargs: dict[str, Any], line: int) -> None:
    if name == "ref":
        if len(args) not in (1, 2) or not all(isinstance(a, str) for a in args):
            scan.errors.append(f"line {line}: ref() takes a model name and an optional package")
            return
        package, model = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        scan.refs.append(Ref(name=model, package=package, line=line))
    elif name == "source":
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            scan.errors.append(f"line {line}: source() takes a source name and a table name")
            return
        scan.sources.append(Source(source=args[0], table=args[1], line=line))
    else:
        if args:
            scan.errors.append(f"line {line}: config() takes keyword arguments only")
            return
        tags = kwargs.pop("tags", None)
        if tags is not None:
            scan.config_tags.extend(_as_tags(tags))
        scan.config.update(kwargs)


def _as_tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


class _Anything(jinja2.ChainableUndefined):
    """Stands in for the rest of dbt's context (macros, adapter, target): it can be read,
    called and iterated, and renders as nothing, so rendering reaches every call."""

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:  # type: ignore[override]
        return self


class _Recorder:
    """Jinja globals standing in for dbt's context while a model is rendered for its calls."""

    def __init__(self, scan: Scan, text: str) -> None:
        self.scan = scan
        self.text = text

    def _line_of(self, args: tuple[Any, ...]) -> int:
        """Best guess at the line of a rendered call: where its last argument is written."""
        if not args:
            return 0
        for quote in ("'", '"'):
            position = self.text.find(f"{quote}{args[-1]}{quote}")
            if position >= 0:
                return self.text.count("\n", 0, position) + 1
        return 0

    def ref(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "ref", list(args), {}, self._line_of(args))
        return str(args[-1]) if args else ""

    def source(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "source", list(args), {}, self._line_of(args))
        return ".".join(str(a) for a in args)

    def config(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "config", list(args), dict(kwargs), 0)
        return ""


def _scan_rendered(text: str) -> Scan:
    scan = Scan()
    recorder = _Recorder(scan, text)
    environment = jinja2.sandbox.SandboxedEnvironment(undefined=_Anything)
    context: dict[str, Any] = {
        "ref": recorder.ref,
        "source": recorder.source,
        "config": recorder.config,
        "var": lambda name, default=None: default,
        "env_var": lambda name, default="": default,
        "is_incremental": lambda: False,
    }
    try:
        environment.from_string(text).render(context)
    except jinja2.TemplateSyntaxError as err:
        scan.errors.append(f"line {err.lineno}: Jinja syntax error: {err.message}")
    except Exception as err:  # a model's own Jinja can raise anything; report it, do not crash
        scan.errors.append(f"cannot render the model to find its refs: {err}")
    return scan

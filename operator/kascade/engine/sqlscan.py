"""Finds ref(), source() and config() calls in a model's SQL.

A fast static pass reads every literal call inside the `{{ ... }}` and `{% ... %}` blocks,
nested ones included, without rendering. Like dbt's static parser it reads every branch
of an `{% if %}`, so a conditional ref still orders the model after its target (a call
written inside a string literal is text, not a call). Only a model with a call whose
arguments are computed (a loop variable, a `var()`) is also rendered with Jinja (dbt's `do`
and `loopcontrols` extensions enabled), with stand-ins that record the calls, within the
limits of engine.sandbox (steps, sizes, output).
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jinja2

from kascade.engine.sandbox import (
    DBT_EXTENSIONS,
    BoundedEnvironment,
    RenderLimitError,
    render_bounded,
)

_CALL_NAMES = ("ref", "source", "config")
_MENTION = re.compile(r"\b(ref|source|config)\s*\(")
_STRING_ARGUMENTS = re.compile(r"""^\s*(['"])([^'"\\]*)\1\s*(?:,\s*(['"])([^'"\\]*)\3\s*)?$""")
_JINJA_CONSTANTS = {"true": True, "false": False, "none": None}
_OPENERS = "([{"
_CLOSERS = ")]}"
_QUOTES = "'\""
_SIMPLE_BLOCK = re.compile(
    r"""^-?\s*(ref|source)\s*\(\s*(['"])([^'"\\]*)\2\s*(?:,\s*(['"])([^'"\\]*)\4\s*)?\)\s*-?$"""
)
_LEADING_CALL = re.compile(r"^-?\s*(ref|source|config)\s*\(")
_SPECIAL = re.compile(r"""[()\[\]{}'"\\]""")
_BLOCK_START = re.compile(r"\{(?=[{%])")


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
    """Extract the calls of one model; problems land in `errors` with their line.

    Linear in the size of the text, however the calls nest: comments, blocks and
    brackets are each found in one pass, and only argument spans without a call inside
    (which no other mention shares) go to the Python parser.
    """
    stripped = _without_comments(text) if "{#" in text else text
    if not _MENTION.search(stripped):
        return Scan()
    scan, dynamic = _scan_static(stripped)
    if dynamic:
        _merge_rendered(scan, _scan_rendered(text))
    return scan


def _without_comments(text: str) -> str:
    """The text with each `{# ... #}` replaced by its newlines, so lines keep their numbers."""
    pieces: list[str] = []
    position = 0
    while (start := text.find("{#", position)) >= 0:
        end = text.find("#}", start + 2)
        if end < 0:
            break
        pieces += [text[position:start], "\n" * text.count("\n", start, end + 2)]
        position = end + 2
    pieces.append(text[position:])
    return "".join(pieces)


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    """(start, body) of every `{{ ... }}` and `{% ... %}` block, leftmost first, each
    ending at the first closer after it (once a closer is missing, it stays missing)."""
    closer = {"{": "}}", "%": "%}"}
    unclosed: set[str] = set()
    position = 0
    for opening in _BLOCK_START.finditer(text):
        start = opening.start()
        kind = text[start + 1]
        if start < position or kind in unclosed:
            continue
        end = text.find(closer[kind], start + 2)
        if end < 0:
            unclosed.add(kind)
            continue
        yield start, text[start + 2 : end]
        position = end + 2


def _scan_static(text: str) -> tuple[Scan, bool]:
    """Literal calls of every block, and whether any call needs rendering."""
    scan = Scan()
    dynamic = False
    newlines = counted = 0
    for start, body in _blocks(text):
        simple = _SIMPLE_BLOCK.match(body)
        mentions = [] if simple else list(_MENTION.finditer(body))
        if not simple and not mentions:
            continue
        newlines += text.count("\n", counted, start)
        counted = start
        if simple:  # `{{ ref('a') }}`, the usual block, read without the bracket pass
            args = [value for value in simple.group(3, 5) if value is not None]
            _record(scan, simple.group(1), args, {}, newlines + 1)
            continue
        brackets = _brackets(body)
        for call in mentions:
            found = brackets.get(call.end() - 1)
            if found is None:  # the mention is inside a string literal
                continue
            end, holds_call = found
            try:
                if end < 0 or holds_call:
                    raise _Dynamic
                args, kwargs = _literal_arguments(body[call.end() : end])
            except _Dynamic:
                dynamic = True
                continue
            _record(scan, call.group(1), args, kwargs, newlines + 1)
    return scan, dynamic


def only_literal_calls(text: str) -> bool:
    """Whether a model's Jinja is nothing but `{{ ref/source/config(<literals>) }}` blocks
    and comments: rendering it could only record the calls the static pass read."""
    stripped = _without_comments(text) if "{#" in text else text
    if "{%" in stripped:
        return False
    for _, body in _blocks(stripped):
        if _SIMPLE_BLOCK.match(body):
            continue
        call = _LEADING_CALL.match(body)
        found = _brackets(body).get(call.end() - 1) if call is not None else None
        if call is None or found is None or found[0] < 0 or found[1]:
            return False
        if body[found[0] + 1 :].strip(" \t\r\n-"):
            return False
        try:
            _literal_arguments(body[call.end() : found[0]])
        except _Dynamic:
            return False
    return True


def _merge_rendered(scan: Scan, rendered: Scan) -> None:
    """Add what rendering found to the literal calls (which count in every branch)."""
    known_refs = {(ref.package, ref.name) for ref in scan.refs}
    scan.refs += [r for r in rendered.refs if (r.package, r.name) not in known_refs]
    known_sources = {(source.source, source.table) for source in scan.sources}
    scan.sources += [s for s in rendered.sources if (s.source, s.table) not in known_sources]
    scan.config.update(rendered.config)
    known_tags = set(scan.config_tags)
    scan.config_tags += [
        tag for tag in dict.fromkeys(rendered.config_tags) if tag not in known_tags
    ]
    scan.errors += rendered.errors


def _brackets(body: str) -> dict[int, tuple[int, bool]]:
    """For each `(` outside string literals: the index of the bracket closing it (-1 when
    none does) and whether a call is made between the two. Any closer closes the innermost
    open bracket, whatever its kind, as Jinja's own parser would fail on a mismatch anyway."""
    found: dict[int, tuple[int, bool]] = {}
    open_brackets: list[list[Any]] = []  # [index, holds a call]
    quote = ""
    escaped_until = -1
    for special in _SPECIAL.finditer(body):
        index = special.start()
        char = body[index]
        if index <= escaped_until:
            continue
        if quote:
            if char == "\\":
                escaped_until = index + 1
            elif char == quote:
                quote = ""
        elif char in _QUOTES:
            quote = char
        elif char in _OPENERS:
            open_brackets.append([index, False])
        elif char in _CLOSERS and open_brackets:
            position, holds_call = open_brackets.pop()
            if body[position] == "(":
                found[position] = (index, holds_call)
                holds_call = holds_call or _is_call(body, position)
            if holds_call and open_brackets:
                open_brackets[-1][1] = True
    for position, holds_call in open_brackets:
        if body[position] == "(":
            found[position] = (-1, holds_call)
    return found


def _is_call(body: str, paren: int) -> bool:
    """Whether the `(` at `paren` calls something (follows a name, `)` or `]`) rather than
    groups. The whitespace looked through belongs to this parenthesis alone."""
    index = paren - 1
    while index >= 0 and body[index].isspace():
        index -= 1
    return index >= 0 and (body[index].isalnum() or body[index] in "_)]")


def _literal_arguments(source: str) -> tuple[list[Any], dict[str, Any]]:
    plain = _STRING_ARGUMENTS.match(source)
    if plain is not None:  # the common `'a'` / `'a', 'b'` case, without the Python parser
        return [value for value in plain.group(2, 4) if value is not None], {}
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(f"_({source})", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
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
        self._quoted: dict[str, dict[str, int]] = {}
        self._newlines: list[int] | None = None

    def context(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source,
            "config": self.config,
            "var": lambda name, default=None: default,
            "env_var": lambda name, default="": default,
            "is_incremental": lambda: False,
        }

    def _line_of(self, args: tuple[Any, ...]) -> int:
        """Best guess at the line of a rendered call: where its last argument is written
        between quotes (found through an index of quoted texts, built once)."""
        if not args:
            return 0
        value = str(args[-1])
        for quote in ("'", '"'):
            position = self._quoted_at(quote).get(value, -1) if quote not in value else -1
            if position >= 0:
                if self._newlines is None:
                    self._newlines = [m.start() for m in re.finditer("\n", self.text)]
                return bisect.bisect_left(self._newlines, position) + 1
        return 0

    def _quoted_at(self, quote: str) -> dict[str, int]:
        """Where each text between two successive `quote` characters first occurs."""
        if quote not in self._quoted:
            marks = [m.start() for m in re.finditer(quote, self.text)]
            index: dict[str, int] = {}
            for first, second in itertools.pairwise(marks):
                index.setdefault(self.text[first + 1 : second], first)
            self._quoted[quote] = index
        return self._quoted[quote]

    def ref(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "ref", list(args), {}, self._line_of(args))
        return str(args[-1]) if args else ""

    def source(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "source", list(args), {}, self._line_of(args))
        return ".".join(str(a) for a in args)

    def config(self, *args: Any, **kwargs: Any) -> str:
        _record(self.scan, "config", list(args), dict(kwargs), 0)
        return ""


MODEL_ENVIRONMENT = BoundedEnvironment(undefined=_Anything, extensions=list(DBT_EXTENSIONS))
"""Where models are parsed and rendered for their calls: dbt's Jinja extensions, the
_Anything stand-in for the rest of dbt's context, and the limits of engine.sandbox."""


def compile_model(text: str) -> jinja2.Template:
    """A model's Jinja, compiled; jinja2.TemplateSyntaxError (with its line) when it does
    not parse, another exception (RecursionError, ...) when it cannot be compiled."""
    return MODEL_ENVIRONMENT.from_string(text)


def record_calls(template: jinja2.Template, text: str) -> Scan:
    """Render a compiled model with stand-ins that record its ref(), source() and config()
    calls; a render that fails or goes over a limit is an error of the scan."""
    scan = Scan()
    recorder = _Recorder(scan, text)
    try:
        render_bounded(template, recorder.context())
    except RenderLimitError as err:
        scan.errors.append(str(err))
    except Exception as err:  # a model's own Jinja can raise anything; report it, do not crash
        scan.errors.append(f"cannot render the model to find its refs: {err}")
    scan.errors = list(dict.fromkeys(scan.errors))  # a bad call in a loop, reported once
    return scan


def _scan_rendered(text: str) -> Scan:
    try:
        template = compile_model(text)
    except jinja2.TemplateSyntaxError as err:
        return Scan(errors=[f"line {err.lineno}: Jinja syntax error: {err.message}"])
    except RecursionError:
        return Scan(errors=["the model's Jinja is nested too deeply to parse"])
    except Exception as err:  # the compiled Python can fail too (too many nested brackets)
        return Scan(errors=[f"cannot parse the model's Jinja: {err}"])
    return record_calls(template, text)

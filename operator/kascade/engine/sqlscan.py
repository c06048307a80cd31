"""Finds ref(), source() and config() calls in a model's SQL.

A fast static pass reads every literal call inside the `{{ ... }}` and `{% ... %}` blocks,
nested ones included, without rendering; a `var('x')` or `var('x', default)` argument is
looked up in the planning's vars (engine.dbtvars) (a call written inside a string literal
is text, not a call). A model with a call inside a
control block (an `{% if %}` branch, a loop, a macro) or whose arguments are computed (a
loop variable, a `{% set %}`) is also rendered (engine.sqlrender) as dbt's parse renders it:
only the branches taken count, unless a branch depends on what only dbt's context knows
(`target`, a macro, `adapter`): then every branch counts.

What neither can tell is Computed, never guessed: a var only the run knows, a ref() of a
value a macro makes, a call of a project macro that itself calls ref() or source().
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from typing import Any

from kascade.engine.dbtvars import MISSING, UNKNOWN, missing_var_message
from kascade.engine.sqlbranches import Branches
from kascade.engine.sqlcalls import Computed, Finding, Ref, Scan, Source, record_call
from kascade.engine.sqlrender import (
    MODEL_ENVIRONMENT,
    VarLookup,
    compile_model,
    parse_time_var,
    record_calls,
    render_calls,
)

__all__ = [
    "MODEL_ENVIRONMENT",
    "Computed",
    "Finding",
    "Ref",
    "Scan",
    "Source",
    "compile_model",
    "only_literal_calls",
    "record_calls",
    "scan_sql",
]

_MENTION = re.compile(r"\b(ref|source|config)\s*\(")
_STRING_ARGUMENTS = re.compile(r"""^\s*(['"])([^'"\\]*)\1\s*(?:,\s*(['"])([^'"\\]*)\3\s*)?$""")
_STRING = r"""(?:'[^'"\\]*'|"[^'"\\]*")"""
_STRING_KEYWORD = re.compile(rf"\s*([A-Za-z_]\w*)\s*=\s*({_STRING})\s*")
_STRING_KEYWORDS = re.compile(rf"(?:{_STRING_KEYWORD.pattern},)*{_STRING_KEYWORD.pattern}")
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
_WORDLIKE = re.compile(r"[\w.]")


class _Dynamic(Exception):
    """A call whose arguments are not literals: the model needs rendering."""


class _UnknownVar(Exception):
    """An argument that is a var only the run knows."""


class _MissingVar(Exception):
    """An argument that is a var with no value and no default."""


def scan_sql(
    text: str, vars: VarLookup | None = None, macro_calls: re.Pattern[str] | None = None
) -> Scan:
    """Extract the calls of one model; problems land in `errors` with their line.

    `vars` answers `var()` (default: dbt's parse-time answer without vars); `macro_calls`
    matches calls of macros that call ref() or source() themselves (engine.macros).
    Linear in the size of the text, however the calls nest: comments, blocks and
    brackets are each found in one pass, and only argument spans without a call inside
    (but `var()`) go to the Python parser.
    """
    stripped = _without_comments(text) if "{#" in text else text
    lookup = vars or parse_time_var
    if not _MENTION.search(stripped):
        scan = Scan()
        if macro_calls is not None:
            _find_macro_calls(stripped, macro_calls, scan)
        return scan
    scan, branches, lines = _scan_static(stripped, lookup)
    if macro_calls is not None:
        _find_macro_calls(stripped, macro_calls, scan)
    if lines:
        rendered = render_calls(text, lookup, lines)
        if rendered.uncertain and branches is not None:  # no branch can be chosen: all count
            _merge_rendered(scan, branches)
        _merge_rendered(scan, rendered)
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


def _scan_static(text: str, lookup: VarLookup) -> tuple[Scan, Scan | None, dict[str, int]]:
    """Literal calls of every block: those that always run, and those inside a control
    block (an `if` branch, a loop, a macro), which only rendering can confirm; and the line
    of the first call of each name that needs rendering."""
    always, branches = Scan(), None
    dynamic: dict[str, int] = {}
    arguments = _Arguments(lookup)
    control: Branches | None = None
    newlines = counted = 0
    for start, body in _blocks(text):
        simple = _SIMPLE_BLOCK.match(body)
        mentions = [] if simple else list(_MENTION.finditer(body))
        state = control.state if control is not None else True
        if text[start + 1] == "%":
            control = control or Branches(arguments.condition)
            state = None if control.opens_branch(body) else state
            control.tag(body)
        if (not simple and not mentions) or state is False:  # nothing, or dbt skips it
            continue
        newlines += text.count("\n", counted, start)
        counted = start
        if state:
            scan = always
        else:
            scan = branches = branches or Scan()
        if simple:  # `{{ ref('a') }}`, the usual block, read without the bracket pass
            args = [value for value in simple.group(3, 5) if value is not None]
            record_call(scan, simple.group(1), args, {}, newlines + 1)
            if scan is branches:
                dynamic.setdefault(simple.group(1), newlines + 1)
            continue
        brackets = _brackets(body)
        inner = inner_counted = 0
        for call in mentions:
            found = brackets.get(call.end() - 1)
            if found is None:  # the mention is inside a string literal
                continue
            inner += body.count("\n", inner_counted, call.start())
            inner_counted = call.start()
            line = newlines + inner + 1
            name, (end, holds_call) = call.group(1), found
            try:
                if end < 0 or holds_call:
                    raise _Dynamic
                args, kwargs = arguments.of(body[call.end() : end])
            except _Dynamic:
                dynamic.setdefault(name, line)
                continue
            except _UnknownVar as unknown:
                what = {"ref": "refs", "source": "sources"}.get(name, "config")
                reason = f"var `{unknown}` is only known when the run starts"
                scan.computed.append(Computed(line, reason, what))
                continue
            except _MissingVar as missing:
                scan.errors.append(Finding(line, missing_var_message(str(missing))))
                continue
            record_call(scan, name, args, kwargs, line)
            if scan is branches:
                dynamic.setdefault(name, line)
    return always, branches, dynamic


def _find_macro_calls(text: str, macro_calls: re.Pattern[str], scan: Scan) -> None:
    """A call of a macro that calls ref() or source() itself: only dbt's parse knows what
    it refs."""
    newlines = counted = 0
    for start, body in _blocks(text):
        found = macro_calls.search(body)
        if found is None:
            continue
        newlines += text.count("\n", counted, start)
        counted = start
        line = newlines + body.count("\n", 0, found.start()) + 1
        macro = found.group(0).rstrip("( \t\r\n")
        reason = f"it calls macro `{macro}`, which calls ref() or source()"
        scan.computed.append(Computed(line, reason))
        return


def only_literal_calls(text: str) -> bool:
    """Whether a model's Jinja is nothing but `{{ ref/source/config(<literals>) }}` blocks
    and comments: rendering it could only record the calls the static pass read."""
    stripped = _without_comments(text) if "{#" in text else text
    if "{%" in stripped:
        return False
    arguments = _Arguments(parse_time_var)
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
            arguments.of(body[call.end() : found[0]])
        except (_Dynamic, _UnknownVar, _MissingVar):
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
    scan.computed += rendered.computed
    scan.render_failures += rendered.render_failures
    scan.uncertain = scan.uncertain or rendered.uncertain


def _brackets(body: str) -> dict[int, tuple[int, bool]]:
    """For each `(` outside string literals: the index of the bracket closing it (-1 when
    none does) and whether a call other than a `var()` of literals is made between the two.
    Any closer closes the innermost open bracket, whatever its kind, as Jinja's own parser
    would fail on a mismatch anyway."""
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
                callee = _callee_end(body, position)
                if callee >= 0 and (holds_call or not _is_var(body, callee)):
                    holds_call = True
            if holds_call and open_brackets:
                open_brackets[-1][1] = True
    for position, holds_call in open_brackets:
        if body[position] == "(":
            found[position] = (-1, holds_call)
    return found


def _callee_end(body: str, paren: int) -> int:
    """Where the callee ends when the `(` at `paren` calls something (follows a name, `)`
    or `]`) rather than groups; -1 when it groups. The whitespace looked through belongs to
    this parenthesis alone."""
    index = paren - 1
    while index >= 0 and body[index].isspace():
        index -= 1
    return index if index >= 0 and (body[index].isalnum() or body[index] in "_)]") else -1


def _is_var(body: str, end: int) -> bool:
    """Whether the callee ending at `end` is `var` (not `x.var`, not `myvar`)."""
    return body.startswith("var", end - 2) and (end < 3 or not _WORDLIKE.match(body[end - 3]))


class _Arguments:
    """The literal arguments of a call; `var()` answered by the planning's vars."""

    def __init__(self, lookup: VarLookup) -> None:
        self.lookup = lookup

    def of(self, source: str) -> tuple[list[Any], dict[str, Any]]:
        plain = _STRING_ARGUMENTS.match(source)
        if plain is not None:  # the common `'a'` / `'a', 'b'` case, without the Python parser
            return [value for value in plain.group(2, 4) if value is not None], {}
        if _STRING_KEYWORDS.fullmatch(source):  # `materialized='table'`, likewise
            return [], {key: value[1:-1] for key, value in _STRING_KEYWORD.findall(source)}
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(f"_({source})", mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            raise _Dynamic from err
        call = tree.body
        if not isinstance(call, ast.Call) or any(isinstance(a, ast.Starred) for a in call.args):
            raise _Dynamic
        args = [self.literal(arg) for arg in call.args]
        kwargs: dict[str, Any] = {}
        for keyword in call.keywords:
            value = self.literal(keyword.value)
            if keyword.arg is not None:
                kwargs[keyword.arg] = value
            elif isinstance(value, dict):  # config(**{'materialized': 'table'})
                kwargs.update({str(key): item for key, item in value.items()})
            else:
                raise _Dynamic
        return args, kwargs

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id.lower() in _JINJA_CONSTANTS:
            return _JINJA_CONSTANTS[node.id.lower()]
        if isinstance(node, ast.List | ast.Tuple):
            return [self.literal(item) for item in node.elts]
        if isinstance(node, ast.Dict):
            return {
                self.literal(key): self.literal(value)
                for key, value in zip(node.keys, node.values, strict=True)
                if key is not None
            }
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "var":
            return self._var(node)
        raise _Dynamic

    def condition(self, text: str) -> bool | None:
        """The truth of an `{% if %}` condition that is one `var()`, or None."""
        if not text.startswith("var"):
            return None
        try:
            node = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "var"
        ):
            return None
        try:
            return bool(self._var(node))
        except _MissingVar:
            return False  # dbt's parse answers None
        except (_Dynamic, _UnknownVar):
            return None

    def _var(self, node: ast.Call) -> Any:
        args = [self.literal(arg) for arg in node.args]
        defaults = [self.literal(kw.value) for kw in node.keywords if kw.arg == "default"]
        if len(defaults) != len(node.keywords) or not 1 <= len(args) + len(defaults) <= 2:
            raise _Dynamic
        if not args or not isinstance(args[0], str):
            raise _Dynamic
        default = (args[1:] or defaults or [MISSING])[0]
        value = self.lookup(args[0], default)
        if value is UNKNOWN:
            raise _UnknownVar(args[0])
        if value is MISSING:
            raise _MissingVar(args[0])
        return value

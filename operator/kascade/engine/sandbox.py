"""Bounded Jinja rendering: a sandbox that also stops templates that would run, grow or
print without end.

Jinja's own sandbox keeps a template away from Python internals, but a model or a template
of a flow can still loop for hours (nested loops over range()), build a gigabyte string
(`'x' * 10**9`, `s ~ s` in a loop) or print one. Here every render has

- a step budget: lines of compiled template code and Python calls made while rendering,
  counted by a trace function installed on this thread only while the template runs;
- size checks on everything that can make a value much larger than its inputs: the
  operators `*`, `**`, `%`, `+` and `~`, string methods and filters that pad, repeat,
  replace or join, and the buffers of macros and `{% set %}` blocks;
- an output limit.

A template over a limit raises RenderLimitError, a jinja2.TemplateError whose message says
which limit it hit.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from types import FrameType
from typing import Any

import jinja2
import jinja2.runtime
import jinja2.sandbox
import jinja2.utils
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst

MAX_STEPS = 1_000_000
"""Trace events (template lines and Python calls) one render may take."""
MAX_VALUE = 1_000_000
"""Characters of a string, items of a list, that one operation may produce."""
MAX_OUTPUT = 10_000_000
"""Characters a whole render, a macro or a `{% set %}` block may produce."""
MAX_INT_BITS = 100_000
"""Bits of an integer an operation may produce (about 30,000 decimal digits)."""
DBT_EXTENSIONS = ("jinja2.ext.do", "jinja2.ext.loopcontrols")
"""The Jinja extensions dbt enables, so that models parse as they do in dbt."""

_TEMPLATE_FILE = "<template>"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")
_DIGITS = re.compile(r"\d+")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_GROWING_METHODS = frozenset({"append", "extend", "insert", "update", "setdefault", "add"})
_STRINGIFYING_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
    }
)


class RenderLimitError(jinja2.exceptions.SecurityError):
    """A template that would take too many steps, or make too large a value or output."""


class _OutOfSteps(BaseException):
    """Raised by the trace function. A BaseException, so that no `except Exception` in the
    code a template calls can swallow it (a trace function that raises is switched off)."""


def _refuse(what: str) -> RenderLimitError:
    return RenderLimitError(f"rendering stopped: {what}")


def _too_large(operation: str, limit: int = MAX_VALUE) -> RenderLimitError:
    return _refuse(f"{operation} would make a value of more than {limit:,} characters or items")


def printed_size(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters str(value) has, counted no further than just past `limit`
    (so a list holding one big string a million times costs little to measure)."""
    total = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= limit:
                pending.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
    return total


def check_value(value: Any, operation: str) -> Any:
    """`value` if its length (or an integer's size) is within the limits."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        if len(value) > MAX_VALUE:
            raise _too_large(operation)
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _refuse(f"{operation} would make an integer of more than {MAX_INT_BITS:,} bits")
    return value


def _sequence_length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before it is computed, an operation whose result would be too large."""
    integers = isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        if integers and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _refuse(f"`*` would make an integer of more than {MAX_INT_BITS:,} bits")
        for sequence, times in ((left, right), (right, left)):
            length = _sequence_length(sequence)
            if length is not None and isinstance(times, int) and length * times > MAX_VALUE:
                raise _too_large("`*`")
    elif operator == "**":
        if integers and right > 0 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _refuse(f"`**` would make an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "+":
        lengths = (_sequence_length(left), _sequence_length(right))
        if None not in lengths and sum(n or 0 for n in lengths) > MAX_VALUE:
            raise _too_large("`+`")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right, "`%`")


def _check_printf(text: str, arguments: Any, operation: str) -> None:
    """Refuse a printf-style format whose widths or precisions would pad beyond the limit."""
    values = arguments if isinstance(arguments, tuple) else (arguments,)
    for spec in _PRINTF.finditer(text):
        for number in spec.groups():
            if number == "*":
                if any(isinstance(v, int) and abs(v) > MAX_VALUE for v in values):
                    raise _too_large(operation)
            elif number is not None and (len(number) > 7 or int(number) > MAX_VALUE):
                raise _too_large(operation)
    if printed_size(text, MAX_VALUE) + printed_size(values, MAX_VALUE) > MAX_VALUE:
        raise _too_large(operation)


def _check_str_format(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for field in _FORMAT_FIELD.finditer(text):
        for number in _DIGITS.findall(field.group(1).partition(":")[2]):
            if len(number) > 7 or int(number) > MAX_VALUE:
                raise _too_large("format()")
    if _NESTED_FIELD.search(text):
        numbers = [*args, *kwargs.values()]
        if any(isinstance(v, int) and abs(v) > MAX_VALUE for v in numbers):
            raise _too_large("format()")


def _replaced_size(text: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _joined_size(separator: str, items: list[Any]) -> int:
    return printed_size(items, MAX_VALUE) + len(separator) * max(len(items) - 1, 0)


def _argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _check_str_method(
    text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse a string method call whose result would be too large; `join` gets its items
    as a list (a generator is read once here, so the list is what the call receives)."""
    operation = f"str.{name}()"
    if name in _PADDING_METHODS:
        width = _argument(args, kwargs, 0, "width")
        if isinstance(width, int) and width > MAX_VALUE:
            raise _too_large(operation)
    elif name == "expandtabs":
        size = _argument(args, kwargs, 0, "tabsize")
        tabsize = size if isinstance(size, int) else 8
        if len(text) + text.count("\t") * tabsize > MAX_VALUE:
            raise _too_large(operation)
    elif name == "replace":
        old, new = _argument(args, kwargs, 0, "old"), _argument(args, kwargs, 1, "new")
        if _replaced_size(text, old, new, _argument(args, kwargs, 2, "count")) > MAX_VALUE:
            raise _too_large(operation)
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], list) else list(args[0])
        if _joined_size(text, items) > MAX_VALUE:
            raise _too_large(operation)
        return (items, *args[1:])
    elif name in ("format", "format_map"):
        _check_str_format(text, args, kwargs)
    return args


def _filter_check(name: str) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]:
    """The check run before the filter `name`: refuses what would be too large, and
    returns the arguments (`join` receives its items as a list)."""

    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        value = args[0] if args else None
        if name in _STRINGIFYING_FILTERS and printed_size(value) > MAX_OUTPUT:
            raise _too_large(f"the filter `{name}`", MAX_OUTPUT)
        text = value if isinstance(value, str) else ""
        if name == "center":
            width = _argument(args, kwargs, 1, "width")
            if isinstance(width, int) and width > MAX_VALUE:
                raise _too_large("the filter `center`")
        elif name == "indent":
            width = _argument(args, kwargs, 1, "width")
            step = width if isinstance(width, int) else len(str(width or ""))
            if len(text) + (text.count("\n") + 1) * step > MAX_VALUE:
                raise _too_large("the filter `indent`")
        elif name == "wordwrap":
            width = _argument(args, kwargs, 1, "width")
            wrap = _argument(args, kwargs, 3, "wrapstring")
            lines = len(text) // max(width if isinstance(width, int) else 79, 1) + 1
            if len(text) + lines * len(str(wrap or "\n")) > MAX_VALUE:
                raise _too_large("the filter `wordwrap`")
        elif name == "replace":
            old, new = _argument(args, kwargs, 1, "old"), _argument(args, kwargs, 2, "new")
            if _replaced_size(text, old, new, _argument(args, kwargs, 3, "count")) > MAX_VALUE:
                raise _too_large("the filter `replace`")
        elif name == "format":
            _check_printf(text, args[1:] or tuple(kwargs.values()), "the filter `format`")
        elif name == "join" and args:
            items = value if isinstance(value, list) else list(args[0])
            separator = _argument(args, kwargs, 1, "d")
            if _joined_size(str(separator or ""), items) > MAX_VALUE:
                raise _too_large("the filter `join`")
            return (items, *args[1:])
        elif name == "tojson":
            indent = _argument(args, kwargs, 1, "indent")
            if isinstance(indent, int) and indent > 64:
                raise _refuse("the filter `tojson` takes an indent of at most 64")
        return args

    return check


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    check = _filter_check(name)
    passes_first = getattr(function, "jinja_pass_arg", None) is not None

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        head, rest = (args[:1], args[1:]) if passes_first else ((), args)
        result = function(*head, *check(rest, kwargs), **kwargs)
        return check_value(result, f"the filter `{name}`")

    return bounded


def _bounded_lipsum(function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def bounded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if n * max > 100_000:
            raise _refuse("lipsum() takes at most 100,000 words (n * max)")
        return function(n, html, min, max)

    return bounded


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles `a ~ b` so that the parts are measured before they are joined."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.concatenation_parts((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")


class BoundedEnvironment(jinja2.sandbox.SandboxedEnvironment):
    """A sandboxed environment whose operators, calls, filters and buffers are size-checked;
    render with render_bounded() to also get the step budget and the output limit."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        if "lipsum" in self.globals:
            self.globals["lipsum"] = _bounded_lipsum(jinja2.utils.generate_lorem_ipsum)

    def concat(self, parts: Iterable[str]) -> str:
        """Join a buffer (a macro's or a `{% set %}` block's output, or the whole output)
        with the output limit applied while it is read."""
        pieces: list[str] = []
        total = 0
        for piece in parts:
            total += len(piece)
            if total > MAX_OUTPUT:
                raise _refuse(f"the output is longer than {MAX_OUTPUT:,} characters")
            pieces.append(piece)
        return "".join(pieces)

    def concatenation_parts(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        """The operands of `~`, once their printed length is known to be within the limit."""
        if printed_size(parts, MAX_VALUE) > MAX_VALUE:
            raise _too_large("`~`")
        return parts

    def _finalize(self, value: Any) -> Any:
        """Every `{{ ... }}` value before it is printed."""
        if not isinstance(value, str) and printed_size(value) > MAX_OUTPUT:
            raise _refuse(f"a value prints as more than {MAX_OUTPUT:,} characters")
        return value

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _check_binop(operator, left, right)
        return check_value(super().call_binop(context, operator, left, right), f"`{operator}`")

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        inner = getattr(obj, "__wrapped__", obj)
        receiver = getattr(inner, "__self__", None)
        name = getattr(inner, "__name__", "")
        if isinstance(receiver, str):
            args = _check_str_method(receiver, name, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if name in _GROWING_METHODS and isinstance(receiver, list | dict | set):
            check_value(receiver, f"{type(receiver).__name__}.{name}()")
        return check_value(result, f"{name or 'a call'}()")


class _StepBudget:
    """A trace function counting template lines and Python calls, stopping at the limit."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.left = steps

    def on_call(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.left -= 1
        if self.left < 0:
            raise _OutOfSteps
        return self.on_line if frame.f_code.co_filename == _TEMPLATE_FILE else None

    def on_line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.left -= 1
            if self.left < 0:
                raise _OutOfSteps
        return self.on_line


def render_bounded(
    template: jinja2.Template, context: Mapping[str, Any], *, steps: int = MAX_STEPS
) -> str:
    """Render with the step budget and the output limit; RenderLimitError past either."""
    budget = _StepBudget(steps)
    previous = sys.gettrace()
    sys.settrace(budget.on_call)
    try:
        pieces: list[str] = []
        total = 0
        for piece in template.generate(dict(context)):
            total += len(piece)
            if total > MAX_OUTPUT:
                raise _refuse(f"the output is longer than {MAX_OUTPUT:,} characters")
            pieces.append(piece)
    except _OutOfSteps:
        raise RenderLimitError(
            f"rendering stopped after {budget.steps:,} steps (a loop that never ends?)"
        ) from None
    except RecursionError:
        raise RenderLimitError("rendering stopped: macros call each other too deeply") from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)

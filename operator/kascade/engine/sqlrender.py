"""Rendering a model for its calls, when the static pass of engine.sqlscan finds a call whose
arguments are computed (a loop variable, a `{% set %}`): the model is rendered with Jinja
(dbt's `do` and `loopcontrols` extensions enabled, within the limits of engine.sandbox),
with stand-ins that record ref(), source() and config(), and `var()` answered from the
planning's vars. Anything else of dbt's context (macros, `adapter`, `target`) renders as
nothing.

What rendering cannot tell is reported as Computed, never guessed: a ref() of a value a
macro or dbt's context makes, a var only known when the run starts, a render that fails.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import jinja2

from kascade.engine.dbtvars import MISSING, UNKNOWN, missing_var_message
from kascade.engine.sandbox import (
    DBT_EXTENSIONS,
    BoundedEnvironment,
    RenderLimitError,
    render_bounded,
)
from kascade.engine.sqlcalls import Computed, Finding, Scan, record_call

VarLookup = Callable[[str, Any], Any]
"""(name, default or MISSING) -> the value, UNKNOWN or MISSING."""


def parse_time_var(name: str, default: Any = MISSING) -> Any:
    """dbt's parse-time var() without any vars: the default, else None."""
    return None if default is MISSING else default


_DECIDED: ContextVar[list[bool] | None] = ContextVar("decided_on_unknown", default=None)
"""Set while a model renders: marked when a branch or loop depends on an _Anything."""


def _decided() -> None:
    marks = _DECIDED.get()
    if marks is not None:
        marks.append(True)


class _Anything(jinja2.ChainableUndefined):
    """Stands in for the rest of dbt's context (macros, adapter, target): it can be read,
    called and iterated, and renders as nothing, so rendering reaches every call. A branch
    or loop that depends on it is marked: rendering could not choose as dbt would."""

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:  # type: ignore[override]
        return self

    def __bool__(self) -> bool:
        _decided()
        return False

    def __iter__(self) -> Iterator[Any]:
        _decided()
        return iter(())

    def __len__(self) -> int:
        _decided()
        return 0

    def __eq__(self, other: object) -> bool:
        _decided()
        return type(self) is type(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __contains__(self, item: object) -> bool:
        _decided()
        return False

    __hash__ = jinja2.ChainableUndefined.__hash__


class _Recorder:
    """Jinja globals standing in for dbt's context while a model is rendered for its calls."""

    def __init__(self, scan: Scan, text: str, lookup: VarLookup, lines: Mapping[str, int]) -> None:
        self.scan = scan
        self.text = text
        self.lookup = lookup
        self.lines = lines
        self.unknown: list[str] = []
        self.missing: list[str] = []
        self._quoted: dict[str, dict[str, int]] = {}
        self._newlines: list[int] | None = None

    def context(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source,
            "config": self.config,
            "var": self.var,
            "env_var": lambda name, default="": default,
            "is_incremental": lambda: False,  # dbt's parse: never incremental
            "execute": False,  # dbt's parse does not execute
        }

    def var(self, name: Any, default: Any = MISSING) -> Any:
        value = self.lookup(str(name), default)
        if value is UNKNOWN:
            self.unknown.append(str(name))
            return _Anything()
        if value is MISSING:
            self.missing.append(str(name))
            return None  # as dbt's parse does
        return value

    def _line_of(self, name: str, args: tuple[Any, ...]) -> int:
        """Best guess at the line of a rendered call: where its last argument is written
        between quotes (found through an index of quoted texts, built once), else the
        first call of that name the static pass could not read."""
        value = str(args[-1]) if args and isinstance(args[-1], str) else None
        for quote in ("'", '"'):
            if value is None or quote in value:
                continue
            position = self._quoted_at(quote).get(value, -1)
            if position >= 0:
                if self._newlines is None:
                    self._newlines = [m.start() for m in re.finditer("\n", self.text)]
                return bisect.bisect_left(self._newlines, position) + 1
        return self.lines.get(name, 0)

    def _quoted_at(self, quote: str) -> dict[str, int]:
        """Where each text between two successive `quote` characters first occurs."""
        if quote not in self._quoted:
            marks = [m.start() for m in re.finditer(quote, self.text)]
            index: dict[str, int] = {}
            for first, second in itertools.pairwise(marks):
                index.setdefault(self.text[first + 1 : second], first)
            self._quoted[quote] = index
        return self._quoted[quote]

    def _computed_arguments(self, name: str, args: tuple[Any, ...], line: int) -> bool:
        """Report a call whose arguments rendering could not make strings; True if so."""
        if all(isinstance(arg, str) for arg in args):
            return False
        if self.missing:
            self.scan.errors.append(Finding(line, missing_var_message(self.missing[-1])))
        else:
            what = "refs" if name == "ref" else "sources"
            self.scan.computed.append(
                Computed(line, f"{name}() of a value a macro or dbt's context makes", what)
            )
        return True

    def ref(self, *args: Any, **kwargs: Any) -> str:
        line = self._line_of("ref", args)
        if not self._computed_arguments("ref", args, line):
            record_call(self.scan, "ref", list(args), {}, line)
        return str(args[-1]) if args else ""

    def source(self, *args: Any, **kwargs: Any) -> str:
        line = self._line_of("source", args)
        if not self._computed_arguments("source", args, line):
            record_call(self.scan, "source", list(args), {}, line)
        return ".".join(str(a) for a in args)

    def config(self, *args: Any, **kwargs: Any) -> str:
        record_call(self.scan, "config", list(args), dict(kwargs), self.lines.get("config", 0))
        return ""


MODEL_ENVIRONMENT = BoundedEnvironment(undefined=_Anything, extensions=list(DBT_EXTENSIONS))
"""Where models are parsed and rendered for their calls: dbt's Jinja extensions, the
_Anything stand-in for the rest of dbt's context, and the limits of engine.sandbox."""


def compile_model(text: str) -> jinja2.Template:
    """A model's Jinja, compiled; jinja2.TemplateSyntaxError (with its line) when it does
    not parse, another exception (RecursionError, ...) when it cannot be compiled."""
    return MODEL_ENVIRONMENT.from_string(text)


def record_calls(
    template: jinja2.Template,
    text: str,
    lookup: VarLookup = parse_time_var,
    lines: Mapping[str, int] | None = None,
) -> Scan:
    """Render a compiled model with stand-ins that record its ref(), source() and config()
    calls. A render that fails or goes over a limit, or that reads a var only a run knows,
    leaves the model's calls computed."""
    scan = Scan()
    lines = lines or {}
    recorder = _Recorder(scan, text, lookup, lines)
    first = min(lines.values(), default=0)
    marks: list[bool] = []
    token = _DECIDED.set(marks)
    try:
        render_bounded(template, recorder.context())
    except RenderLimitError as err:
        scan.render_failures.append(Finding(0, str(err)))
    except Exception as err:  # a model's own Jinja can raise anything; report it, do not crash
        failure = f"cannot render the model to find its refs: {err}"
        scan.render_failures.append(Finding(0, failure))
    finally:
        _DECIDED.reset(token)
    scan.uncertain = bool(marks)
    scan.computed += [Computed(first, failure.message) for failure in scan.render_failures]
    if recorder.unknown:
        name = recorder.unknown[0]
        scan.computed.append(Computed(first, f"var `{name}` is only known when the run starts"))
    scan.errors = list(dict.fromkeys(scan.errors))  # a bad call in a loop, reported once
    scan.computed = list(dict.fromkeys(scan.computed))
    return scan


def render_calls(text: str, lookup: VarLookup, lines: Mapping[str, int]) -> Scan:
    """The calls of a model found by rendering it; `lines`: the line of the first call of
    each name the static pass could not read."""
    try:
        template = compile_model(text)
    except jinja2.TemplateSyntaxError as err:
        return Scan(errors=[Finding(err.lineno, f"Jinja syntax error: {err.message}")])
    except RecursionError:
        return Scan(errors=[Finding(0, "the model's Jinja is nested too deeply to parse")])
    except Exception as err:  # the compiled Python can fail too (too many nested brackets)
        return Scan(errors=[Finding(0, f"cannot parse the model's Jinja: {err}")])
    return record_calls(template, text, lookup, lines)

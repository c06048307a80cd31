"""Typed Flow parameters: values given to a run are checked and converted, defaults
(which may be templates such as {{ run.scheduledDate }}) filled in."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from kascade.api import Parameter, ParameterType
from kascade.engine.errors import KascadeError
from kascade.engine.templating import TemplateError, render

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ParameterError(KascadeError):
    """Parameters of a run that do not validate; every problem names its parameter."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def resolve_parameters(
    declared: Sequence[Parameter], given: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    """The typed value of every declared parameter, or ParameterError naming each bad one."""
    problems: list[str] = []
    known = {parameter.name for parameter in declared}
    for name in given:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(f"parameter `{name}` is not declared by the flow (declared: {listed})")
    values: dict[str, Any] = {}
    for parameter in declared:
        try:
            values[parameter.name] = _value(parameter, given, run)
        except ValueError as err:
            problems.append(f"parameter `{parameter.name}`: {err}")
    if problems:
        raise ParameterError(problems)
    return values


def _value(parameter: Parameter, given: Mapping[str, Any], run: Mapping[str, Any]) -> Any:
    if parameter.name in given:
        return convert(parameter.type, given[parameter.name])
    if parameter.default is None:
        raise ValueError("required, and the flow gives no default")
    default = parameter.default
    if isinstance(default, str):
        try:
            default = render(default, {"run": dict(run)})
        except TemplateError as err:
            raise ValueError(f"default: {err}") from err
    return convert(parameter.type, default)


INTEGER_MAX = 2**53 - 1
"""The largest integer parameter: what a JSON number (a float64) holds exactly."""


def convert(kind: ParameterType, raw: Any) -> Any:
    """A value as the declared type; strings (from --param K=V) are parsed.

    A string never holds a NUL byte (no process argument or environment value can), and a
    number is finite (nan and inf have no JSON form and break any arithmetic on them).
    """
    if isinstance(raw, str) and "\x00" in raw:
        raise ValueError("the value holds a NUL byte")
    if kind == ParameterType.STRING:
        if isinstance(raw, dict | list):
            raise ValueError(f"expected a string, got {type(raw).__name__}")
        return raw if isinstance(raw, str) else _text(raw)
    if kind == ParameterType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"expected a boolean (true/false), got {_shown(raw)}")
    if kind == ParameterType.INTEGER:
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str):
            with contextlib.suppress(ValueError):  # not a number, or too many digits
                value = int(raw.strip())
        if value is None:
            raise ValueError(f"expected an integer, got {_shown(raw)}")
        if abs(value) > INTEGER_MAX:
            raise ValueError(
                f"expected an integer from -{INTEGER_MAX} to {INTEGER_MAX} (beyond that JSON, "
                f"and so the Kubernetes API, loses digits), got {_shown(raw)}"
            )
        return value
    number: int | float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            number = float(raw.strip())
    if number is None:
        raise ValueError(f"expected a number, got {_shown(raw)}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_shown(raw)}")
    return number


def _shown(raw: Any) -> str:
    """A value as an error shows it: its repr, cut short when long."""
    text = repr(raw)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """`--param K=V` pairs as a mapping; a pair without `=` is an error naming it."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError([f"--param `{pair}` must look like NAME=VALUE"])
        values[name.strip()] = value
    return values

"""Macros that call ref() or source() themselves, directly or through other macros of the
project or its packages. A model calling one has refs only dbt's parse can tell (it renders
the macro), so the planner must not take the model's literal refs for all of them.

Only macro definitions are read (`{% macro name(...) %} ... {% endmacro %}`), with a regular
expression, in time linear in their size; nothing is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DEFINITION = re.compile(
    r"\{%-?\s*macro\s+([A-Za-z_]\w*)\s*\((.*?)\{%-?\s*endmacro\s*-?%\}", re.DOTALL
)
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_CALLS = re.compile(r"(?<![\w.])(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)\s*\(")
_REFERS = frozenset({"ref", "source"})
_OVERRIDES = frozenset({"ref", "source", "config", "var"})
"""Macros overriding dbt's own functions call the builtins; they are not counted."""


_DEFINED = re.compile(r"\{%-?\s*(macro|test)\s+([A-Za-z_]\w*)\s*\(")


def macro_names(texts: Iterable[str]) -> frozenset[str]:
    """The macros macro files define: `{% macro name(...) %}`, and `test_name` for a
    generic test's `{% test name(...) %}` (dbt makes it a macro of that name)."""
    names: set[str] = set()
    for text in texts:
        for kind, name in _DEFINED.findall(_COMMENT.sub("", text)):
            names.add(name if kind == "macro" else f"test_{name}")
    return frozenset(names)


def macros_calling_refs(texts: Iterable[str]) -> frozenset[str]:
    """The names of macros that call ref() or source(), directly or through each other."""
    calls: dict[str, set[str]] = {}
    for text in texts:
        if "macro" not in text:
            continue
        for definition in _DEFINITION.finditer(_COMMENT.sub("", text)):
            name = definition[1]
            if name in _OVERRIDES:
                continue
            calls.setdefault(name, set()).update(m[1] for m in _CALLS.finditer(definition[2]))
    found = {name for name, called in calls.items() if not called.isdisjoint(_REFERS)}
    changed = bool(found)
    while changed:
        grown = {name for name, called in calls.items() if not called.isdisjoint(found)}
        changed = not grown <= found
        found |= grown
    return frozenset(found)


def macro_call_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching a call of one of the macros (`name(` or `package.name(`), or None
    when there is none."""
    ordered = sorted(set(names), key=lambda name: (-len(name), name))
    if not ordered:
        return None
    alternatives = "|".join(re.escape(name) for name in ordered)
    return re.compile(rf"(?<![\w.])(?:[A-Za-z_]\w*\.)?(?:{alternatives})\s*\(")

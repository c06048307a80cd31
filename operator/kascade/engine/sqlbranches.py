"""Which parts of a model dbt's parse renders, decided without rendering where the conditions
are plain: at parse `execute` and `is_incremental()` are false, and a `var()` has the value
the planning knows. Under an `{% if %}` branch known to be skipped a call is no dependency;
under one known to be taken it always is; anywhere else (a condition on `target`, a loop, a
macro) only rendering can tell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_WORD = re.compile(r"[-+]?\s*([a-z_]+)\b(.*?)[-+]?\s*$", re.DOTALL)
_OPENING = frozenset({"if", "for", "macro", "call", "filter"})
_CLOSING = frozenset({"endif", "endfor", "endmacro", "endcall", "endfilter"})
_NEGATION = re.compile(r"^not\s+")
_FALSE_AT_PARSE = re.compile(r"^(?:execute|is_incremental\s*\(\s*\))$")

Condition = Callable[[str], bool | None]
"""The truth of a condition at parse, or None when only rendering can tell."""


@dataclass
class _Frame:
    opening: str
    state: bool | None
    """Whether the current branch is rendered (None: cannot tell)."""
    taken: bool | None
    """Whether an earlier branch of this `if` was rendered."""


class Branches:
    """The control blocks around a position of a model's Jinja, tag by tag."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        self.frames: list[_Frame] = []

    @property
    def state(self) -> bool | None:
        """Whether dbt's parse renders the current position (None: cannot tell)."""
        if not self.frames:
            return True
        states = [frame.state for frame in self.frames]
        if False in states:
            return False
        return True if all(states) else None

    def opens_branch(self, body: str) -> bool:
        """Whether a tag starts a branch of an `if` (its calls belong to no decided part)."""
        word = _WORD.match(body)
        return word is not None and word[1] in ("elif", "else")

    def tag(self, body: str) -> None:
        """Follow one `{% ... %}` tag."""
        word = _WORD.match(body)
        if word is None:
            return
        name, rest = word[1], word[2].strip()
        if name == "if":
            state = self._decided(rest)
            self.frames.append(_Frame("if", state, state))
        elif name in _OPENING:
            self.frames.append(_Frame(name, None, None))
        elif name in _CLOSING:
            if self.frames:
                self.frames.pop()
        elif name in ("elif", "else") and self.frames:
            self._branch(self.frames[-1], name, rest)

    def _branch(self, frame: _Frame, name: str, condition: str) -> None:
        if frame.opening != "if":
            frame.state = None  # a loop's `else`
            return
        if frame.taken is True:
            frame.state = False
            return
        state = True if name == "else" else self._decided(condition)
        if frame.taken is None:
            frame.state = False if state is False else None
            frame.taken = True if state is True else None
        else:
            frame.state = frame.taken = state

    def _decided(self, condition: str) -> bool | None:
        text, negated = condition, False
        while (negation := _NEGATION.match(text)) is not None:
            text, negated = text[negation.end() :].strip(), not negated
        value = False if _FALSE_AT_PARSE.match(text) else self.condition(text)
        return None if value is None else value != negated

"""Errors the engine raises; every message names the field, file, model or node at fault."""

from __future__ import annotations

from collections.abc import Iterable


class KascadeError(Exception):
    """Base of every error kascade reports to a user (the CLI prints it; no traceback)."""


class ManifestError(KascadeError):
    """A Flow or Run manifest that does not validate."""


class SelectorError(KascadeError):
    """A selector string that does not parse."""


class TransitionError(KascadeError):
    """An illegal state transition: a bug in kascade, never a user condition."""


class PlanError(KascadeError):
    """A flow and project that cannot be planned; carries every problem found, not just one."""

    def __init__(self, problems: Iterable[str], warnings: Iterable[str] = ()) -> None:
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(f"{heading}:\n" + "\n".join(f"  - {p}" for p in self.problems))

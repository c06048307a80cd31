"""What the installed dbt offers every resource's Jinja, for `kascade lint`: the members of
dbt's context and the macros of dbt's own packages (its global project and each installed
adapter's), read from the installed dbt-core and adapters."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from kascade.engine.jinjanames import DbtNames
from kascade.engine.macros import macro_names

# Set by dbt's context itself, beside its members (dbt/context/base.py: to_dict).
_CONTEXT_EXTRAS = frozenset({"context", "builtins"})


def installed_dbt_names() -> DbtNames | None:
    """dbt's context and own macros; None when the installed dbt does not tell them the
    way this code reads them (lint then leaves macro names unchecked rather than guess)."""
    try:
        context = _context_members()
    except (ImportError, AttributeError, TypeError):
        return None
    return DbtNames(context=context | _CONTEXT_EXTRAS, packages=_internal_packages())


def _context_members() -> frozenset[str]:
    import dbt.context.providers  # noqa: F401  (defines the contexts a resource renders in)
    from dbt.context.base import BaseContext

    members: set[str] = set()
    pending: list[type] = [BaseContext]
    while pending:
        cls = pending.pop()
        members.update(getattr(cls, "_context_members_", {}))
        pending.extend(cls.__subclasses__())
    if not {"ref", "source", "config", "var"} <= members:
        raise TypeError("dbt's context members are not where they were")
    return frozenset(members)


def _internal_packages() -> dict[str, frozenset[str]]:
    """dbt's own packages (dbt/include/*: the global project, each adapter) by their dbt
    project name, with the macros each defines."""
    import dbt.include

    packages: dict[str, frozenset[str]] = {}
    for folder in dbt.include.__path__:
        for entry in sorted(Path(folder).iterdir()):
            project = entry / "dbt_project.yml"
            if not project.is_file():
                continue
            try:
                settings = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue
            name = settings.get("name") if isinstance(settings, dict) else None
            if isinstance(name, str):
                packages[name] = macro_names(_texts(entry))
    return packages


def _texts(folder: Path) -> list[str]:
    texts: list[str] = []
    for directory, _, files in os.walk(folder):
        for file in sorted(files):
            if file.endswith(".sql"):
                try:
                    texts.append(Path(directory, file).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    continue
    return texts

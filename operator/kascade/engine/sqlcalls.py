"""What a model's SQL declares: its ref(), source() and config() calls, read by
engine.sqlscan (statically) or engine.sqlrender (by rendering), recorded here with dbt's
rules for their arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A ref() call: the model it names, the package if given, and its line."""

    name: str
    package: str | None
    line: int


@dataclass(frozen=True)
class Source:
    """A source() call: an external relation `source.table`."""

    source: str
    table: str
    line: int


@dataclass(frozen=True)
class Finding:
    """A problem of a scan, or a call it could not resolve, at a line (0: unknown)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Computed(Finding):
    """A call whose arguments only dbt's parse can tell: `what` is refs, sources or config."""

    what: str = "refs"


@dataclass
class Scan:
    """What a model's SQL declares."""

    refs: list[Ref] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    config_tags: list[str] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    computed: list[Computed] = field(default_factory=list)
    render_failures: list[Finding] = field(default_factory=list)
    """Why rendering the model for its calls failed (its calls are computed then)."""
    uncertain: bool = False
    """Rendering chose a branch or looped on a value only dbt's context knows."""


CONFIG_FORMS = "config(materialized='table') or config({'materialized': 'table'})"


def record_call(scan: Scan, name: str, args: list[Any], kwargs: dict[str, Any], line: int) -> None:
    """Record one call with literal arguments, or the error dbt would raise for it."""
    if name == "ref":
        if len(args) not in (1, 2) or not all(isinstance(a, str) for a in args):
            scan.errors.append(Finding(line, "ref() takes a model name and an optional package"))
            return
        package, model = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        scan.refs.append(Ref(name=model, package=package, line=line))
    elif name == "source":
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            scan.errors.append(Finding(line, "source() takes a source name and a table name"))
            return
        scan.sources.append(Source(source=args[0], table=args[1], line=line))
    else:
        _record_config(scan, args, kwargs, line)


def _record_config(scan: Scan, args: list[Any], kwargs: dict[str, Any], line: int) -> None:
    """dbt's rule: one mapping, or keyword arguments, never both and never neither."""
    if len(args) == 1 and not kwargs and isinstance(args[0], dict):
        options = dict(args[0])
    elif not args and kwargs:
        options = dict(kwargs)
    elif not args and not kwargs:
        scan.errors.append(Finding(line, f"config() is empty: write {CONFIG_FORMS}"))
        return
    else:
        if len(args) == 1 and isinstance(args[0], dict):
            wrong = "not both"
        elif len(args) == 1:
            wrong = f"not a {type(args[0]).__name__}"
        else:
            wrong = f"not {len(args)} positional arguments"
        scan.errors.append(
            Finding(
                line, f"config() takes keyword arguments or one mapping, {wrong}: {CONFIG_FORMS}"
            )
        )
        return
    for old, new in (("pre_hook", "pre-hook"), ("post_hook", "post-hook")):
        if old in options:
            options[new] = options.pop(old)
    tags = options.pop("tags", None)
    if tags is not None:
        scan.config_tags.extend(_as_tags(tags))
    scan.config.update({str(key): value for key, value in options.items()})


def _as_tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]

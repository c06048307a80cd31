"""Templates in args, env values and parameter defaults: {{ params.x }}, {{ run.name }},
{{ tasks.<id>.outputs.<key> }}. Rendered in a sandbox with the limits of engine.sandbox
(steps, sizes, output); anything undefined is an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2

from kascade.engine.errors import KascadeError
from kascade.engine.sandbox import BoundedEnvironment, render_bounded


class TemplateError(KascadeError):
    """A template that does not parse or refers to something undefined."""


_ENVIRONMENT = BoundedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


_SHOWN = 200
"""Characters of a template shown in an error."""


@lru_cache(maxsize=4096)
def _compile(text: str) -> jinja2.Template:
    return _ENVIRONMENT.from_string(text)


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render one template string; plain strings are returned as they are."""
    if "{{" not in text and "{%" not in text:
        return text
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    try:
        template = _compile(text)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(f"template `{shown}` does not parse: {err.message}") from err
    except Exception as err:  # nested too deeply, or compiled code Python refuses
        raise TemplateError(f"template `{shown}` does not parse: {_reason(err)}") from err
    try:
        return render_bounded(template, context)
    except jinja2.UndefinedError as err:
        raise TemplateError(f"template `{shown}`: {err.message}") from err
    except jinja2.TemplateError as err:  # sandbox violations, limits and the like
        raise TemplateError(f"template `{shown}`: {err}") from err
    except Exception as err:  # {{ 1 / 0 }}, {{ 'a' + 1 }}: the template's own mistakes
        raise TemplateError(f"template `{shown}`: {_reason(err)}") from err


def _reason(err: Exception) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return f"{type(err).__name__}: {err}"


def render_list(texts: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """Render every string of a list (script args)."""
    return [render(text, context) for text in texts]


def run_context(
    *, name: str, flow: str, run_type: str, scheduled_time: datetime | None, created: datetime
) -> dict[str, Any]:
    """The `run` object of templates: name, flow, type, scheduledTime and scheduledDate.

    A run without a schedule (manual, rerun) takes its creation time as scheduled time,
    so `{{ run.scheduledDate }}` means "the day the run is for" in every case.
    """
    when = scheduled_time or created
    return {
        "name": name,
        "flow": flow,
        "type": run_type,
        "scheduledTime": when.isoformat(),
        "scheduledDate": when.date().isoformat(),
    }


def template_context(
    run: Mapping[str, Any],
    params: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole template context: run, params and the outputs of finished tasks."""
    return {
        "run": dict(run),
        "params": dict(params),
        "tasks": {task: {"outputs": dict(values)} for task, values in (outputs or {}).items()},
    }

"""What `kascade lint` checks beyond planning: the Jinja of every model, every template of
the flow, and parameter defaults against their types.

A plan only needs a model's ref() calls and a flow's structure, so a model whose Jinja does
not parse, an argument template naming an unknown parameter or a default of the wrong type
all plan fine and fail at run time. Here each is rendered the way a run would render it,
with sample values where a run would have real ones: a run of the flow scheduled at
SAMPLE_TIME, every parameter at its default (or a sample of its type), and for every task
of the plan outputs that accept any key. Every problem names its file and line or its field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2

from kascade.api import Flow, FlowSpec, HookNode, Node, ParameterType, RunType
from kascade.api.core import EnvVar
from kascade.engine.dbtvars import missing_var_message
from kascade.engine.jinjanames import DbtNames, free_calls, literal_vars, unknown_call
from kascade.engine.parameters import convert
from kascade.engine.plan import Plan
from kascade.engine.podpatch import PodPatchError, patch_pod_spec
from kascade.engine.project import Project, Resource
from kascade.engine.sqlscan import (
    MODEL_ENVIRONMENT,
    compile_model,
    only_literal_calls,
    record_calls,
)
from kascade.engine.templating import TemplateError, render, run_context

SAMPLE_TIME = datetime(2024, 1, 31, 2, 0, tzinfo=UTC)
"""The scheduled time of the run templates are rendered for."""
_SAMPLES: dict[ParameterType, Any] = {
    ParameterType.STRING: "sample",
    ParameterType.INTEGER: 1,
    ParameterType.NUMBER: 1.0,
    ParameterType.BOOLEAN: True,
}


def lint_flow(flow: Flow, project: Project, plan: Plan, dbt: DbtNames | None = None) -> list[str]:
    """Every problem lint finds in a flow that plans, and in its project; with `dbt` (what
    the installed dbt offers), also the macros, packages and vars its models would miss."""
    problems = model_problems(project, dbt, frozenset(flow.spec.vars or {}))
    return problems + flow_problems(flow, plan)


def flow_problems(flow: Flow, plan: Plan) -> list[str]:
    """What lint finds in the flow itself (its parameter defaults and templates), without
    rendering the project's models: cheap enough for the operator's Valid condition."""
    run = sample_run(flow)
    params, problems = _parameter_values(flow.spec, run)
    problems += template_problems(flow.spec, sample_context(run, params, plan))
    return problems + pod_patch_problems(flow.spec)


_SAMPLE_POD: dict[str, Any] = {
    "containers": [{"name": "task", "env": [], "volumeMounts": []}],
    "volumes": [],
}


def pod_patch_problems(spec: FlowSpec) -> list[str]:
    """podSpecPatch entries whose directives or merge keys cannot be applied."""
    places: list[tuple[str, Any]] = [("spec.defaults", spec.defaults)]
    places += [(f"spec.{where} ({step.name})", step) for where, step in spec.steps()]
    problems = []
    for where, settings in places:
        patch = settings.pod_spec_patch if settings is not None else None
        if patch is None:
            continue
        try:
            patch_pod_spec(_SAMPLE_POD, patch)
        except PodPatchError as err:
            problems.append(f"{where}.{err}")
    return problems


def model_problems(
    project: Project, dbt: DbtNames | None = None, flow_vars: frozenset[str] = frozenset()
) -> list[str]:
    """Models whose Jinja does not parse (dbt's extensions enabled), or does not render
    with the stand-ins of the ref() scan: `models/x.sql:3: Jinja syntax error: ...`; with
    `dbt`, models calling a macro dbt would not find or a var without a value."""
    problems: list[str] = []
    for model in sorted(project.models.values(), key=lambda m: m.path.split("/")):
        try:
            with open(os.path.join(project.root, model.path), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{model.path}: cannot read: {err}")
            continue
        if "{" not in text:  # no Jinja at all
            continue
        try:
            tree = MODEL_ENVIRONMENT.parse(text)
            if dbt is not None:
                problems += _name_problems(project, model, tree, dbt, flow_vars)
            if only_literal_calls(text):  # parsing is all there is to check; compiling
                continue  # would cost several times more
            template = compile_model(text)
        except jinja2.TemplateSyntaxError as err:
            problems.append(f"{model.path}:{err.lineno}: Jinja syntax error: {err.message}")
            continue
        except RecursionError:
            problems.append(f"{model.path}: Jinja syntax error: nested too deeply to parse")
            continue
        except Exception as err:  # Python refuses the compiled template (too many brackets)
            problems.append(f"{model.path}: Jinja syntax error: {err}")
            continue
        scan = record_calls(template, text)
        problems += [f"{model.path}: {error}" for error in (*scan.errors, *scan.render_failures)]
    return problems


def _name_problems(
    project: Project,
    model: Resource,
    tree: jinja2.nodes.Template,
    dbt: DbtNames,
    flow_vars: frozenset[str],
) -> list[str]:
    """`models/x.sql:3: calls macro ...` and `models/x.sql:4: var ... has no value`."""
    problems: list[str] = []
    for call in free_calls(tree):
        why = unknown_call(call, dbt, project.macros, project.name, model.package)
        if why is not None:
            problems.append(f"{model.path}:{call.line}: {model.label} {why}")
    known = project.var_names.get(model.package, frozenset()) | flow_vars
    for name, has_default, line in literal_vars(tree):
        if not has_default and name not in known:
            problems.append(f"{model.path}:{line}: {model.label}: {missing_var_message(name)}")
    return problems


def sample_run(flow: Flow) -> dict[str, Any]:
    """The `run` object of a manual run of the flow scheduled at SAMPLE_TIME."""
    name = flow.metadata.name or "flow"
    return run_context(
        name=f"{name}-{int(SAMPLE_TIME.timestamp())}",
        flow=name,
        run_type=RunType.MANUAL.value,
        scheduled_time=SAMPLE_TIME,
        created=SAMPLE_TIME,
    )


def sample_context(run: dict[str, Any], params: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The template context of a task of the sample run: every task of the plan finished,
    with outputs that have every key."""
    return {
        "run": run,
        "params": params,
        "tasks": {task_id: {"outputs": _AnyOutputs()} for task_id in plan.by_id},
    }


def template_problems(spec: FlowSpec, context: dict[str, Any]) -> list[str]:
    """Templates of args, env values and child-flow parameters that do not render:
    `spec.nodes[2] (load).script.args[1]: template ...: 'dict object' has no attribute 'x'`."""
    problems: list[str] = []
    for where, text in template_fields(spec):
        try:
            render(text, context)
        except TemplateError as err:
            problems.append(f"{where}: {err}")
    return problems


def template_fields(spec: FlowSpec) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string of the flow that is rendered as a template when a
    task starts (parameter defaults are rendered earlier, with `run` only)."""
    if spec.defaults is not None:
        yield from _env_fields("spec.defaults", spec.defaults.env)
    yield from _value_fields("spec.vars", spec.vars or {})
    for index, node in enumerate(spec.nodes):
        yield from _node_fields(f"spec.nodes[{index}] ({node.name})", node)
    for event, hooks in (spec.hooks.by_event() if spec.hooks else {}).items():
        for index, hook in enumerate(hooks):
            yield from _node_fields(f"spec.hooks.{event}[{index}] ({hook.name})", hook)


def _value_fields(where: str, value: Any) -> Iterator[tuple[str, str]]:
    """(path, text) of every string inside a JSON value (dbt vars)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _value_fields(f"{where}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _value_fields(f"{where}[{index}]", item)


def _node_fields(where: str, node: Node | HookNode) -> Iterator[tuple[str, str]]:
    yield from _env_fields(where, node.env)
    if node.script is not None:
        for index, arg in enumerate(node.script.args or []):
            yield f"{where}.script.args[{index}]", arg
    if node.flow is not None:
        for name, value in (node.flow.parameters or {}).items():
            if isinstance(value, str):
                yield f"{where}.flow.parameters.{name}", value


def _env_fields(where: str, env: Sequence[EnvVar] | None) -> Iterator[tuple[str, str]]:
    for index, var in enumerate(env or []):
        if var.value is not None:
            yield f"{where}.env[{index}] ({var.name}).value", var.value


def _parameter_values(spec: FlowSpec, run: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Each parameter's default as a run would compute it (rendered with `run` only, then
    converted to its type), or a sample of its type; and the defaults that fail."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for index, parameter in enumerate(spec.parameters or []):
        values[parameter.name] = _SAMPLES[parameter.type]
        if parameter.default is None:
            continue
        where = f"spec.parameters[{index}] ({parameter.name}).default"
        default = parameter.default
        try:
            if isinstance(default, str):
                default = render(default, {"run": run})
            values[parameter.name] = convert(parameter.type, default)
        except (TemplateError, ValueError) as err:
            problems.append(f"{where}: {err}")
    return values, problems


class _AnyValue:
    """Stands in for a task output: prints as `output`, converts to 1, and any operator,
    comparison, item or call on it gives a value that works the same way."""

    def __str__(self) -> str:
        return "output"

    def __int__(self) -> int:
        return 1

    def __float__(self) -> float:
        return 1.0

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __getitem__(self, key: Any) -> _AnyValue:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _AnyValue:
        return self

    def __lt__(self, other: Any) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _any(self, *args: Any) -> _AnyValue:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _any
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _any
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _any


class _AnyOutputs(dict[str, Any]):
    """The outputs of a task at lint time: every key is there."""

    def __missing__(self, key: str) -> _AnyValue:
        return _AnyValue()

"""The launch of an attempt: what a task carries from its Flow (merged settings, script
args, a dbt task's selection and vars, child-flow parameters), and what one attempt of it
starts with (templates rendered with the run, its parameters and the outputs of finished
tasks; env merged; the task contract's variables). The same for a Job, a local process
and a child run."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kascade.api import FlowSpec, TaskSettings, TaskType
from kascade.contract import env as contract_env
from kascade.contract.warehouse import PASSWORD_ENV
from kascade.engine.ancestry import MAX_FLOW_DEPTH, child_flow_problem
from kascade.engine.errors import KascadeError
from kascade.engine.plan import PlannedTask, node_of
from kascade.engine.templating import TemplateError, render, run_context, template_context

# Settings the plan entry of a task holds (resolved with their defaults).
_PLANNED = ("retries", "retryDelaySeconds", "timeoutSeconds")
# core/v1 accepts any printable ASCII but `=` in an env name; a process cannot take more.
ENV_NAME = re.compile(r"^[!-<>-~]+$")


class LaunchError(KascadeError):
    """An attempt that cannot start (a template that fails, a bad env); names the field."""


@dataclass(frozen=True)
class RunIdentity:
    """What templates and the task contract know of a run."""

    name: str
    flow: str
    type: str
    scheduled_time: datetime | None
    created: datetime
    lineage: tuple[str, ...] = ()
    """The flows from the top-level run down to this one (ancestry)."""


@dataclass(frozen=True)
class Launch:
    """One attempt to start, everything rendered: the host adds only where it runs."""

    task: str
    attempt: int
    kind: TaskType
    target: str
    args: tuple[str, ...] = ()
    env: tuple[Mapping[str, Any], ...] = ()
    """core/v1 EnvVar entries, defaults overridden by the node, literal values rendered."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Parameters of the child run of a flow task, rendered."""
    wait: bool = True
    timeout_seconds: int | None = None
    """The deadline of this attempt, if any."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The task's settings as written (image, envFrom, resources, pod settings)."""
    contract: Mapping[str, str] = field(default_factory=dict)
    """The task contract's variables the run knows: run, task, flow, warehouse."""


def merged_settings(defaults: TaskSettings | None, node: TaskSettings) -> dict[str, Any]:
    """A node's settings over the Flow's defaults (env and volumes by name, volume mounts by
    mount path, pod metadata by key), in wire form."""
    base = defaults.to_wire() if defaults else {}
    own = TaskSettings.model_validate(node.model_dump(include=set(TaskSettings.model_fields)))
    mine = own.to_wire()
    merged = {**base, **mine}
    env = {var["name"]: var for var in base.get("env", [])}
    env.update({var["name"]: var for var in mine.get("env", [])})
    if env:
        merged["env"] = list(env.values())
    for listed, key in (("volumes", "name"), ("volumeMounts", "mountPath")):
        if listed in base and listed in mine:
            by_key = {item[key]: item for item in base[listed]}
            by_key.update({item[key]: item for item in mine[listed]})
            merged[listed] = list(by_key.values())
    if "podMetadata" in base and "podMetadata" in mine:
        merged["podMetadata"] = {
            key: {**base["podMetadata"].get(key, {}), **mine["podMetadata"].get(key, {})}
            for key in ("labels", "annotations")
            if key in base["podMetadata"] or key in mine["podMetadata"]
        }
    return merged


def task_settings(spec: FlowSpec, task: PlannedTask) -> dict[str, Any]:
    """What a planned task carries from its Flow, in wire form: the merged settings, the
    script's args, a child flow's parameters and wait."""
    node = node_of(spec, task)
    settings = merged_settings(spec.defaults, node)
    for planned in _PLANNED:  # the plan entry holds them, resolved
        settings.pop(planned, None)
    if node.script is not None:
        settings["args"] = list(node.script.args or [])
    if task.select is not None:  # a dbt task: the selection of exactly its resources
        settings["args"] = ["--select", task.select]
        if spec.vars:
            settings["vars"] = dict(spec.vars)
    if node.flow is not None:
        settings["parameters"] = dict(node.flow.parameters or {})
        settings["wait"] = node.flow.wait
    elif spec.warehouse is not None:  # what the task's process needs of the warehouse
        settings["warehouse"] = spec.warehouse.url()
        if spec.warehouse.password_secret_ref is not None:
            settings["warehousePassword"] = spec.warehouse.password_secret_ref.to_wire()
        if spec.warehouse.profiles_secret_ref is not None:
            settings["warehouseProfiles"] = spec.warehouse.profiles_secret_ref.to_wire()
    return settings


def launch_context(
    run: RunIdentity,
    parameters: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """What the templates of the attempts a run starts now see: the run, its parameters
    and the outputs of its finished tasks (made once for all the attempts started
    together: a run of thousands of tasks does not copy every output per attempt)."""
    return template_context(
        run_context(
            name=run.name,
            flow=run.flow,
            run_type=run.type,
            scheduled_time=run.scheduled_time,
            created=run.created,
        ),
        parameters,
        outputs,
    )


def launch(
    task: PlannedTask,
    settings: Mapping[str, Any],
    attempt: int,
    run: RunIdentity,
    context: Mapping[str, Any],
    warehouse: str | None = None,
    max_flow_depth: int = MAX_FLOW_DEPTH,
) -> Launch:
    """The launch of attempt `attempt` of a task, its templates rendered with `context`
    (launch_context); LaunchError names the field that fails, or the chain of flows a
    flow task may not extend (ancestry)."""
    where = f"task `{task.id}`"
    if task.type == TaskType.FLOW:
        problem = child_flow_problem(run.lineage or (run.flow,), task.target, max_flow_depth)
        if problem is not None:
            raise LaunchError(f"{where}: {problem}")
    args = tuple(
        _rendered(str(text), context, f"{where}: args[{index}]")
        for index, text in enumerate(settings.get("args") or [])
    )
    env = tuple(_env_var(var, context, where) for var in settings.get("env") or [])
    env += _warehouse_password(settings, env)
    warehouse = settings.get("warehouse") or warehouse
    if settings.get("vars"):
        rendered_vars = _rendered_value(settings["vars"], context, f"{where}: vars")
        args += ("--vars", json.dumps(rendered_vars, sort_keys=True))
    child_parameters = {
        name: _rendered(value, context, f"{where}: parameters.{name}")
        if isinstance(value, str)
        else value
        for name, value in (settings.get("parameters") or {}).items()
    }
    values = {
        contract_env.RUN: run.name,
        contract_env.TASK: task.id,
        contract_env.FLOW: run.flow,
    }
    if warehouse and not any(var.get("name") == contract_env.WAREHOUSE for var in env):
        values[contract_env.WAREHOUSE] = warehouse
    return Launch(
        task=task.id,
        attempt=attempt,
        kind=task.type,
        target=task.target,
        args=args,
        env=env,
        parameters=child_parameters,
        wait=bool(settings.get("wait", True)),
        timeout_seconds=task.timeout_seconds,
        settings=settings,
        contract=values,
    )


def _warehouse_password(
    settings: Mapping[str, Any], env: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], ...]:
    """PGPASSWORD from the Flow's warehouse Secret key, unless the task's env sets it: the
    password reaches the process from the Secret and is copied nowhere else."""
    ref = settings.get("warehousePassword")
    if not ref or any(var.get("name") == PASSWORD_ENV for var in env):
        return ()
    selector = {"name": ref["name"], "key": ref["key"]}
    return ({"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": selector}},)


def _env_var(var: Mapping[str, Any], context: Mapping[str, Any], where: str) -> dict[str, Any]:
    name = str(var.get("name", ""))
    if not ENV_NAME.match(name):
        raise LaunchError(
            f"{where}: env `{name}`: a name must be printable ASCII without `=` or spaces"
        )
    rendered = dict(var)
    if "value" in var and var["value"] is not None:
        rendered["value"] = _rendered(str(var["value"]), context, f"{where}: env `{name}`")
    return rendered


def _rendered_value(value: Any, context: Mapping[str, Any], where: str) -> Any:
    """A JSON value with every string in it rendered as a template."""
    if isinstance(value, str):
        return _rendered(value, context, where)
    if isinstance(value, dict):
        return {k: _rendered_value(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered_value(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _rendered(text: str, context: Mapping[str, Any], where: str) -> str:
    try:
        value = render(text, context)
    except TemplateError as err:
        raise LaunchError(f"{where}: {err}") from err
    if "\x00" in value:
        raise LaunchError(f"{where}: the value holds a NUL byte")
    return value

"""Planning a new Run on the cluster: read its Flow and project, resolve its parameters,
and describe one Task object per planned task (owned by the Run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kascade.api import Flow, FlowSpec, RunSpec, TaskSettings
from kascade.api.run import RunSettings
from kascade.engine.errors import KascadeError, PlanError
from kascade.engine.manifests import format_validation_error
from kascade.engine.naming import task_object_name
from kascade.engine.parameters import ParameterError, resolve_parameters
from kascade.engine.plan import Plan, PlannedTask, build_plan, node_of
from kascade.engine.project import load_project
from kascade.engine.templating import run_context
from kascade.operator.facts import timestamp
from kascade.operator.kube import Kube
from kascade.operator.labels import API_VERSION, PLAN_INDEX, TASK_ID, task_labels
from kascade.runtime.archive import ARCHIVE_KEY, ArchiveError, digest, unpack


class ProjectCache:
    """Projects unpacked from their ConfigMaps, one folder per content hash."""

    def __init__(self, kube: Kube, state_dir: Path) -> None:
        self.kube = kube
        self.root = state_dir / "projects"

    async def fetch(self, namespace: str, config_map: str | None) -> Path:
        """The project folder of a ConfigMap (an empty project when the Flow names none)."""
        if config_map is None:
            empty = self.root / "empty"
            empty.mkdir(parents=True, exist_ok=True)
            return empty
        packed = await self.kube.config_map_binary(namespace, config_map, ARCHIVE_KEY)
        if packed is None:
            raise KascadeError(
                f"project ConfigMap `{config_map}` (key {ARCHIVE_KEY}) not found in namespace "
                f"{namespace}; push it with `kascade project push DIR --name {config_map}`"
            )
        folder = self.root / digest(packed)
        if not folder.is_dir():
            partial = folder.with_suffix(".partial")
            try:
                unpack(packed, partial)
            except ArchiveError as err:
                raise KascadeError(f"project ConfigMap `{config_map}`: {err}") from err
            partial.rename(folder)
        return folder


@dataclass
class Prepared:
    """What a new run needs before its first decision; `error` when it cannot run."""

    error: str | None = None
    flow: str = ""
    plan: Plan | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    settings: RunSettings | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    project: Path | None = None
    config_map: str | None = None


async def prepare_run(kube: Kube, projects: ProjectCache, run: dict[str, Any]) -> Prepared:
    """Everything needed to start a run, or the reason it cannot start."""
    meta = run["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        spec = RunSpec.model_validate(run.get("spec") or {})
    except ValidationError as err:
        return Prepared(error=format_validation_error(err, f"Run {name}"))
    flow_body = await kube.get("flows", namespace, spec.flow_ref.name)
    if flow_body is None:
        return Prepared(error=f"Flow `{spec.flow_ref.name}` not found in namespace {namespace}")
    try:
        flow = Flow.model_validate({**flow_body, "status": None})
    except ValidationError as err:
        return Prepared(error=format_validation_error(err, f"Flow {spec.flow_ref.name}", flow_body))
    config_map = flow.spec.project.config_map if flow.spec.project else None
    try:
        project_dir = await projects.fetch(namespace, config_map)
        plan = build_plan(flow, load_project(project_dir))
    except PlanError as err:
        return Prepared(
            error=f"Flow `{flow.metadata.name}` cannot be planned: " + "; ".join(err.problems)
        )
    except KascadeError as err:
        return Prepared(error=str(err))
    context = run_context(
        name=name,
        flow=flow.metadata.name or "",
        run_type=spec.type.value,
        scheduled_time=spec.scheduled_time,
        created=timestamp(meta.get("creationTimestamp")) or _now(),
    )
    try:
        parameters = resolve_parameters(flow.spec.parameters or [], spec.parameters or {}, context)
    except ParameterError as err:
        return Prepared(error=str(err))
    settings = RunSettings(
        max_parallel_tasks=flow.spec.max_parallel_tasks,
        fail_fast=flow.spec.fail_fast,
        timeout_seconds=flow.spec.timeout_seconds,
        project_config_map=config_map,
    )
    owner = {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "name": name,
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    tasks = [
        task_body(flow.spec, task, name, namespace, flow.metadata.name or "", owner, index)
        for index, task in enumerate((*plan.tasks, *plan.hooks))
    ]
    return Prepared(
        flow=flow.metadata.name or "",
        plan=plan,
        parameters=parameters,
        settings=settings,
        tasks=tasks,
        project=project_dir,
        config_map=config_map,
    )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def merged_settings(defaults: TaskSettings | None, node: TaskSettings) -> dict[str, Any]:
    """A node's settings over the Flow's defaults (env by name, pod metadata by key), in
    wire form."""
    base = defaults.to_wire() if defaults else {}
    own = TaskSettings.model_validate(node.model_dump(include=set(TaskSettings.model_fields)))
    mine = own.to_wire()
    merged = {**base, **mine}
    env = {var["name"]: var for var in base.get("env", [])}
    env.update({var["name"]: var for var in mine.get("env", [])})
    if env:
        merged["env"] = list(env.values())
    if "podMetadata" in base and "podMetadata" in mine:
        merged["podMetadata"] = {
            key: {**base["podMetadata"].get(key, {}), **mine["podMetadata"].get(key, {})}
            for key in ("labels", "annotations")
            if key in base["podMetadata"] or key in mine["podMetadata"]
        }
    return merged


def task_body(
    spec: FlowSpec,
    task: PlannedTask,
    run: str,
    namespace: str,
    flow: str,
    owner: dict[str, Any],
    index: int,
) -> dict[str, Any]:
    """The Task object of a planned task: its plan entry and resolved settings."""
    node = node_of(spec, task)
    task_spec: dict[str, Any] = {
        **merged_settings(spec.defaults, node),
        "runRef": {"name": run},
        "id": task.id,
        "node": task.node,
        "type": task.type.value,
        "target": task.target,
        "dependsOn": list(task.depends_on),
        "trigger": task.trigger.value,
        "retries": task.retries,
        "retryDelaySeconds": task.retry_delay_seconds,
    }
    if task.timeout_seconds is not None:
        task_spec["timeoutSeconds"] = task.timeout_seconds
    if task.hook is not None:
        task_spec["hook"] = task.hook
    if task.path is not None:
        task_spec["path"] = task.path
    if node.script is not None:
        task_spec["args"] = list(node.script.args or [])
    if node.flow is not None:
        task_spec["parameters"] = dict(node.flow.parameters or {})
        task_spec["wait"] = node.flow.wait
    return {
        "apiVersion": API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": task_object_name(run, task.id),
            "namespace": namespace,
            "labels": task_labels(run, flow, task.id),
            "annotations": {TASK_ID: task.id, PLAN_INDEX: str(index)},
            "ownerReferences": [owner],
        },
        "spec": task_spec,
    }

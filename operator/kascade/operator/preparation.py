"""Planning a new Run on the cluster: read its Flow and project, resolve its parameters,
and describe one Task object per planned task (owned by the Run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kascade.api import (
    RERUN_TYPES,
    Flow,
    FlowSpec,
    RunPhase,
    RunSpec,
    TaskPhase,
    TaskSettings,
    TaskType,
)
from kascade.api.run import RunSettings
from kascade.engine.errors import KascadeError, PlanError
from kascade.engine.graph import Graph
from kascade.engine.manifests import format_validation_error
from kascade.engine.naming import label_value, task_object_name
from kascade.engine.parameters import ParameterError, resolve_parameters
from kascade.engine.plan import Plan, PlannedTask, build_plan, node_of
from kascade.engine.project import load_project
from kascade.engine.reruns import RerunError, reused_tasks
from kascade.engine.statemachine import run_is_terminal
from kascade.engine.templating import run_context
from kascade.operator.facts import timestamp
from kascade.operator.kube import Kube
from kascade.operator.labels import (
    API_VERSION,
    PLAN_INDEX,
    RUN,
    TASK_ID,
    owner_reference,
    task_labels,
)
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
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    rerun_of: str | None = None


async def prepare_run(kube: Kube, projects: ProjectCache, run: dict[str, Any]) -> Prepared:
    """Everything needed to start a run, or the reason it cannot start."""
    meta = run["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        spec = RunSpec.model_validate(run.get("spec") or {})
    except ValidationError as err:
        return Prepared(error=format_validation_error(err, f"Run {name}"))
    if spec.type in RERUN_TYPES:
        return await prepare_rerun(kube, run, spec)
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
    owner = owner_reference("Run", name, meta["uid"])
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


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether an object's owner references name the object with this uid."""
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def plan_of_tasks(flow: str, objects: list[dict[str, Any]]) -> Plan:
    """The plan a run's Task objects (in plan order) describe."""
    planned = []
    for obj in objects:
        spec = obj["spec"]
        planned.append(
            PlannedTask(
                id=spec["id"],
                node=spec["node"],
                type=TaskType(spec["type"]),
                target=spec["target"],
                depends_on=tuple(spec.get("dependsOn") or ()),
                trigger=spec.get("trigger"),
                retries=int(spec.get("retries", 0)),
                retry_delay_seconds=int(spec.get("retryDelaySeconds", 30)),
                timeout_seconds=spec.get("timeoutSeconds"),
                hook=spec.get("hook"),
                path=spec.get("path"),
            )
        )
    main = [t for t in planned if t.hook is None]
    order = Graph({t.id: list(t.depends_on) for t in main}).topological_order()
    by_id = {t.id: t for t in main}
    return Plan(
        flow=flow,
        tasks=tuple(by_id[i] for i in order),
        hooks=tuple(t for t in planned if t.hook is not None),
    )


async def prepare_rerun(kube: Kube, run: dict[str, Any], spec: RunSpec) -> Prepared:
    """A rerun: the original run's tasks, parameters and settings; the project's current
    code (the Jobs mount the same ConfigMap as it is now). Reused tasks get a REUSED
    status carrying the original outputs and never get a Job."""
    meta = run["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    assert spec.rerun_of is not None
    original = await kube.get("runs", namespace, spec.rerun_of)
    if original is None:
        return Prepared(error=f"run `{spec.rerun_of}` to rerun not found in namespace {namespace}")
    phase = (original.get("status") or {}).get("phase")
    if not phase or not run_is_terminal(RunPhase(phase)):
        return Prepared(
            error=f"run `{spec.rerun_of}` is {phase or 'not started'}; only a "
            "finished run can be rerun"
        )
    objects = await kube.list("tasks", namespace, f"{RUN}={label_value(spec.rerun_of)}")
    owned = sorted(
        (t for t in objects if owned_by(t, original["metadata"]["uid"])),
        key=lambda t: int((t["metadata"].get("annotations") or {}).get(PLAN_INDEX, 0)),
    )
    flow = spec.flow_ref.name
    plan = plan_of_tasks(flow, owned)
    phases = {
        t["spec"]["id"]: TaskPhase((t.get("status") or {}).get("phase") or "PENDING") for t in owned
    }
    try:
        reused = reused_tasks(plan, phases, spec.type, spec.rerun_task, spec.downstream)
    except RerunError as err:
        return Prepared(error=f"rerun of `{spec.rerun_of}`: {err}")
    owner = owner_reference("Run", name, meta["uid"])
    tasks, statuses = [], {}
    for index, task in enumerate(owned):
        task_id = task["spec"]["id"]
        object_name = task_object_name(name, task_id)
        tasks.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Task",
                "metadata": {
                    "name": object_name,
                    "namespace": namespace,
                    "labels": task_labels(name, flow, task_id),
                    "annotations": {TASK_ID: task_id, PLAN_INDEX: str(index)},
                    "ownerReferences": [owner],
                },
                "spec": {**task["spec"], "runRef": {"name": name}},
            }
        )
        if task_id in reused:
            before = task.get("status") or {}
            statuses[object_name] = {
                "phase": TaskPhase.REUSED.value,
                "reason": "Reused",
                "message": f"result of run {before.get('reusedFrom') or spec.rerun_of}",
                "outputs": before.get("outputs"),
                "reusedFrom": before.get("reusedFrom") or spec.rerun_of,
            }
    status = original.get("status") or {}
    settings = status.get("settings") or {}
    return Prepared(
        flow=flow,
        plan=plan,
        parameters=dict(status.get("parameters") or {}),
        settings=RunSettings.model_validate(settings) if settings else None,
        tasks=tasks,
        config_map=settings.get("projectConfigMap"),
        statuses=statuses,
        rerun_of=spec.rerun_of,
    )

"""Planning a new Run on the cluster: read its Flow and project (or, for a rerun, the
original run's tasks), resolve its parameters, and describe its tasks as records, from
which the loader makes one Task object each (owned by the Run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kascade.api import RERUN_TYPES, Flow, RunPhase, RunSpec, TaskPhase
from kascade.api.run import RunSettings
from kascade.engine.ancestry import child_flow_problem, lineage_of
from kascade.engine.errors import KascadeError, PlanError
from kascade.engine.launch import task_settings
from kascade.engine.manifests import format_validation_error
from kascade.engine.naming import label_value
from kascade.engine.parameters import ParameterError, resolve_parameters
from kascade.engine.plan import build_plan
from kascade.engine.project import load_project
from kascade.engine.reruns import RerunError, check_rerunnable, reuse, reused_tasks
from kascade.engine.templating import run_context
from kascade.host.records import TaskRecord, plan_of_tasks, task_record, unstarted
from kascade.operator.facts import timestamp
from kascade.operator.kube import Kube
from kascade.operator.labels import RUN
from kascade.operator.projects import ProjectCache
from kascade.operator.status import stored_settings
from kascade.operator.taskobjects import in_plan_order, owned_by, task_record_of


@dataclass
class Prepared:
    """What a new run needs before its first decision; `error` when it cannot run."""

    error: str | None = None
    flow: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=lambda: RunSettings(max_parallel_tasks=8))
    tasks: list[TaskRecord] = field(default_factory=list)
    rerun_of: str | None = None
    lineage: tuple[str, ...] = ()


async def prepare_run(
    kube: Kube, projects: ProjectCache, run: dict[str, Any], max_flow_depth: int
) -> Prepared:
    """Everything needed to start a run, or the reason it cannot start."""
    meta = run["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        spec = RunSpec.model_validate(run.get("spec") or {})
    except ValidationError as err:
        return Prepared(error=format_validation_error(err, f"Run {name}"))
    if spec.type in RERUN_TYPES:
        return await prepare_rerun(kube, run, spec)
    lineage, problem = await _lineage(kube, namespace, spec, max_flow_depth)
    if problem is not None:
        return Prepared(error=problem)
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
        created=timestamp(meta.get("creationTimestamp")) or datetime.now(UTC),
    )
    try:
        parameters = resolve_parameters(flow.spec.parameters or [], spec.parameters or {}, context)
    except ParameterError as err:
        return Prepared(error=str(err))
    return Prepared(
        flow=flow.metadata.name or "",
        parameters=parameters,
        settings=RunSettings(
            max_parallel_tasks=flow.spec.max_parallel_tasks,
            fail_fast=flow.spec.fail_fast,
            timeout_seconds=flow.spec.timeout_seconds,
            project_config_map=config_map,
        ),
        tasks=[task_record(t, task_settings(flow.spec, t)) for t in (*plan.tasks, *plan.hooks)],
        lineage=lineage,
    )


async def _lineage(
    kube: Kube, namespace: str, spec: RunSpec, max_flow_depth: int
) -> tuple[tuple[str, ...], str | None]:
    """The chain of flows of a new run, or why it may not run: a SUBFLOW run needs its
    parent run, and must not repeat a flow of the parent's chain or nest too deep."""
    own = spec.flow_ref.name
    if spec.parent is None:
        return lineage_of(None, own), None
    parent = await kube.get("runs", namespace, spec.parent.run)
    if parent is None:
        return (), (
            f"spec.parent.run: the parent run `{spec.parent.run}` does not exist in namespace "
            f"{namespace}; a SUBFLOW run is started by a flow task of a running run"
        )
    chain = (parent.get("status") or {}).get("lineage") or [
        ((parent.get("spec") or {}).get("flowRef") or {}).get("name", "")
    ]
    problem = child_flow_problem(chain, own, max_flow_depth)
    if problem is not None:
        return (), f"spec.parent: {problem}"
    return lineage_of(chain, own), None


async def prepare_rerun(kube: Kube, run: dict[str, Any], spec: RunSpec) -> Prepared:
    """A rerun: the original run's tasks, parameters and settings; the project's current
    code (the Jobs mount the same ConfigMap as it is now). Reused tasks get a REUSED
    status carrying the original outputs and never get a Job."""
    namespace = run["metadata"]["namespace"]
    assert spec.rerun_of is not None
    original = await kube.get("runs", namespace, spec.rerun_of)
    if original is None:
        return Prepared(error=f"run `{spec.rerun_of}` to rerun not found in namespace {namespace}")
    status = original.get("status") or {}
    phase = status.get("phase")
    objects = await kube.list("tasks", namespace, f"{RUN}={label_value(spec.rerun_of)}")
    owned = in_plan_order(t for t in objects if owned_by(t, original["metadata"]["uid"]))
    before = [task_record_of(obj) for obj in owned]
    try:
        check_rerunnable(spec.rerun_of, RunPhase(phase) if phase else None)
        reused = reused_tasks(
            plan_of_tasks(spec.flow_ref.name, before),
            {t.id: t.phase for t in before},
            spec.type,
            spec.rerun_task,
            spec.downstream,
        )
    except RerunError as err:
        return Prepared(error=f"rerun of `{spec.rerun_of}`: {err}")
    tasks = []
    for task in before:
        fresh = unstarted(task)
        if task.id in reused:
            taken = reuse(spec.rerun_of, task.reused_from)
            fresh.phase, fresh.outputs = TaskPhase.REUSED, dict(task.outputs)
            fresh.reused_from, fresh.reason = taken.reused_from, taken.reason
            fresh.message = taken.message
        tasks.append(fresh)
    return Prepared(
        flow=spec.flow_ref.name,
        parameters=dict(status.get("parameters") or {}),
        settings=stored_settings(status),
        tasks=tasks,
        rerun_of=spec.rerun_of,
        lineage=tuple(status.get("lineage") or ()),
    )

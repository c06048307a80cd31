"""Making local runs: a new run of a flow file, or a rerun of a recorded run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kascade.api import Flow, RunType, TaskPhase
from kascade.engine.launch import task_settings
from kascade.engine.parameters import ParameterError, resolve_parameters
from kascade.engine.plan import build_plan
from kascade.engine.project import load_project
from kascade.engine.reruns import check_rerun_task, check_rerunnable, reuse, reused_tasks
from kascade.engine.templating import run_context
from kascade.host.records import RunRecord, TaskRecord, plan_of, task_record, unstarted
from kascade.local.store import StateDir

WAREHOUSE_FILE = "warehouse.duckdb"


def default_warehouse(state: StateDir) -> str:
    """The embedded warehouse of a state dir: duckdb:///<state-dir>/warehouse.duckdb."""
    return "duckdb:///" + str(state.state_dir / WAREHOUSE_FILE)


def new_run(
    flow: Flow,
    flow_file: Path | None,
    project_dir: Path,
    given: Mapping[str, Any],
    state: StateDir,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> RunRecord:
    """A MANUAL run of a flow; invalid parameters make a run that fails before any task.
    `warehouse` is an absolute URL (contract.warehouse.absolute_url), None for the state
    dir's embedded one."""
    plan = build_plan(flow, load_project(project_dir))
    created = now or datetime.now(UTC)
    name = flow.metadata.name or "flow"
    run_id = state.new_id(name, created)
    context = run_context(
        name=run_id, flow=name, run_type=RunType.MANUAL.value, scheduled_time=None, created=created
    )
    # --warehouse, else the Flow's spec.warehouse, else the state dir's DuckDB file
    spec_warehouse = flow.spec.warehouse.url() if flow.spec.warehouse is not None else None
    chosen = warehouse or spec_warehouse or default_warehouse(state)
    parameters: dict[str, Any] = {}
    start_error = None
    try:
        parameters = resolve_parameters(flow.spec.parameters or [], given, context)
    except ParameterError as err:
        start_error = str(err)
    return RunRecord(
        id=run_id,
        flow=name,
        flow_file=str(flow_file.resolve()) if flow_file else None,
        project=str(project_dir.resolve()),
        warehouse=chosen,
        parameters=parameters,
        max_parallel_tasks=flow.spec.max_parallel_tasks,
        fail_fast=flow.spec.fail_fast,
        timeout_seconds=flow.spec.timeout_seconds,
        start_error=start_error,
        created_at=created,
        tasks=[
            task_record(t, _local(task_settings(flow.spec, t))) for t in (*plan.tasks, *plan.hooks)
        ],
    )


def _local(settings: dict[str, Any]) -> dict[str, Any]:
    """A task's settings for a local run: the run's warehouse is the record's (chosen
    once for the run), not a per-task copy of the Flow's."""
    settings.pop("warehouse", None)
    return settings


def new_rerun(
    original: RunRecord,
    kind: RunType,
    state: StateDir,
    task: str | None = None,
    downstream: bool = False,
    now: datetime | None = None,
) -> RunRecord:
    """A rerun: the original's tasks, parameters and flow settings, the project's current
    code; tasks it reuses carry their original outputs and are not executed. Only a
    finished run can be rerun (the same rule as on a cluster)."""
    check_rerunnable(original.id, original.phase)
    if kind == RunType.RERUN_TASK:
        check_rerun_task(original.id, task, [t.id for t in original.main_tasks])
    plan = plan_of(original)
    reused = reused_tasks(plan, {t.id: t.phase for t in original.tasks}, kind, task, downstream)
    created = now or datetime.now(UTC)
    tasks = [_fresh(before, before.id in reused, original.id) for before in original.tasks]
    return RunRecord(
        id=state.new_id(original.flow, created),
        flow=original.flow,
        flow_file=original.flow_file,
        project=original.project,
        warehouse=original.warehouse,
        type=kind,
        rerun_of=original.id,
        rerun_task=task if kind == RunType.RERUN_TASK else None,
        downstream=downstream,
        parameters=dict(original.parameters),
        max_parallel_tasks=original.max_parallel_tasks,
        fail_fast=original.fail_fast,
        timeout_seconds=original.timeout_seconds,
        created_at=created,
        scheduled_time=original.scheduled_time,
        tasks=tasks,
    )


def _fresh(before: TaskRecord, reused: bool, original: str) -> TaskRecord:
    """A task of a rerun: the original's plan entry and settings, and for a reused task
    its outputs and where they were made."""
    task = unstarted(before)
    if reused:
        taken = reuse(original, before.reused_from)
        task.phase = TaskPhase.REUSED
        task.outputs = dict(before.outputs)
        task.reused_from, task.reason, task.message = taken.reused_from, taken.reason, taken.message
    return task

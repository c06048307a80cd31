"""Making local runs: a new run of a flow file, or a rerun of a recorded run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kascade.api import Flow, RunType, TaskPhase
from kascade.engine.parameters import ParameterError, resolve_parameters
from kascade.engine.plan import Plan, build_plan
from kascade.engine.project import load_project
from kascade.engine.reruns import reused_tasks
from kascade.engine.templating import run_context
from kascade.local.records import RunRecord, TaskRecord, plan_of, task_record
from kascade.local.store import RunStore
from kascade.runtime.warehouse import check_url

WAREHOUSE_FILE = "warehouse.duckdb"


def default_warehouse(store: RunStore) -> str:
    """The embedded warehouse of a state dir: duckdb:///<state-dir>/warehouse.duckdb."""
    return "duckdb:///" + str(store.state_dir / WAREHOUSE_FILE)


def absolute_warehouse(url: str) -> str:
    """A warehouse URL with a relative DuckDB path made absolute (tasks run in the
    project folder, not where the user typed the command)."""
    check_url(url)
    prefix = "duckdb:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith(("/", ":memory:")):
        return prefix + os.path.abspath(url[len(prefix) :])
    return url


def new_run(
    flow: Flow,
    flow_file: Path | None,
    project_dir: Path,
    given: Mapping[str, Any],
    store: RunStore,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> RunRecord:
    """A MANUAL run of a flow; invalid parameters make a run that fails before any task."""
    project = load_project(project_dir)
    plan = build_plan(flow, project)
    created = now or datetime.now(UTC)
    name = flow.metadata.name or "flow"
    run_id = store.new_id(name, created)
    url = absolute_warehouse(warehouse) if warehouse else default_warehouse(store)
    context = run_context(
        name=run_id, flow=name, run_type=RunType.MANUAL.value, scheduled_time=None, created=created
    )
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
        warehouse=url,
        parameters=parameters,
        start_error=start_error,
        created_at=created,
        flow_spec=flow.spec.to_wire(),
        tasks=_tasks(plan),
    )


def _tasks(plan: Plan) -> list[TaskRecord]:
    return [task_record(task) for task in (*plan.tasks, *plan.hooks)]


def new_rerun(
    original: RunRecord,
    kind: RunType,
    store: RunStore,
    task: str | None = None,
    downstream: bool = False,
    now: datetime | None = None,
) -> RunRecord:
    """A rerun: the original's tasks, parameters and flow settings, the project's current
    code; tasks it reuses carry their original outputs and are not executed."""
    plan = plan_of(original)
    phases = {t.id: t.phase for t in original.tasks}
    reused = reused_tasks(plan, phases, kind, task, downstream)
    created = now or datetime.now(UTC)
    tasks = []
    for planned in (*plan.tasks, *plan.hooks):
        before = original.task(planned.id)
        if planned.id in reused:
            record = task_record(planned, TaskPhase.REUSED)
            record.outputs = dict(before.outputs)
            record.reused_from = before.reused_from or original.id
            record.reason, record.message = "Reused", f"result of run {original.id}"
        else:
            record = task_record(planned)
        tasks.append(record)
    return RunRecord(
        id=store.new_id(original.flow, created),
        flow=original.flow,
        flow_file=original.flow_file,
        project=original.project,
        warehouse=original.warehouse,
        type=kind,
        rerun_of=original.id,
        rerun_task=task if kind == RunType.RERUN_TASK else None,
        downstream=downstream,
        parameters=dict(original.parameters),
        created_at=created,
        scheduled_time=original.scheduled_time,
        flow_spec=dict(original.flow_spec),
        tasks=tasks,
    )

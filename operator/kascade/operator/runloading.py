"""Loading a Run for the host loop: plan it when it is new (its Task objects are
created, a rerun lists itself on its original), then read the Run and its Tasks back as
one run record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kascade.api import RunPhase, RunType
from kascade.engine.ancestry import MAX_FLOW_DEPTH
from kascade.engine.naming import label_value
from kascade.engine.statemachine import run_is_terminal
from kascade.host.records import PhaseRecord, RunRecord
from kascade.operator.facts import timestamp
from kascade.operator.kube import Kube, passing
from kascade.operator.labels import RUN, owner_reference
from kascade.operator.preparation import Prepared, prepare_run
from kascade.operator.projects import ProjectCache
from kascade.operator.status import invalid_condition, stored_settings
from kascade.operator.taskobjects import (
    TaskObject,
    in_plan_order,
    owned_by,
    task_body,
    task_record_of,
    task_status,
)


@dataclass
class LoadedRun:
    """A Run as the loop needs it: its body, its record, and its Task objects."""

    body: dict[str, Any]
    record: RunRecord
    objects: dict[str, TaskObject] = field(default_factory=dict)
    config_map: str | None = None
    conditions: list[dict[str, Any]] | None = None


async def load_run(
    kube: Kube,
    projects: ProjectCache,
    namespace: str,
    name: str,
    now: datetime,
    max_flow_depth: int = MAX_FLOW_DEPTH,
) -> LoadedRun | None:
    """The run's record (planning it first when it is new); None when the Run is gone."""
    body = await kube.get("runs", namespace, name)
    if body is None:
        return None
    status = dict(body.get("status") or {})
    phase = RunPhase(status["phase"]) if status.get("phase") else None
    start_error = None
    conditions = None
    if status.get("totalTasks") is None and not run_is_terminal(phase):
        start_error = await _prepare(kube, projects, body, status, max_flow_depth)
        if start_error is not None:
            conditions = [invalid_condition(start_error, now)]
            await kube.event(body, "Run", "InvalidRun", start_error, warning=True)
    objects = await kube.list("tasks", namespace, f"{RUN}={label_value(name)}")
    owned = in_plan_order(t for t in objects if owned_by(t, body["metadata"]["uid"]))
    record = _record(body, status, [task_record_of(obj) for obj in owned], start_error)
    return LoadedRun(
        body=body,
        record=record,
        objects={
            obj["spec"]["id"]: TaskObject(obj["metadata"]["name"], obj["metadata"]["uid"])
            for obj in owned
        },
        config_map=stored_settings(status).project_config_map,
        conditions=conditions,
    )


async def _prepare(
    kube: Kube,
    projects: ProjectCache,
    body: dict[str, Any],
    status: dict[str, Any],
    max_flow_depth: int,
) -> str | None:
    """Plan a new run and store its plan (updating `status`); why it cannot start, if it
    cannot. An error that may pass (the API server away) is raised, to try again; any
    other ends the run before it starts, never an endless retry."""
    try:
        prepared = await prepare_run(kube, projects, body, max_flow_depth)
        if prepared.error is not None:
            return prepared.error
        status.update(await _plan(kube, body, prepared))
    except Exception as err:
        if passing(err):
            raise
        return f"the run could not be prepared: {type(err).__name__}: {err}"
    return None


async def _plan(kube: Kube, body: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """Create the Task objects of a new run (REUSED ones with their status), list a rerun
    on its original, and write what the run took from its Flow; the status fields
    written."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    owner = owner_reference("Run", name, meta["uid"])
    bodies = [
        task_body(task, name, namespace, prepared.flow, owner, index)
        for index, task in enumerate(prepared.tasks)
    ]
    await asyncio.gather(*(kube.create("tasks", namespace, task) for task in bodies))
    await asyncio.gather(
        *(
            kube.patch_status("tasks", namespace, obj["metadata"]["name"], task_status(task))
            for task, obj in zip(prepared.tasks, bodies, strict=True)
            if task.reused_from is not None
        )
    )
    if prepared.rerun_of is not None:
        await _list_as_rerun(kube, namespace, prepared.rerun_of, name)
    written = {
        "totalTasks": sum(task.hook is None for task in prepared.tasks),
        "parameters": prepared.parameters,
        "settings": prepared.settings.to_wire(),
    }
    if prepared.lineage:
        written["lineage"] = list(prepared.lineage)
    await kube.patch_status("runs", namespace, name, written)
    return written


async def _list_as_rerun(kube: Kube, namespace: str, original: str, rerun: str) -> None:
    """The original run lists its reruns (it is finished: nobody else writes it)."""
    body = await kube.get("runs", namespace, original)
    if body is None:
        return
    reruns = list((body.get("status") or {}).get("reruns") or [])
    if rerun not in reruns:
        await kube.patch_status("runs", namespace, original, {"reruns": [*reruns, rerun]})


def _record(
    body: dict[str, Any], status: dict[str, Any], tasks: list[Any], start_error: str | None
) -> RunRecord:
    meta, spec = body["metadata"], body.get("spec") or {}
    settings = stored_settings(status)
    return RunRecord(
        id=meta["name"],
        flow=(spec.get("flowRef") or {}).get("name", ""),
        type=RunType(spec.get("type", "MANUAL")),
        rerun_of=spec.get("rerunOf"),
        rerun_task=spec.get("rerunTask"),
        downstream=bool(spec.get("downstream")),
        reruns=list(status.get("reruns") or []),
        lineage=list(status.get("lineage") or []),
        parameters=dict(status.get("parameters") or {}),
        max_parallel_tasks=settings.max_parallel_tasks,
        fail_fast=settings.fail_fast,
        timeout_seconds=settings.timeout_seconds,
        start_error=start_error,
        phase=status.get("phase"),
        reason=status.get("reason"),
        message=status.get("message"),
        created_at=timestamp(meta.get("creationTimestamp")) or datetime.now(UTC),
        scheduled_time=timestamp(spec.get("scheduledTime")),
        started_at=timestamp(status.get("startTime")),
        finished_at=timestamp(status.get("completionTime")),
        history=[PhaseRecord.model_validate(entry) for entry in status.get("history") or []],
        tasks=tasks,
    )

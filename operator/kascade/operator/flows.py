"""Flow status: whether the Flow (with its project) is valid, and its runs at a glance
(the last run, the active runs). This writer owns those fields of Flow status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kascade.api import Flow, RunPhase
from kascade.engine.ancestry import ARROW, flow_cycle
from kascade.engine.errors import KascadeError, PlanError
from kascade.engine.lint import flow_problems
from kascade.engine.manifests import format_validation_error
from kascade.engine.plan import build_plan
from kascade.engine.project import load_project
from kascade.engine.retention import KeptRun, runs_to_delete
from kascade.engine.statemachine import run_is_terminal
from kascade.operator.executors import RunFacts
from kascade.operator.facts import rfc3339
from kascade.operator.kube import Kube, passing
from kascade.operator.metrics import METRICS
from kascade.operator.projects import ProjectCache

log = logging.getLogger("kascade.operator")
DEBOUNCE_SECONDS = 0.2


def runs_summary(runs: Iterable[RunFacts]) -> dict[str, Any]:
    """lastRun and activeRuns of a Flow from its runs (child runs of other flows included
    when they run this flow)."""
    ordered = sorted(runs, key=lambda r: (r.created or datetime.min.replace(tzinfo=UTC), r.name))
    summary: dict[str, Any] = {
        "activeRuns": [r.name for r in ordered if not run_is_terminal(r.phase)] or None,
        "lastRun": None,
    }
    if ordered:
        last = ordered[-1]
        summary["lastRun"] = {
            "name": last.name,
            "phase": last.phase.value if isinstance(last.phase, RunPhase) else None,
            "startTime": rfc3339(last.started),
            "completionTime": rfc3339(last.finished),
        }
    return summary


class FlowStatusWriter:
    """Debounced writer of Flow status, one pending update per Flow."""

    def __init__(
        self,
        kube: Kube,
        projects: ProjectCache,
        runs: Callable[[tuple[str, str]], Iterable[RunFacts]],
    ) -> None:
        self.kube = kube
        self.projects = projects
        self.runs = runs
        self.pending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.written: dict[tuple[str, str], dict[str, Any]] = {}
        self.validity: dict[tuple[str, str], tuple[tuple[int, str], dict[str, Any]]] = {}
        self.schedule_written: dict[tuple[str, str], dict[str, Any]] = {}
        self.pruned: set[str] = set()

    def touch(self, namespace: str, flow: str) -> None:
        """Something changed for a Flow; write its status soon."""
        key = (namespace, flow)
        if key in self.pending and not self.pending[key].done():
            return
        self.pending[key] = asyncio.get_running_loop().create_task(self._update(key))

    async def _update(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(DEBOUNCE_SECONDS)
        try:
            with METRICS.reconcile("flow"):
                body = await self.kube.get("flows", *key)
                if body is None:
                    return
                runs = list(self.runs(key))
                status = {**runs_summary(runs), **await self._validity(body)}
                if status != self.written.get(key):
                    await self.kube.patch_status("flows", key[0], key[1], status)
                    self.written[key] = status
                await self._prune(body, runs)
        except Exception as err:  # a Flow must never take the operator down
            if passing(err):  # the API server is away: the next change writes it
                log.warning("flow=%s/%s event=status-error error=%s", *key, err)
            else:
                log.exception("flow=%s/%s event=status-error error=%s", *key, err)

    async def write_schedule(self, namespace: str, flow: str, fields: dict[str, Any]) -> None:
        """Write the schedule's fields of a Flow's status now (the scheduler relies on
        its checkpoint surviving a restart)."""
        if self.schedule_written.get((namespace, flow)) != fields:
            await self.kube.patch_status("flows", namespace, flow, fields)
            self.schedule_written[(namespace, flow)] = fields

    async def _prune(self, body: dict[str, Any], runs: list[RunFacts]) -> None:
        """Delete the finished runs the engine's retention rule drops (their Tasks and
        Jobs go with them). Child runs go with their parents instead."""
        spec = body.get("spec") or {}
        kept = [
            KeptRun(r.name, r.phase, r.finished, r.created, child=r.type == "SUBFLOW") for r in runs
        ]
        doomed = runs_to_delete(
            kept,
            int(spec.get("successfulRunsHistoryLimit", 10)),
            int(spec.get("failedRunsHistoryLimit", 10)),
        )
        namespace = body["metadata"]["namespace"]
        for name in doomed:
            if name in self.pruned:
                continue
            self.pruned.add(name)
            await self.kube.delete("runs", namespace, name)
            log.info("run=%s/%s event=pruned", namespace, name)

    async def _validity(self, body: dict[str, Any]) -> dict[str, Any]:
        """Valid condition and task count; recomputed when the Flow's generation or its
        project's content changes."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        generation = int(meta.get("generation") or 0)
        problem: str | None = None
        tasks = None
        cycle: tuple[str, ...] | None = None
        try:
            flow = Flow.model_validate({**body, "status": None})
            config_map = flow.spec.project.config_map if flow.spec.project else None
            project = await self.projects.fetch(key[0], config_map)
            version = (generation, project.name)
            cached = self.validity.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            plan = build_plan(flow, load_project(project))
            tasks = len(plan.tasks)
            problem = "; ".join(flow_problems(flow, plan)) or None
            cycle = await self._cycle(key[0], flow)
        except ValidationError as err:
            version, problem = (
                (generation, ""),
                format_validation_error(err, f"Flow {key[1]}", body),
            )
        except PlanError as err:
            version, problem = (generation, project.name), "; ".join(err.problems)
        except KascadeError as err:
            version, problem = (generation, ""), str(err)
        cached = self.validity.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        warning = (
            f"; warning: flows start each other: {ARROW.join(cycle)}, so a run fails at the "
            "flow task that would repeat a flow of its chain"
            if cycle and not problem
            else ""
        )
        condition = {
            "type": "Valid",
            "status": "False" if problem else "True",
            "reason": "Invalid" if problem else "Planned",
            "message": (problem or f"{tasks} tasks{warning}")[:1024],
            "lastTransitionTime": rfc3339(datetime.now(UTC)),
            "observedGeneration": generation,
        }
        result = {"conditions": [condition], "taskCount": tasks, "observedGeneration": generation}
        self.validity[key] = (version, result)
        if problem:
            await self.kube.event(body, "Flow", "Invalid", problem, warning=True)
        elif warning:
            await self.kube.event(
                body, "Flow", "FlowCycle", warning.removeprefix("; warning: "), warning=True
            )
        return result

    async def _cycle(self, namespace: str, flow: Flow) -> tuple[str, ...] | None:
        """A chain of flows of the namespace that leads from `flow` back to itself through
        flow nodes and hooks (a static cycle: its runs fail where it would repeat)."""
        if not child_flows(flow.spec.model_dump(by_alias=True)):
            return None
        bodies = await self.kube.list("flows", namespace, "")
        children = {
            str(body["metadata"]["name"]): child_flows(body.get("spec") or {}) for body in bodies
        }
        children[flow.metadata.name or ""] = child_flows(flow.spec.model_dump(by_alias=True))
        return flow_cycle(flow.metadata.name or "", children)


def child_flows(spec: dict[str, Any]) -> list[str]:
    """The flows a Flow spec (wire form) starts from its flow nodes and hooks."""
    nodes = list(spec.get("nodes") or [])
    for hooks in (spec.get("hooks") or {}).values():
        nodes += hooks or []
    return [
        str(node["flow"]["name"])
        for node in nodes
        if isinstance(node, dict)
        and isinstance(node.get("flow"), dict)
        and node["flow"].get("name")
    ]

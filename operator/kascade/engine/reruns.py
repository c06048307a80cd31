"""Rerun planning: which tasks of the original run a rerun takes over unchanged (REUSED)."""

from __future__ import annotations

from collections.abc import Mapping

from kascade.api import RunType, TaskPhase
from kascade.engine.errors import KascadeError
from kascade.engine.graph import Graph
from kascade.engine.plan import Plan
from kascade.engine.statemachine import TASK_SUCCESSFUL


class RerunError(KascadeError):
    """A rerun that cannot be made (unknown task, wrong type)."""


def reused_tasks(
    plan: Plan,
    original: Mapping[str, TaskPhase],
    kind: RunType,
    task: str | None = None,
    downstream: bool = False,
) -> set[str]:
    """Task ids a rerun reuses. RERUN_ALL: none. RERUN_FAILED: those that succeeded (or
    were reused) in the original. RERUN_TASK: all but `task` (and, with `downstream`, its
    descendants). Hooks are never reused; they run again for the rerun's own outcome."""
    ids = [t.id for t in plan.tasks]
    if kind == RunType.RERUN_ALL:
        return set()
    if kind == RunType.RERUN_FAILED:
        return {i for i in ids if original.get(i) in TASK_SUCCESSFUL}
    if kind != RunType.RERUN_TASK:
        raise RerunError(f"{kind.value} is not a rerun type")
    if task is None or task not in ids:
        raise RerunError(f"task `{task}` is not in the run (tasks: {', '.join(ids) or 'none'})")
    rerun = {task}
    if downstream:
        graph = Graph({t.id: list(t.depends_on) for t in plan.tasks})
        rerun |= graph.descendants([task])
    return set(ids) - rerun

"""Reruns: whether a run may be rerun (the same rule for the cluster, the CLI and local
runs), which of its tasks a rerun takes over unchanged (REUSED), and what a reused task
says about where its result comes from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kascade.api import RunPhase, RunType, TaskPhase
from kascade.engine.errors import KascadeError
from kascade.engine.graph import Graph
from kascade.engine.plan import Plan
from kascade.engine.statemachine import TASK_SUCCESSFUL, run_is_terminal

REUSED_REASON = "Reused"


class RerunError(KascadeError):
    """A rerun that cannot be made (unfinished run, unknown task, wrong type)."""


def check_rerunnable(run: str, phase: RunPhase | None) -> None:
    """RerunError unless the run has finished: a rerun of a run still in progress would
    run beside it on the same warehouse."""
    if not run_is_terminal(phase):
        shown = phase.value if phase is not None else "not started"
        raise RerunError(
            f"run `{run}` is {shown}; only a finished run can be rerun "
            "(wait for it to end, or abort it first)"
        )


def check_rerun_task(run: str, task: str | None, task_ids: Sequence[str]) -> None:
    """RerunError unless `task` (of a RERUN_TASK) is a task of the run."""
    if task is None or task not in task_ids:
        listed = ", ".join(sorted(task_ids)) or "none"
        raise RerunError(f"run `{run}` has no task `{task}` (tasks: {listed})")


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


@dataclass(frozen=True)
class Reuse:
    """A REUSED task of a rerun: where its result was made, and what it says."""

    reused_from: str
    reason: str
    message: str


def reuse(original_run: str, reused_from_before: str | None) -> Reuse:
    """A task a rerun of `original_run` reuses. A task the original itself reused names
    the run that made the result (a rerun of a rerun points at the first run)."""
    origin = reused_from_before or original_run
    return Reuse(origin, REUSED_REASON, f"result of run {origin}")

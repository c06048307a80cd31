"""Running one dbt resource task (model, seed, snapshot, test) with dbt-core itself,
in-process through `dbtRunner`, with the dbt adapter of the task's warehouse.

The task gets a profile of its own (dbtprofile.py) in a temporary folder, removed at the
end; dbt's console output is the task's log; its results become the task's outputs or its
one-line error (dbtresults.py).

An embedded DuckDB warehouse admits one writing process at a time, so a task holds the
warehouse's lock (warehouselock.py) for its whole invocation. This serializes the dbt
tasks of a DuckDB warehouse that run this way (the parse included); the warm dbt worker
(dbtworker.py) runs them concurrently in one process instead, and shares `interpret`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kascade.runtime import dbtargs, dbtresults
from kascade.runtime.dbtprofile import write_profiles
from kascade.runtime.dbtstop import stoppable
from kascade.runtime.errors import TaskError, Terminated
from kascade.runtime.warehouselock import warehouse_lock

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt_common.events.base_types import EventMsg


class DbtTaskError(TaskError):
    """A dbt resource that failed, or a dbt invocation that could not run."""


@dataclass
class Watcher:
    """Collects the few dbt events the results do not carry."""

    nothing_to_do: list[str] = field(default_factory=list)
    ephemeral: list[str] = field(default_factory=list)

    def __call__(self, event: EventMsg) -> None:
        name = event.info.name
        if name in ("NoNodesForSelectionCriteria", "NothingToDo"):
            # dbt's EventInfo protocol leaves out the text its messages carry
            self.nothing_to_do.append(str(getattr(event.info, "msg", name)))
        elif name == "NodeStart" and event.data.node_info.materialized == "ephemeral":
            self.ephemeral.append(event.data.node_info.node_name)


def run_dbt(
    kind: str, name: str, args: Sequence[str], project_dir: str, warehouse_url: str
) -> dict[str, Any]:
    """Run the dbt resource(s) of a task; returns its outputs, raises DbtTaskError with one
    line when a resource or dbt fails, CannotStart when the arguments are not allowed."""
    selection = dbtargs.selection_args(kind, name, args)
    with tempfile.TemporaryDirectory(prefix="kascade-dbt-") as folder:
        write_profiles(folder, warehouse_url)
        argv = dbtargs.command(
            kind, selection, os.path.abspath(project_dir), folder, os.path.join(folder, "logs")
        )
        watcher = Watcher()
        with warehouse_lock(warehouse_url):
            outcome = _invoke(argv, watcher, lambda: shutil.rmtree(folder, ignore_errors=True))
    return interpret(kind, name, selection, outcome, watcher)


def _invoke(argv: list[str], watcher: Watcher, cleanup: Callable[[], None]) -> dbtRunnerResult:
    from dbt.cli.main import dbtRunner

    with stoppable(cleanup) as stop:
        outcome = dbtRunner(callbacks=[watcher]).invoke(argv)
    if stop.requested.is_set():
        # dbtRunner turns every exception into a result, SIGTERM's too (or whatever its
        # unwinding raised after it): stop all the same.
        raise Terminated
    if isinstance(outcome.exception, KeyboardInterrupt):
        raise outcome.exception  # Ctrl-C: interrupted, as any Python program is
    return outcome


def interpret(
    kind: str, name: str, selection: list[str], outcome: dbtRunnerResult, watcher: Watcher
) -> dict[str, Any]:
    """The outputs of a task's dbt outcome; DbtTaskError with one line when it failed or
    selected nothing (the one-shot runtime and the warm worker, dbtworker.py, share it)."""
    verb = dbtargs.VERBS[kind]
    if outcome.exception is not None:
        raise DbtTaskError(dbtresults.exception_message(outcome.exception, verb))
    results: list[dbtresults.Result] = list(getattr(outcome.result, "results", None) or [])
    failures = dbtresults.failed(results)
    if failures:
        raise DbtTaskError(dbtresults.failure_message(failures))
    if not outcome.success:
        raise DbtTaskError(f"dbt {verb} failed (its log above says why)")
    if not results:
        return _without_results(kind, selection, watcher)
    if kind == "test":
        return dbtresults.outputs_of_tests(results)
    return dbtresults.resource_outputs(results, name)


def _without_results(kind: str, selection: list[str], watcher: Watcher) -> dict[str, Any]:
    """A task whose dbt ran nothing: fine for an ephemeral model (dbt inlines it into the
    models that ref it); otherwise the engine asked for a resource that is not there."""
    if kind == "model" and watcher.ephemeral and not watcher.nothing_to_do:
        return {"materialized": "ephemeral"}
    reason = watcher.nothing_to_do[0] if watcher.nothing_to_do else "no resource ran"
    raise DbtTaskError(f"dbt selected nothing for `{shlex.join(selection)}`: {reason}")

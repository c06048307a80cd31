"""The warm dbt session of the worker (dbtworker.py): a dbt project set up once as one
`dbt run` invocation would (flags, profile, project, RuntimeConfig, adapter, parse,
compiled graph), and the execution of one task's dbt resources on it.

A request runs in a thread of its own, the way a thread of dbt's pool runs a node: dbt's
task class of its kind (RunTask, SeedTask, SnapshotTask, TestTask) selects its nodes on
the shared graph with dbt's selector (so `--select`, `--exclude`, `--indirect-selection`
mean what they mean to dbt), and dbt's runner of each node compiles and materializes it
(dbtworker_nodes.py). Only dbt's graph queue across tasks is replaced, by the host's.
Shared state (flags, adapter, manifest, graph) is created once here and read by the
requests; what the worker adds to it is guarded by locks.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import yaml

from kascade.runtime import dbtargs, dbtresults
from kascade.runtime.dbt import Watcher, interpret
from kascade.runtime.dbtprofile import write_profiles
from kascade.runtime.dbtworker_commands import CommandParser
from kascade.runtime.dbtworker_nodes import run_end_hooks, run_nodes, run_start_hooks, skip_nodes
from kascade.runtime.dbtworker_threads import ThreadFlags, ThreadRouter, ThreadSelection
from kascade.runtime.dbtworker_warehouse import WarehouseHold
from kascade.runtime.errors import CannotStart, TaskError

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

_TASKS = {
    "model": ("dbt.task.run", "RunTask"),
    "seed": ("dbt.task.seed", "SeedTask"),
    "snapshot": ("dbt.task.snapshot", "SnapshotTask"),
    "test": ("dbt.task.test", "TestTask"),
}

# Where dbt keeps what a selection can return (GraphRunnableTask._runtime_initialize).
_RESOURCES = ("nodes", "sources", "saved_queries", "unit_tests", "exposures", "functions")


class SessionError(Exception):
    """The project cannot be set up (parse error, unusable profile): one line."""


class Stopped(TaskError):
    """A request cancelled while it ran."""

    exit_code = 143


class Session:
    """One dbt project on one warehouse with one set of vars, ready to run requests."""

    def __init__(
        self, project: str, warehouse_url: str, vars_text: str | None, threads: int
    ) -> None:
        self.project = os.path.abspath(project)
        self.vars_text = vars_text
        self.vars = _parse_vars(vars_text)
        self.router = ThreadRouter()
        self.selection = ThreadSelection()
        self._folder = tempfile.mkdtemp(prefix="kascade-dbtworker-")
        self._select_lock = threading.Lock()
        self._hooks_lock = threading.Lock()
        self._context: Any = None
        self._hold: WarehouseHold | None = None
        try:
            # keep_open: the database stays open for a burst; the hold closes it after one
            write_profiles(self._folder, warehouse_url, {"threads": threads, "keep_open": True})
            loaded = self._load()
            self.config: Any = loaded["runtime_config"]
            self.manifest: Any = loaded["manifest"]
            self.flags = ThreadFlags(loaded["flags"])
            self._install_globals()
            self.adapter: Any = _adapter(self.config)
            self.graph: Any = self._compile()
            self.commands = CommandParser(self.project, self._folder)
        except BaseException as err:
            self.close()
            if isinstance(err, TaskError):
                raise SessionError(str(err)) from err
            if isinstance(err, Exception):
                raise SessionError(dbtresults.exception_message(err, "parse")) from err
            raise
        self._hold = WarehouseHold(warehouse_url, self.adapter, self.config, self.manifest)

    @property
    def hold(self) -> WarehouseHold:
        assert self._hold is not None, "the session is set up"
        return self._hold

    def _argv(self, kind: str, selection: Sequence[str]) -> list[str]:
        logs = os.path.join(self._folder, "logs")
        return dbtargs.command(kind, selection, self.project, self._folder, logs)

    def _load(self) -> dict[str, Any]:
        """What `dbt run` sets up before it runs nodes, by dbt's own steps (dbt.cli.requires):
        flags, logging, tracking, profile, project, catalogs, RuntimeConfig, then the parse
        (partial when target/partial_parse.msgpack allows) that registers the adapter."""
        from dbt.cli import requires
        from dbt.cli.flags import args_to_context
        from dbt_common.events.functions import capture_stdout_logs

        # dbt's console logger writes to the router: a request's lines go to its log
        capture_stdout_logs(self.router)  # type: ignore[arg-type]
        argv = self._argv("model", ["--vars", self.vars_text] if self.vars_text else [])
        context = args_to_context(argv)
        context.obj = {"callbacks": [self.router.on_event], "dbt_runner_command_args": argv}
        self._context = context
        load: Any = _loaded_objects
        steps: tuple[Any, ...] = (
            requires.manifest,
            requires.runtime_config,
            requires.catalogs,
            requires.project,
            requires.profile,
            requires.preflight,
        )
        for step in steps:
            load = step(load)
        loaded: dict[str, Any] = load(context)
        return loaded

    def _install_globals(self) -> None:
        """From here on dbt's per-invocation globals are per thread (dbtworker_threads)."""
        from dbt import selected_resources
        from dbt.flags import set_flags

        set_flags(self.flags)  # type: ignore[no-untyped-call]
        self.config.args = self.flags
        selected_resources.SELECTED_RESOURCES = self.selection

    def _compile(self) -> Any:
        """The graph dbt's task compiles once per invocation (`compile_manifest`)."""
        from dbt.compilation import Compiler
        from dbt.task import group_lookup

        graph = Compiler(self.config).compile(self.manifest)
        group_lookup.init(self.manifest, set(self.manifest.nodes))
        return graph

    def run(
        self, kind: str, name: str, args: Sequence[str], log: IO[str], stop: threading.Event
    ) -> dict[str, Any]:
        """Run a task's dbt resources in the calling thread, its dbt output going to `log`;
        returns its outputs. Raises CannotStart (arguments), DbtTaskError (dbt's verdict)
        or Stopped (when `stop` was set meanwhile)."""
        selection = dbtargs.selection_args(kind, name, args)
        self._check_vars(kind, name, selection)
        flags = self.commands.flags(self._argv(kind, selection))
        watcher = Watcher()
        with self.router.bound(log, watcher), self.flags.bound(flags):
            try:
                outcome = self._invoke(kind, flags, stop)
            finally:
                self.selection.clear_thread()
        if stop.is_set():
            raise Stopped(f"{kind} `{name}` stopped")
        return interpret(kind, name, selection, outcome, watcher)

    def _check_vars(self, kind: str, name: str, selection: Sequence[str]) -> None:
        given = _vars_arg(selection)
        if _parse_vars(given) != self.vars:
            raise CannotStart(
                f"{kind} `{name}`: dbt vars {given or '(none)'} differ from the worker's "
                f"({self.vars_text or 'none'}); a worker runs one set of vars"
            )

    def _invoke(self, kind: str, flags: Any, stop: threading.Event) -> dbtRunnerResult:
        """The request as one dbt invocation: dbt's result, or the exception it raised."""
        from dbt.cli.main import dbtRunnerResult
        from dbt_common.events.contextvars import task_contextvars

        try:
            with task_contextvars(project_root=self.config.project_root):
                task = self._task(kind, flags)
                result = self._execute(task, stop)
        except TaskError:
            raise  # the worker's own (the warehouse's folder is gone): its message as it is
        except Exception as err:
            return dbtRunnerResult(success=False, exception=err)
        return dbtRunnerResult(success=task.interpret_results(result.results), result=result)

    def _task(self, kind: str, flags: Any) -> Any:
        """dbt's task of the kind, on the shared manifest and graph, with its nodes
        selected: what `_runtime_initialize` does, without compiling the graph again."""
        module, name = _TASKS[kind]
        task = getattr(importlib.import_module(module), name)(flags, self.config, self.manifest)
        task.graph = self.graph
        with self._select_lock:  # dbt selects once per invocation: one request at a time
            selected = self._select(task)
        self.selection.bind(selected)
        task._flattened_nodes = [self._node(uid) for uid in sorted(selected)]
        task.num_nodes = len([n for n in task._flattened_nodes if not n.is_ephemeral_model])
        return task

    def _select(self, task: Any) -> set[str]:
        """dbt's selection (`NodeSelector.get_selected`); several nodes get dbt's graph
        queue over them (`NodeSelector.get_graph_queue`), a single one needs none."""
        from dbt.graph.queue import GraphQueue
        from dbt.task.runnable import GraphRunnableMode

        selector = task.get_node_selector()
        selected: set[Any] = set(selector.get_selected(task.get_selection_spec()))
        if len(selected) > 1:
            subset = selector.full_graph.get_subset_graph(selected)
            preserve = task.get_run_mode() != GraphRunnableMode.Independent
            task.job_queue = GraphQueue(subset.graph, self.manifest, selected, preserve)
        return {str(uid) for uid in selected}

    def _node(self, uid: str) -> Any:
        """A selected resource of the manifest, where `_runtime_initialize` looks for it."""
        for kind in _RESOURCES:
            found = getattr(self.manifest, kind).get(uid)
            if found is not None:
                return found
        raise CannotStart(f"dbt selected {uid}, which the worker cannot run")

    def _execute(self, task: Any, stop: threading.Event) -> Any:
        """Run the selected nodes, as `GraphRunnableTask.run` does with one thread; the
        console lines (START, OK, the summary) are dbt's."""
        from dbt.events.types import NothingToDo
        from dbt_common.events.functions import warn_or_error

        started = time.time()
        if not task._flattened_nodes:
            warn_or_error(NothingToDo())
            return task.get_result(results=[], elapsed_time=0.0, generated_at=_now())
        with self._warehouse(task):
            if run_start_hooks(task, self.adapter, self._hooks_lock):
                run_nodes(task, stop)
            else:
                skip_nodes(task)
            run_end_hooks(task, self.adapter, self._hooks_lock)
        elapsed = time.time() - started
        task.print_results_line(task.node_results, elapsed)
        result = task.get_result(
            results=task.node_results, elapsed_time=elapsed, generated_at=_now()
        )
        task.task_end_messages(result.results)
        return result

    @contextmanager
    def _warehouse(self, task: Any) -> Iterator[None]:
        """The warehouse held, and the schemas of the selected nodes there (dbt's
        `get_model_schemas`), for the duration of the block."""
        self.hold.enter()
        try:
            selected = {node.unique_id for node in task._flattened_nodes}
            self.hold.ensure_schemas(task.get_model_schemas(self.adapter, selected))
            yield
        finally:
            self.adapter.release_connection()
            self.hold.leave()

    def cancel(self, thread: threading.Thread) -> None:
        """Cancel the query a request's thread runs now."""
        self.hold.cancel(thread)

    def close(self) -> None:
        """Let the warehouse go, release dbt (its adapters, through the invocation's
        context) and remove the profile."""
        try:
            if self._hold is not None:
                self._hold.release()
            if self._context is not None:
                self._context.close()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def _loaded_objects(context: Any) -> dict[str, Any]:
    objects: dict[str, Any] = context.obj
    return objects


def _adapter(config: Any) -> Any:
    from dbt.adapters.factory import get_adapter

    return get_adapter(config)


def _vars_arg(args: Sequence[str]) -> str | None:
    for index, arg in enumerate(args):
        if arg == "--vars" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--vars="):
            return arg.split("=", 1)[1]
    return None


def _parse_vars(text: str | None) -> Any:
    """Vars as dbt reads them (YAML, JSON included); unreadable text stays text."""
    if not text:
        return {}
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return text


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

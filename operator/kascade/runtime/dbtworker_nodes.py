"""Running the nodes one request of the warm worker selected, with dbt's task and runners:
in dependency order, each through `GraphRunnableTask.call_runner` (which fires dbt's
NodeStart and NodeFinished and calls the runner's `run_with_hooks`: compile, materialize,
release the connection), as one thread of dbt's pool runs them; and the project's
on-run-start and on-run-end hooks around them, once per request as in the one-shot runtime.

The hooks of concurrent requests run one request at a time (`hooks_lock`): in the one-shot
runtime the warehouse lock keeps them apart, and two at once (a `create table if not
exists` in both) would conflict in the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


def run_nodes(task: Any, stop: threading.Event) -> None:
    """Run the task's selected nodes until they are done or the request is stopped; the
    results land in `task.node_results` (dbt's `_handle_result`)."""
    from dbt.task.run import MicrobatchModelRunner

    pool = None
    try:
        for node in _in_order(task):
            if stop.is_set():
                break
            runner = task.get_runner(node)
            if node.unique_id in task._skipped_children:
                runner.do_skip(cause=task._skipped_children.pop(node.unique_id))
            if isinstance(runner, MicrobatchModelRunner):
                pool = pool or _one_thread_pool()
                runner.set_parent_task(task)
                runner.set_pool(pool)
            task._handle_result(task.call_runner(runner))
    finally:
        if pool is not None:
            pool.close()


def _in_order(task: Any) -> Iterator[Any]:
    """The selected nodes, each after the nodes it depends on: dbt's graph queue when the
    request selected several (then a node is marked done once its caller ran it)."""
    queue = task.job_queue
    if queue is None:
        yield from task._flattened_nodes
        return
    while not queue.empty():
        node = queue.get()
        yield node
        queue.mark_done(node.unique_id)


def _one_thread_pool() -> Any:
    """A microbatch model's batches need a pool; with one thread dbt runs them in order in
    the calling thread, as a one-thread `dbt run` does."""
    from dbt.graph.thread_pool import DbtThreadPool

    return DbtThreadPool(1)  # type: ignore[no-untyped-call]


def run_start_hooks(task: Any, adapter: Any, hooks_lock: threading.Lock) -> bool:
    """The project's on-run-start hooks (none: nothing to do); False when they failed and
    dbt is told to skip the nodes then (`skip_nodes_if_on_run_start_fails`)."""
    from dbt.artifacts.schemas.results import RunStatus
    from dbt.flags import get_flags
    from dbt.node_types import RunHookType  # type: ignore[attr-defined]

    if not task.get_hooks_by_type(RunHookType.Start):
        return True
    with hooks_lock, adapter.connection_named("master"):
        status = task.safe_run_hooks(adapter, RunHookType.Start, {})
    skip: bool = get_flags().skip_nodes_if_on_run_start_fails  # type: ignore[no-untyped-call]
    return bool(status == RunStatus.Success or not skip)


def run_end_hooks(task: Any, adapter: Any, hooks_lock: threading.Lock) -> None:
    """The project's on-run-end hooks, with the request's results (dbt's `after_run`)."""
    from dbt.node_types import RunHookType  # type: ignore[attr-defined]

    if task.get_hooks_by_type(RunHookType.End):
        with hooks_lock:
            task.after_run(adapter, task.node_results)


def skip_nodes(task: Any) -> None:
    """Every selected node skipped, as dbt records them when its on-run-start failed."""
    from dbt.task.runnable import mark_node_as_skipped

    for node in task._flattened_nodes:
        task.node_results.append(mark_node_as_skipped(node, set(), None))

"""The errors of the runtime: a task that cannot run or fails, with its message, and a
task told to stop."""

from __future__ import annotations


class TaskError(Exception):
    """A task failure the runtime reports as one line, with the exit code to use."""

    exit_code = 1


class CannotStart(TaskError):
    """The task could not even start (missing script, unusable configuration)."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """The container was told to stop (SIGTERM: the Job was deleted, its deadline passed, or
    the run was aborted). Not an Exception, so a script's `except Exception` cannot swallow
    it; the runtime exits with 143, as a shell does for a process ended by SIGTERM.

    A KeyboardInterrupt, because that is what dbt stops gracefully on: it cancels the
    warehouse query in flight (DuckDB's interrupt) before it closes its connections, where
    any other exception would leave the query running and the process crashing at exit."""

    exit_code = 143


def raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM handler. Needed because the runtime is PID 1 in its container, and the
    kernel ignores a signal PID 1 has no handler for."""
    raise Terminated

"""The one error type of the runtime: a task that cannot run or fails, with its message."""

from __future__ import annotations


class TaskError(Exception):
    """A task failure the runtime reports as one line, with the exit code to use."""

    exit_code = 1


class CannotStart(TaskError):
    """The task could not even start (missing script, unusable configuration)."""

    exit_code = 2

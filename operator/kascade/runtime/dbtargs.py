"""The dbt command line of a task: the verb of its kind, the selection the engine chose
(checked against the few flags a task may pass) and the flags that keep dbt inside the
task's folders and off the network."""

from __future__ import annotations

from collections.abc import Sequence

from kascade.runtime.dbtprofile import PROFILE, TARGET
from kascade.runtime.errors import CannotStart

VERBS = {"model": "run", "seed": "seed", "snapshot": "snapshot", "test": "test"}

# Flags that take one or more values (the other value flags take exactly one).
_SELECTING = frozenset({"--select", "-s", "--exclude"})
_FULL_REFRESH = "--full-refresh"
# dbt's snapshot and test commands have no --full-refresh.
_REFRESHABLE = frozenset({"model", "seed"})
ALLOWED_FLAGS = ("--select", "-s", "--exclude", "--indirect-selection", "--vars", _FULL_REFRESH)


def selection_args(kind: str, name: str, args: Sequence[str]) -> list[str]:
    """The selection arguments for dbt: `args` once checked, `--select NAME` when they select
    nothing themselves. CannotStart names a flag a task may not pass."""
    checked = _check(kind, name, list(args))
    if not any(_flag_name(token) in ("--select", "-s") for token in checked):
        checked = ["--select", name, *checked]
    return checked


def _flag_name(token: str) -> str:
    return token.split("=", 1)[0] if token.startswith("--") else token


def _is_flag(token: str) -> bool:
    return token.startswith("-") and token != "-"


def _check(kind: str, name: str, args: list[str]) -> list[str]:
    index = 0
    while index < len(args):
        token = args[index]
        if not _is_flag(token):
            raise CannotStart(f"{kind} `{name}`: unexpected dbt argument {token!r}")
        flag = _allowed_flag(kind, name, token)
        index += 1
        if flag == _FULL_REFRESH:
            continue
        if "=" not in token:
            if index == len(args) or _is_flag(args[index]):
                raise CannotStart(f"{kind} `{name}`: dbt flag `{flag}` needs a value")
            index += 1
        while flag in _SELECTING and index < len(args) and not _is_flag(args[index]):
            index += 1  # dbt takes space-separated selectors after one --select
    return args


def _allowed_flag(kind: str, name: str, token: str) -> str:
    """The flag of a token; CannotStart when a task may not pass it."""
    flag = _flag_name(token)
    if flag not in ALLOWED_FLAGS:
        allowed = ", ".join(ALLOWED_FLAGS)
        raise CannotStart(
            f"{kind} `{name}`: dbt flag `{flag}` is not allowed in a task (allowed: {allowed})"
        )
    if flag == _FULL_REFRESH and ("=" in token or kind not in _REFRESHABLE):
        raise CannotStart(f"{kind} `{name}`: dbt flag `{token}` does not apply to a {kind}")
    return flag


def command(
    kind: str, selection: Sequence[str], project_dir: str, profiles_dir: str, log_dir: str
) -> list[str]:
    """The whole dbt command line (without the leading `dbt`) of a task."""
    # with one invocation per task, manifest.json and run_results.json would hold one
    # resource; the Run's status holds every result
    return [
        VERBS[kind],
        *selection,
        *invocation_flags(project_dir, profiles_dir, log_dir),
        "--no-write-json",
    ]


def invocation_flags(project_dir: str, profiles_dir: str, log_dir: str) -> list[str]:
    """The flags every dbt invocation of kascade's takes: its project, kascade's own
    profile, its log folder, partial parsing, and nothing sent over the network."""
    return [
        "--project-dir",
        project_dir,
        "--profiles-dir",
        profiles_dir,
        "--profile",
        PROFILE,
        "--target",
        TARGET,
        # dbt's log file is not needed: its console output is the task's log.
        "--log-path",
        log_dir,
        "--log-level-file",
        "none",
        # the second task on a project reuses target/partial_parse.msgpack
        "--partial-parse",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
    ]

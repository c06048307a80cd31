"""`python -m kascade.runtime KIND NAME [-- ARGS...]`: run one task and exit with its code.

KIND is a dbt resource kind (model, seed, snapshot, test: dbt runs it, see dbt.py), script
or connector; the environment carries the rest (contract.py). For a dbt kind, ARGS are the
dbt selection the engine chose (default `--select NAME`).
Exit codes: a script's own code; 1 when a dbt resource or connector fails; 2 when the task
cannot start (unknown script or connector, a dbt flag a task may not pass, unusable
configuration); 143 when it was stopped by SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from kascade.contract.env import PROJECT_ARCHIVE
from kascade.runtime import contract
from kascade.runtime.errors import CannotStart, TaskError, Terminated, raise_terminated

DBT_KINDS = ("model", "seed", "snapshot", "test")
KINDS = (*DBT_KINDS, "script", "connector")
USAGE = f"usage: python -m kascade.runtime {{{'|'.join(KINDS)}}} NAME [-- ARGS...]"


def main(argv: list[str]) -> int:
    """Run the task; a failure is one clear line on stderr and an exit code."""
    if len(argv) < 2 or argv[0] not in KINDS:
        print(USAGE, file=sys.stderr)
        return CannotStart.exit_code
    kind, name, rest = argv[0], argv[1], argv[2:]
    args = rest[1:] if rest[:1] == ["--"] else rest
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        _unpack_project()
        outputs = _execute(kind, name, args, contract.project_dir())
        from kascade.runtime.outputs import publish_outputs, read_written_outputs

        publish_outputs({**outputs, **read_written_outputs()})
    except TaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        print(f"error: {kind} `{name}` stopped by SIGTERM", file=sys.stderr)
        return Terminated.exit_code
    return 0


class _ScriptFailed(TaskError):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"script `{name}` exited with code {code}")
        self.exit_code = code


def _unpack_project() -> None:
    """In a pod the project arrives packed (ConfigMap volume): unpack it first."""
    import os

    archive = os.environ.get(PROJECT_ARCHIVE)
    if not archive:
        return
    from pathlib import Path

    from kascade.contract.archive import ArchiveError, unpack

    try:
        packed = Path(archive).read_bytes()
    except OSError as err:
        raise CannotStart(f"cannot read the project archive {archive}: {err}") from err
    try:
        unpack(packed, Path(contract.project_dir()))
    except ArchiveError as err:
        raise CannotStart(str(err)) from err
    from kascade.runtime.dbtparsestate import restore_parse_state

    note = restore_parse_state(contract.project_dir())
    if note is not None:
        print(note, file=sys.stderr, flush=True)


def _execute(kind: str, name: str, args: list[str], project: str) -> dict[str, Any]:
    """Run the task; returns the outputs it produces by itself."""
    if kind == "script":
        from kascade.runtime.scripts import run_script

        code = run_script(project, name, args)
        if code != 0:
            raise _ScriptFailed(name, code)
        return {}
    if kind in DBT_KINDS:
        from kascade.runtime.dbt import run_dbt

        return run_dbt(kind, name, args, project, contract.warehouse_url())
    from kascade.runtime.connectors import run_connector
    from kascade.runtime.warehouselock import warehouse_lock

    with warehouse_lock(contract.warehouse_url()):
        return run_connector(project, name, contract.warehouse_url())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

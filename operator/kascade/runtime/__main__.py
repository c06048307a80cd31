"""`python -m kascade.runtime KIND NAME [-- ARGS...]`: run one task and exit with its code.

KIND is model, script or connector; the environment carries the rest (contract.py).
Exit codes: a script's own code; 1 when a model or connector fails; 2 when the task
cannot start (unknown script or connector, unusable configuration); 143 when it was
stopped by SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from kascade.contract.env import PROJECT_ARCHIVE
from kascade.runtime import contract
from kascade.runtime.errors import CannotStart, TaskError, Terminated, raise_terminated

USAGE = "usage: python -m kascade.runtime {model|script|connector} NAME [-- ARGS...]"


def main(argv: list[str]) -> int:
    """Run the task; a failure is one clear line on stderr and an exit code."""
    if len(argv) < 2 or argv[0] not in ("model", "script", "connector"):
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


def _execute(kind: str, name: str, args: list[str], project: str) -> dict[str, Any]:
    """Run the task; returns the outputs it produces by itself."""
    if kind == "script":
        from kascade.runtime.scripts import run_script

        code = run_script(project, name, args)
        if code != 0:
            raise _ScriptFailed(name, code)
        return {}
    if kind == "model":
        from kascade.runtime.models import build_model

        return build_model(project, name, contract.warehouse_url())
    from kascade.runtime.connectors import run_connector

    return run_connector(project, name, contract.warehouse_url())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

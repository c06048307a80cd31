"""Running one script package, scripts/<name>/__main__.py, as `python scripts/<name>` would."""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Sequence

from kascade.runtime.errors import CannotStart, Terminated


class ScriptNotFound(CannotStart):
    """The project has no such script package."""


def script_folder(project_dir: str, name: str) -> str:
    """The package folder of a script; ScriptNotFound names the missing file."""
    folder = os.path.join(project_dir, "scripts", name)
    entry = os.path.join(folder, "__main__.py")
    if not os.path.isfile(entry):
        raise ScriptNotFound(
            f"script `{name}` not found: scripts/{name}/__main__.py does not exist in {project_dir}"
        )
    root = os.path.realpath(project_dir)
    if not os.path.realpath(entry).startswith(root + os.sep):
        raise ScriptNotFound(
            f"script `{name}`: scripts/{name}/__main__.py links outside the project "
            f"(to {os.path.realpath(entry)})"
        )
    return folder


def run_script(project_dir: str, name: str, args: Sequence[str]) -> int:
    """Run the script with `args` as sys.argv[1:]; its exit code (an exception: 1)."""
    folder = script_folder(project_dir, name)
    sys.argv = [os.path.join(folder, "__main__.py"), *args]
    try:
        runpy.run_path(folder, run_name="__main__")
    except SystemExit as exit_:
        return _exit_code(exit_.code)
    except Terminated:
        raise
    except BaseException:  # the script's own error: its traceback belongs in the task log
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1

"""dbt's parse state travelling with a pushed project, so that a task pod does not parse
the whole project again, and the operator's planner has dbt's word on computed refs.

`kascade project push` unpacks the archive it is about to store into a scratch folder,
runs `dbt parse` there with the profile the tasks will have, and adds to the archive,
under `.kascade-push/dbt/`: dbt's partial-parse file (`target/partial_parse.msgpack`),
the folder it was parsed in, and the part of dbt's manifest the planner reads.

A task pod unpacks the project somewhere else: before dbt starts, the runtime moves the
file's paths to its own folder (dbt keeps the project's absolute path in it, and reads
seed files through it) and puts it where dbt looks. dbt itself then decides whether the
state still holds (same dbt version, `--vars`, profile, `dbt_project.yml`s and file
contents) and parses again when it does not: the state can make a task faster, never
different.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kascade.contract.archive import MAX_ARCHIVE_BYTES, ArchiveError, pack, unpack
from kascade.engine.dbtmanifest import MANIFEST, PUSHED_MANIFEST, slim_manifest
from kascade.runtime import dbtargs, dbtresults
from kascade.runtime.dbtprofile import write_profiles
from kascade.runtime.errors import TaskError

STATE_DIR = ".kascade-push/dbt"
STATE_FILE = "partial_parse.msgpack"
ORIGIN_FILE = "origin.json"
DBT_STATE = "target/partial_parse.msgpack"  # where dbt reads it (default target-path)


class ParseStateError(TaskError):
    """dbt could not parse the project; the message is dbt's first line."""


def parse_state(project: Path, warehouse_url: str, folder: str) -> dict[str, bytes]:
    """The archive members holding dbt's parse state of an unpacked project (its
    partial-parse file and the planner's slim manifest), made with the profile of
    `warehouse_url` in `folder`; empty when it is not a dbt project. ParseStateError
    carries dbt's error when dbt cannot parse it."""
    if not (project / "dbt_project.yml").is_file():
        return {}
    write_profiles(folder, warehouse_url)
    _parse(str(project), folder)
    state = (project / DBT_STATE).read_bytes()
    try:
        document = json.loads((project / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ParseStateError(f"dbt parse wrote no readable {MANIFEST}: {err}") from err
    origin = {"root": str(project), "dbt": _dbt_version()}
    return {
        f"{STATE_DIR}/{STATE_FILE}": state,
        f"{STATE_DIR}/{ORIGIN_FILE}": json.dumps(origin, sort_keys=True).encode(),
        PUSHED_MANIFEST: json.dumps(slim_manifest(document), sort_keys=True).encode(),
    }


def _parse(project: str, folder: str) -> None:
    from dbt.cli.main import dbtRunner

    # quiet (its error is the push's line) and writing the manifest the planner reads
    argv = ["parse", *dbtargs.invocation_flags(project, folder, os.path.join(folder, "logs"))]
    argv += ["--log-level", "none", "--write-json"]
    outcome = dbtRunner().invoke(argv)
    if outcome.exception is not None:
        raise ParseStateError(dbtresults.exception_message(outcome.exception, "parse"))
    if not outcome.success:
        raise ParseStateError("dbt parse failed")


def _dbt_version() -> str:
    from dbt.version import __version__

    return str(__version__)


def restore_parse_state(project_dir: str) -> str | None:
    """Put a shipped parse state where dbt reads it, its paths moved to `project_dir`;
    returns a line for the task's log when there was one to restore (or why not)."""
    shipped = Path(project_dir) / STATE_DIR
    if not (shipped / STATE_FILE).is_file():
        return None
    target = Path(project_dir) / DBT_STATE
    try:
        origin = json.loads((shipped / ORIGIN_FILE).read_text(encoding="utf-8"))
        root, version = str(origin["root"]), str(origin["dbt"])
        state = relocate((shipped / STATE_FILE).read_bytes(), root, os.path.abspath(project_dir))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(state)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"kascade: the pushed dbt parse state is not usable ({err!r}); dbt parses again"
    return f"kascade: dbt starts from the parse state pushed with the project (dbt {version})"


def relocate(state: bytes, old_root: str, new_root: str) -> bytes:
    """dbt's partial-parse file with every path under `old_root` moved under `new_root`.
    Works on the msgpack structure (maps, lists, strings), not on dbt's classes, so a
    change of dbt's fields cannot break it; ValueError when the file is not msgpack."""
    import msgpack

    try:
        data = msgpack.unpackb(state, raw=False, strict_map_key=False)
    except (msgpack.UnpackException, ValueError) as err:
        raise ValueError(f"not a dbt parse state: {err}") from err
    moved = _moved(old_root.rstrip("/"), new_root.rstrip("/"))
    return bytes(msgpack.packb(_walk(data, moved), use_bin_type=True))


def _moved(old: str, new: str) -> Callable[[str], str]:
    prefix = old + "/"

    def move(text: str) -> str:
        if text == old:
            return new
        if text.startswith(prefix):
            return new + text[len(old) :]
        return text

    return move


def _walk(value: Any, move: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return move(value)
    if isinstance(value, dict):
        return {_walk(key, move): _walk(item, move) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, move) for item in value]
    return value


def pack_with_parse_state(
    directory: Path, warehouse_url: str, max_bytes: int = MAX_ARCHIVE_BYTES
) -> tuple[bytes, str]:
    """The archive `kascade project push` stores: the project with dbt's parse state when
    dbt can parse it and the two fit in a ConfigMap, else the project alone; and a line
    saying which. ArchiveError when the project itself cannot be packed.

    dbt parses the archive's own files, unpacked into a scratch folder, and the archive
    is packed again from there: the state describes exactly the files stored with it."""
    packed = pack(directory)
    with tempfile.TemporaryDirectory(prefix="kascade-parse-") as folder:
        project = Path(folder) / "project"
        unpack(packed, project)
        try:
            state = parse_state(project, warehouse_url, folder)
        except ParseStateError as err:
            return packed, f"no dbt parse state ({err}); each task parses the project"
        if not state:
            return packed, "not a dbt project: no dbt parse state"
        try:
            with_state = pack(project, state)
        except ArchiveError:
            with_state = b""
    if not with_state or len(with_state) > max_bytes:
        return packed, (
            "no dbt parse state: with it the project would not fit in a ConfigMap "
            f"({max_bytes} bytes); each task parses the project"
        )
    size = len(with_state) - len(packed)
    return with_state, f"dbt parse state included ({size} bytes packed)"

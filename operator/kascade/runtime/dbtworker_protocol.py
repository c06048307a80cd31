"""The JSON-lines protocol of the warm dbt worker (dbtworker.py): the requests read from
stdin, checked, and the events written to stdout, each one line written whole."""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

KINDS = ("model", "seed", "snapshot", "test")


@dataclass(frozen=True)
class Run:
    """`{"op": "run", "id", "kind", "name", "args", "log"}`: run a task's dbt resources."""

    id: str
    kind: str
    name: str
    args: list[str]
    log: str


@dataclass(frozen=True)
class Cancel:
    """`{"op": "cancel", "id"}`: stop a running request."""

    id: str


@dataclass(frozen=True)
class Refused:
    """A run request that cannot run: answered at once with exit code 2 and `message`."""

    id: str
    kind: str
    name: str
    message: str


def read_request(line: str) -> Run | Cancel | Refused | None:
    """The request a line holds; None (and a note on stderr) when there is none to answer."""
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("op") not in ("run", "cancel"):
        note(f"not a request: {line.strip()[:200]}")
        return None
    key = message.get("id")
    if not isinstance(key, str):
        note(f"a request without an id: {line.strip()[:200]}")
        return None
    if message["op"] == "cancel":
        return Cancel(key)
    kind, name = message.get("kind"), message.get("name")
    args, log = message.get("args", []), message.get("log")
    problem = _problem(kind, name, args, log)
    if problem is not None:
        return Refused(key, str(kind), str(name), problem)
    return Run(key, str(kind), str(name), list(args), str(log))


def _problem(kind: Any, name: Any, args: Any, log: Any) -> str | None:
    """Why a run request cannot run, None when it can."""
    if kind not in KINDS:
        return f"unknown dbt kind {kind!r} (one of {', '.join(KINDS)})"
    if not isinstance(name, str) or not name:
        return f"{kind}: a request needs a name"
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        return f"{kind} `{name}`: args must be a list of strings"
    if not isinstance(log, str) or not os.path.isabs(log):
        return f"{kind} `{name}`: log must be an absolute path"
    return None


def done(key: str, code: int, message: str | None, outputs: dict[str, Any]) -> dict[str, Any]:
    """The event that answers a request."""
    return {"event": "done", "id": key, "exit": code, "message": message, "outputs": outputs}


class Channel:
    """The protocol's output: one JSON object per line, written whole under a lock."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def take_stdout(cls) -> Channel:
        """Keep the real stdout for the protocol and point file descriptor 1 at stderr, so
        that nothing else (dbt, a library's print) can write a line the host would read."""
        sys.stdout.flush()
        protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)
        return cls(protocol)

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps(event) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


def note(text: str) -> None:
    """A line for the worker's log (stderr)."""
    print(f"dbt worker: {text}", file=sys.stderr, flush=True)

"""What each thread of the warm dbt worker sees as its own dbt invocation: its flags, the
log its dbt console lines go to, and the watcher of its dbt events.

dbt keeps these in process globals (`dbt.flags.GLOBAL_FLAGS`, the event manager's loggers
and callbacks), made for one invocation per process. The worker runs several requests at
once, one thread each, so it installs stand-ins once that look the value up for the
calling thread: a request thread binds its own, every other thread (the worker's setup,
dbt's helper threads) gets the worker's.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbt_common.events.base_types import EventMsg

    from kascade.runtime.dbt import Watcher


class ThreadFlags:
    """Stands in for dbt's global flags: attribute reads go to the flags the calling thread
    bound (its request's `dbt run/seed/snapshot/test` flags), else to the worker's.

    Per-invocation flags that dbt reads from the global rather than from its task (the
    indirect selection of `--select`, `flags.FULL_REFRESH` and `flags.WHICH` in Jinja) thus
    mean, in each request thread, what its own command line says."""

    def __init__(self, base: Any) -> None:
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_local", threading.local())

    def __getattr__(self, name: str) -> Any:
        flags = getattr(self._local, "flags", None)
        return getattr(self._base if flags is None else flags, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # dbt's Flags are frozen; a write here would change every request at once.
        raise AttributeError(f"dbt flags are read-only in the worker ({name})")

    @contextmanager
    def bound(self, flags: Any) -> Iterator[None]:
        """The calling thread sees `flags` for the duration of the block."""
        self._local.flags = flags
        try:
            yield
        finally:
            self._local.flags = None


class ThreadRouter:
    """dbt's console output and events, routed by the thread that produced them.

    The worker gives it to dbt as the console logger's stream: a line written by a request
    thread goes to that request's log file, any other line to stderr (the worker's log).
    `on_event` is the worker's one dbt event callback: it hands an event to the watcher of
    the request whose thread fired it."""

    def __init__(self, fallback: IO[str] | None = None) -> None:
        self._fallback = fallback
        self._local = threading.local()

    @contextmanager
    def bound(self, log: IO[str], watcher: Watcher) -> Iterator[None]:
        """The calling thread's dbt output goes to `log`, its events to `watcher`."""
        self._local.log, self._local.watcher = log, watcher
        try:
            yield
        finally:
            self._local.log = self._local.watcher = None

    def _stream(self) -> IO[str]:
        log: IO[str] | None = getattr(self._local, "log", None)
        return log or self._fallback or sys.stderr

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def on_event(self, event: EventMsg) -> None:
        watcher: Watcher | None = getattr(self._local, "watcher", None)
        if watcher is not None:
            watcher(event)


class ThreadSelection(list[str]):
    """Stands in for dbt's global list of the selected resources
    (`dbt.selected_resources.SELECTED_RESOURCES`, Jinja's `selected_resources`): each
    request thread sees the unique ids its own request selected."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def bind(self, selected: Iterable[str]) -> None:
        self._local.selected = list(selected)

    def clear_thread(self) -> None:
        self._local.selected = []

    def _mine(self) -> list[str]:
        mine: list[str] = getattr(self._local, "selected", [])
        return mine

    def __iter__(self) -> Iterator[str]:
        return iter(self._mine())

    def __len__(self) -> int:
        return len(self._mine())

    def __contains__(self, item: object) -> bool:
        return item in self._mine()

    def __getitem__(self, index: Any) -> Any:
        return self._mine()[index]

    def __bool__(self) -> bool:
        return bool(self._mine())

    def __repr__(self) -> str:
        return repr(self._mine())

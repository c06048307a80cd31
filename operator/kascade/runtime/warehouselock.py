"""The one-writer lock of an embedded DuckDB warehouse: an exclusive `flock` on
`<database file>.lock`, held by a task for as long as it writes.

DuckDB lets one process open a database file for writing at a time, and a second one
fails at once instead of waiting. Tasks that write (dbt invocations, connectors) take
this lock first, so that concurrent tasks on one warehouse wait for each other instead
of failing. The kernel releases it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from kascade.runtime.warehouse import WarehouseError, duckdb_path

IN_MEMORY = ":memory:"


def lock_file(url: str) -> str | None:
    """The lock file of a warehouse URL; None when it needs none (not a DuckDB file)."""
    if urlparse(url).scheme != "duckdb":
        return None
    path = duckdb_path(url)
    if path == IN_MEMORY:
        return None
    return os.path.abspath(path) + ".lock"


@contextmanager
def warehouse_lock(url: str) -> Iterator[None]:
    """Hold the warehouse's write lock for the duration of the block (waiting for it, with
    one line on stderr, while another task holds it)."""
    path = lock_file(url)
    if path is None:
        yield
        return
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise WarehouseError(f"cannot open warehouse {url}: folder {folder} does not exist")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(descriptor, url)
        yield
    finally:
        os.close(descriptor)  # closing the only descriptor releases the lock


def _acquire(descriptor: int, url: str) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for the warehouse {url}: another task holds it", file=sys.stderr)
        sys.stderr.flush()
        fcntl.flock(descriptor, fcntl.LOCK_EX)

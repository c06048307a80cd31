"""The warehouse of the warm dbt worker, held while requests run and let go between bursts:
the DuckDB write lock, dbt's relations cache, the schemas its nodes need, and cancelling
one request's query.

An embedded DuckDB file admits one writing process. The worker takes the warehouse's lock
(warehouselock.py) when a request starts while none runs, and when the last one ends it
closes dbt-duckdb's database and releases the lock, so that a one-shot runtime process, a
connector or another worker gets the file between bursts. What dbt does once per
invocation against the warehouse (fill its relations cache) happens once per burst,
since another process may have changed the warehouse in between; a schema is created the
first time a node in it runs, as `dbt run` creates those of its selection.
"""

from __future__ import annotations

import contextvars
import os
import threading
from contextlib import ExitStack
from typing import Any

from kascade.runtime.warehouselock import lock_file, warehouse_lock

# How long the warehouse stays held after the last request ended: the host sends the
# next request (a model's dependents) right after a reply, and reopening the database
# and refilling dbt's cache for each step of a chain of models would cost more than the
# model itself. Another process waits at most this long for the lock.
LINGER_SECONDS = 0.5


class WarehouseHold:
    """Counts the requests using the warehouse; holds it while the count is above zero
    and for LINGER_SECONDS after."""

    def __init__(self, url: str, adapter: Any, config: Any, manifest: Any) -> None:
        self.url = url
        self.adapter = adapter
        self.config = config
        self.manifest = manifest
        self._lock = threading.Lock()
        self._schema_lock = threading.Lock()
        self._users = 0
        # an in-memory database is the worker's alone, and gone once closed: kept open
        self._shared_file = lock_file(url) is not None
        self._held: ExitStack | None = None
        self._linger: threading.Timer | None = None
        self._schemas: set[tuple[str | None, str]] = set()

    def enter(self) -> None:
        """A request starts: open the warehouse first when it is the burst's first (waiting
        for the warehouse's lock while another process holds it)."""
        with self._lock:
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            if self._held is None:
                self._open()
            self._users += 1

    def leave(self) -> None:
        """A request ended (its connection released): let the warehouse go shortly after
        the last."""
        with self._lock:
            self._users -= 1
            if self._users == 0:
                # the timer's thread runs with this thread's context (dbt's invocation's)
                context = contextvars.copy_context()
                timer = threading.Timer(LINGER_SECONDS, context.run)
                timer.args = (self._release_if_idle, timer)
                timer.daemon = True
                self._linger = timer
                timer.start()

    def _release_if_idle(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._linger is timer:  # not cancelled and replaced meanwhile
                self._linger = None
                self._close()

    def release(self) -> None:
        """Let the warehouse go now (the worker ends); requests still running lose it."""
        with self._lock:
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            if self._held is not None:
                self._close()

    def _open(self) -> None:
        held = ExitStack()
        held.enter_context(warehouse_lock(self.url))
        try:
            with self.adapter.connection_named("master"):
                self._fill_cache()
                self._schemas = self._existing_schemas()
        except BaseException:
            held.close()
            raise
        self._held = held

    def _fill_cache(self) -> None:
        """dbt's relations cache, as `populate_adapter_cache` fills it before a run."""
        cachable = [
            node
            for node in self.manifest.nodes.values()
            if node.is_relational and not node.is_ephemeral_model and not node.is_external_node
        ]
        self.adapter.set_relations_cache(cachable, clear=True)

    def _existing_schemas(self) -> set[tuple[str | None, str]]:
        database = self.config.credentials.database
        return {
            (_lower(database), schema.lower())
            for schema in self.adapter.list_schemas(database)
            if schema is not None
        }

    def _close(self) -> None:
        try:
            self.adapter.cleanup_connections()
            if self._shared_file:
                _close_duckdb()
        finally:
            held, self._held = self._held, None
            if held is not None:
                held.close()

    def ensure_schemas(self, relations: set[Any]) -> None:
        """Create the schemas (relations without identifier, as dbt's `get_model_schemas`
        gives them) that do not exist yet; one request at a time, so each is created once."""
        with self._schema_lock:
            for relation in relations:
                if relation.schema is None:
                    continue
                key = (_lower(relation.database), relation.schema.lower())
                if key in self._schemas:
                    continue
                with self.adapter.connection_named(
                    f"create_{relation.database or ''}_{relation.schema}"
                ):
                    self.adapter.create_schema(relation)
                self._schemas.add(key)

    def cancel(self, thread: threading.Thread) -> None:
        """Cancel the query a thread's dbt connection runs (DuckDB: interrupt), if any."""
        connections = self.adapter.connections
        with connections.lock:
            connection = connections.thread_connections.get((os.getpid(), thread.ident))
        if connection is None or connection.handle is None or connection.state != "open":
            return
        try:
            connections.cancel(connection)
        except Exception:  # closed meanwhile: the next round of cancelling sees it gone
            return


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _close_duckdb() -> None:
    """Close dbt-duckdb's database: it keeps it open for the life of the process
    (`keep_open`), and clearing its environment alone would leave the file open."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
    if environment is not None:
        environment.close()

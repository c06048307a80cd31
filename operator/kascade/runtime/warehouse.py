"""Warehouse adapters, chosen by URL scheme: `duckdb:///path` (the embedded default) and
`postgresql://user@host:port/database?schema=S` (psycopg; the password from PGPASSWORD)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

from kascade.contract import warehouse as contract_warehouse
from kascade.runtime.errors import TaskError

LOCK_WAIT_SECONDS = 600.0


class WarehouseError(TaskError):
    """A warehouse that cannot be opened or a statement it refused; the message says which."""


class Warehouse(Protocol):
    """What the runtime needs of a warehouse."""

    def quote(self, *parts: str) -> str:
        """A quoted relation name, e.g. "schema"."table"."""
        ...

    def run_in_transaction(self, statements: Sequence[str]) -> None:
        """Execute statements atomically: all or nothing."""
        ...

    def scalar(self, query: str) -> Any:
        """The first column of the first row of a query."""
        ...

    def relations(self) -> list[tuple[str, str, str]]:
        """(schema, name, kind) of every table and view outside system schemas."""
        ...

    def kind_of(self, schema: str, name: str) -> str | None:
        """ "table" or "view" when the relation exists, else None."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class DuckDBWarehouse:
    """A DuckDB database file. DuckDB lets one process write at a time, so opening waits
    (with backoff) while another task holds the file."""

    def __init__(self, path: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        import duckdb

        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        if path != ":memory:" and not os.path.isdir(folder):
            raise WarehouseError(f"cannot open warehouse {path}: folder {folder} does not exist")
        deadline = time.monotonic() + wait_seconds
        delay = 0.02
        announced = False
        while True:
            try:
                self.connection = duckdb.connect(path)
                return
            except duckdb.IOException as err:
                if "lock" not in str(err).lower() or time.monotonic() >= deadline:
                    raise WarehouseError(f"cannot open warehouse {path}: {err}") from err
                if not announced:
                    print(
                        f"waiting for the warehouse {path}: another task holds it", file=sys.stderr
                    )
                    announced = True
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
            except duckdb.Error as err:
                raise WarehouseError(f"cannot open warehouse {path}: {err}") from err

    def quote(self, *parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    def run_in_transaction(self, statements: Sequence[str]) -> None:
        import duckdb

        cursor = self.connection
        cursor.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                cursor.execute(statement)
            cursor.execute("COMMIT")
        except duckdb.Error as err:
            cursor.execute("ROLLBACK")
            raise WarehouseError(str(err)) from err

    def scalar(self, query: str) -> Any:
        row = self.connection.execute(query).fetchall()
        return row[0][0] if row else None

    def relations(self) -> list[tuple[str, str, str]]:
        rows = self.connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2"
        ).fetchall()
        return [(str(s), str(n), "view" if t == "VIEW" else "table") for s, n, t in rows]

    def kind_of(self, schema: str, name: str) -> str | None:
        rows = self.connection.execute(
            "select table_type from information_schema.tables where table_catalog = "
            "current_database() and table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
        if not rows:
            return None
        return "view" if rows[0][0] == "VIEW" else "table"

    def close(self) -> None:
        self.connection.close()


class PostgresWarehouse:
    """A PostgreSQL database: many tasks write at once, each in its own connection."""

    def __init__(self, url: str) -> None:
        import psycopg

        try:
            settings = contract_warehouse.postgres_settings(url)
        except contract_warehouse.WarehouseURLError as err:
            raise WarehouseError(str(err)) from err
        self.schema = settings.pop("schema")
        try:
            self.connection = psycopg.connect(
                **settings,
                password=os.environ.get(contract_warehouse.PASSWORD_ENV) or None,
                autocommit=True,
            )
        except psycopg.Error as err:
            raise WarehouseError(f"cannot connect to warehouse {url}: {_first_line(err)}") from err

    def quote(self, *parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    def run_in_transaction(self, statements: Sequence[str]) -> None:
        import psycopg

        try:
            with self.connection.transaction():
                for statement in statements:
                    self.connection.execute(statement.encode())
        except psycopg.Error as err:
            raise WarehouseError(_first_line(err)) from err

    def scalar(self, query: str) -> Any:
        row = self.connection.execute(query.encode()).fetchone()
        return row[0] if row else None

    def relations(self) -> list[tuple[str, str, str]]:
        rows = self.connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema') order by 1, 2"
        ).fetchall()
        return [(str(s), str(n), "view" if t == "VIEW" else "table") for s, n, t in rows]

    def kind_of(self, schema: str, name: str) -> str | None:
        row = self.connection.execute(
            "select table_type from information_schema.tables "
            "where table_schema = %s and table_name = %s",
            (schema, name),
        ).fetchone()
        if row is None:
            return None
        return "view" if row[0] == "VIEW" else "table"

    def close(self) -> None:
        self.connection.close()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_warehouse(url: str) -> Warehouse:
    """Connect to the warehouse a URL names; WarehouseError names the URL when it cannot."""
    scheme = urlparse(url).scheme
    if scheme == "duckdb":
        return DuckDBWarehouse(duckdb_path(url))
    if scheme in contract_warehouse.POSTGRES_SCHEMES:
        return PostgresWarehouse(url)
    if scheme == contract_warehouse.PROFILES_SCHEME:
        raise WarehouseError(
            f"warehouse {url!r} is a dbt profile: dbt tasks run on it, but kascade itself "
            "reads and writes only duckdb:// and postgresql:// warehouses (connectors, "
            "`kascade tables`)"
        )
    raise WarehouseError(f"unsupported warehouse URL {url!r} (supported: duckdb://, postgresql://)")


def duckdb_path(url: str) -> str:
    """The file of a duckdb:/// URL (contract.warehouse), WarehouseError when malformed."""
    try:
        return contract_warehouse.duckdb_path(url)
    except contract_warehouse.WarehouseURLError as err:
        raise WarehouseError(str(err)) from err

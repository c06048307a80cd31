"""The test PostgreSQL server `make postgres-up` starts (hack/postgres/up.sh): where it
listens, its password, and a fresh database per test. Tests that need it fail with the
reason when it is not running; they are never skipped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".cluster" / "postgres"
USER = "kascade"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str
    password_file: Path

    def url(self, database: str, **options: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    @contextmanager
    def database(self) -> Iterator[str]:
        """A database of its own for one test, dropped afterwards."""
        name = f"t_{uuid.uuid4().hex[:10]}"
        with self.connect() as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            yield name
        finally:
            with self.connect() as admin:
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )


def running_server() -> Postgres:
    """The server of `make postgres-up`; AssertionError saying how to start it otherwise."""
    password_file = STATE / "password"
    port_file = STATE / "port"
    if not password_file.is_file() or not port_file.is_file():
        raise AssertionError(
            f"no test PostgreSQL server ({STATE} is missing): run `make postgres-up`"
        )
    server = Postgres(
        int(port_file.read_text().strip()), password_file.read_text().strip(), password_file
    )
    try:
        with server.connect():
            pass
    except psycopg.OperationalError as err:
        raise AssertionError(
            f"the test PostgreSQL server on 127.0.0.1:{server.port} does not answer ({err}): "
            "run `make postgres-up`"
        ) from err
    return server


def write_dbt_profiles(server: Postgres, database: str, directory: Path) -> Path:
    """A profiles.yml for the example project (`shop`) on `database`, as a user of dbt
    writes one: the password from $PGPASSWORD. Returns the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: 127.0.0.1\n      port: {server.port}\n      user: {USER}\n"
        "      password: \"{{ env_var('PGPASSWORD') }}\"\n"
        f"      dbname: {database}\n      schema: public\n      threads: 4\n",
        encoding="utf-8",
    )
    return directory

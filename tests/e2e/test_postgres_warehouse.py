"""The example on a real PostgreSQL server (`make postgres-up`), run by `kascade run
--local --warehouse postgresql://...`: it leaves what `dbt build` leaves on the same
server; the password (from a file) appears in no record, log or output; model tasks
write at the same time; a wrong password fails the task with the server's words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.e2e.test_dbt_build_parity import copy_shop, dbt_build
from tests.postgres import Postgres, running_server, write_dbt_profiles
from tests.projects import write_project


@pytest.fixture(scope="module")
def server() -> Postgres:
    return running_server()


@pytest.fixture
def database(server: Postgres) -> Iterator[str]:
    with server.database() as name:
        yield name


def kascade_run(
    flow: Path, url: str, state: Path, password_file: Path | None, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kascade", "run", str(flow), "--local"]
    command += ["--warehouse", url, "--state-dir", str(state), "-o", "json"]
    if password_file is not None:
        command += ["--warehouse-password-file", str(password_file)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )


def without_password() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PGPASSWORD"}


def relations(server: Postgres, database: str) -> dict[str, str]:
    with server.connect(database) as connection:
        rows = connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {f"{schema}.{name}": str(kind) for schema, name, kind in rows}


def contents(server: Postgres, database: str, relation: str) -> Counter[tuple[Any, ...]]:
    """The rows of a relation as a multiset (dbt's snapshot columns, run times, left out)."""
    schema, name = relation.split(".")
    with server.connect(database) as connection:
        columns = [
            row[0]
            for row in connection.execute(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s and column_name not like 'dbt\\_%%' order by ordinal_position",
                (schema, name),
            ).fetchall()
        ]
        query = sql.SQL("select {} from {}.{}").format(
            sql.SQL(", ").join(sql.Identifier(str(c)) for c in columns),
            sql.Identifier(schema),
            sql.Identifier(name),
        )
        return Counter(connection.execute(query).fetchall())


def assert_what_dbt_build_leaves(server: Postgres, database: str, tmp_path: Path) -> dict[str, str]:
    """`database` holds the example's 17 relations with exactly the rows `dbt build` of
    the same project leaves in a database of its own on the same server; returns them."""
    with server.database() as theirs_database:
        theirs = copy_shop(tmp_path / "dbt")
        profiles = write_dbt_profiles(server, theirs_database, tmp_path / "profiles")
        dbt_build(theirs, profiles, env={**os.environ, "PGPASSWORD": server.password})
        found = relations(server, database)
        assert found == relations(server, theirs_database)
        assert len(found) == 17
        for relation in found:
            assert contents(server, database, relation) == contents(
                server, theirs_database, relation
            ), relation
    return found


def test_the_example_leaves_what_dbt_build_leaves_and_shows_no_password(
    server: Postgres, database: str, tmp_path: Path
) -> None:
    ours = copy_shop(tmp_path / "kascade")
    state = tmp_path / "state"
    ran = kascade_run(
        ours / "flow.yaml", server.url(database), state, server.password_file, without_password()
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads(ran.stdout)["phase"] == "SUCCEEDED"

    found = assert_what_dbt_build_leaves(server, database, tmp_path)
    assert "public_intermediate.int_order_lines" in found  # dbt's custom schema
    assert found["public.product_sales"] == "BASE TABLE"  # the alias

    shown = ran.stdout + ran.stderr
    for path in state.rglob("*"):
        if path.is_file():
            shown += path.read_text(encoding="utf-8", errors="replace")
    assert server.password not in shown
    assert server.url(database) in shown  # the URL is recorded, without its password


def test_model_tasks_write_at_the_same_time(server: Postgres, database: str, tmp_path: Path):
    timed = (
        "{{ config(materialized='table') }}\n"
        "select clock_timestamp() as began, pg_sleep(1.5)::text as slept, "
        "clock_timestamp() as ended"
    )
    flow = (
        "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: branches}\n"
        "spec:\n  maxParallelTasks: 2\n  nodes:\n    - name: all\n      transformation: {}\n"
    )
    project = write_project(
        tmp_path / "project",
        {"models/left.sql": timed, "models/right.sql": timed, "flow.yaml": flow},
    )
    ran = kascade_run(
        project / "flow.yaml",
        server.url(database),
        tmp_path / "state",
        None,
        {**os.environ, "PGPASSWORD": server.password},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    with server.connect(database) as connection:
        (left_began, left_ended), (right_began, right_ended) = (
            connection.execute(f"select began, ended from public.{name}").fetchone()  # type: ignore[misc]
            for name in ("left", "right")
        )
    # both tables were being written during the same moment: no one-writer lock
    assert left_began < right_ended
    assert right_began < left_ended


def test_a_wrong_password_fails_the_task_with_the_servers_message(
    server: Postgres, database: str, tmp_path: Path
):
    project = write_project(
        tmp_path / "project",
        {
            "models/one.sql": "select 1 as x",
            "flow.yaml": "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: w}\n"
            "spec:\n  nodes:\n    - name: all\n      transformation: {}\n",
        },
    )
    ran = kascade_run(
        project / "flow.yaml",
        server.url(database),
        tmp_path / "state",
        None,
        {**os.environ, "PGPASSWORD": "not-the-password"},
    )
    assert ran.returncode == 1
    record = json.loads(ran.stdout)
    assert record["phase"] == "FAILED"
    (task,) = record["tasks"]
    message = task["attempts"][-1]["message"]
    assert 'password authentication failed for user "kascade"' in message, message
    assert "Traceback" not in ran.stderr


def test_a_password_in_the_url_is_refused_before_anything_runs(tmp_path: Path) -> None:
    url = "postgresql://kascade:s3cret@127.0.0.1:1/db"
    ran = kascade_run(
        write_project(
            tmp_path / "project",
            {
                "models/one.sql": "select 1 as x",
                "flow.yaml": "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: w}\n"
                "spec:\n  nodes:\n    - name: all\n      transformation: {}\n",
            },
        )
        / "flow.yaml",
        url,
        tmp_path / "state",
        None,
        without_password(),
    )
    assert ran.returncode != 0
    assert "holds a password" in ran.stderr
    assert "s3cret" not in ran.stdout + ran.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.json"))


def test_a_flows_own_warehouse_is_used_with_the_password_given_locally(
    server: Postgres, database: str, tmp_path: Path
) -> None:
    flow = (
        "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: own}\nspec:\n"
        "  warehouse:\n    type: postgres\n    host: 127.0.0.1\n"
        f"    port: {server.port}\n    database: {database}\n    schema: analytics\n"
        "    user: kascade\n    passwordSecretRef: {name: warehouse, key: password}\n"
        "  nodes:\n    - name: all\n      transformation: {}\n"
    )
    project = write_project(
        tmp_path / "project",
        {"models/one.sql": "{{ config(materialized='table') }}\nselect 1 as x", "flow.yaml": flow},
    )
    command = [sys.executable, "-m", "kascade", "run", str(project / "flow.yaml"), "--local"]
    command += ["--state-dir", str(tmp_path / "state"), "-o", "json"]
    command += ["--warehouse-password-file", str(server.password_file)]
    ran = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=without_password()
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert relations(server, database) == {"analytics.one": "BASE TABLE"}
    assert server.password not in ran.stdout + ran.stderr


def test_a_target_of_the_users_own_profiles_yml_is_a_warehouse(
    server: Postgres, database: str, tmp_path: Path
) -> None:
    """`--warehouse dbt-profiles:///…/profiles.yml?target=…`: dbt runs on that target as
    the user wrote it (here dbt-postgres, its password from env_var), for any adapter."""
    project = write_project(
        tmp_path / "project",
        {
            "models/one.sql": "{{ config(materialized='table') }}\nselect 41 + 1 as answer",
            "flow.yaml": "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: w}\n"
            "spec:\n  nodes:\n    - name: all\n      transformation: {}\n",
        },
    )
    profiles = write_dbt_profiles(server, database, tmp_path / "dbt")
    text = (profiles / "profiles.yml").read_text().replace("target: dev", "target: other")
    (profiles / "profiles.yml").write_text(text.replace("outputs:", "outputs:\n    other: {}"))
    ran = kascade_run(
        project / "flow.yaml",
        f"dbt-profiles://{profiles}/profiles.yml?target=dev",
        tmp_path / "state",
        None,
        {**os.environ, "PGPASSWORD": server.password},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    with server.connect(database) as connection:
        assert connection.execute("select answer from public.one").fetchone() == (42,)

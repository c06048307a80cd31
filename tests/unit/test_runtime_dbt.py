"""dbt resource tasks run by dbt-core itself: `python -m kascade.runtime KIND NAME` on a small
dbt project and a real DuckDB file, asserting what a user sees (exit codes, relations in the
warehouse, the error line, outputs). Each runtime process costs about two seconds of dbt:
the tests share one project and warehouse where they can."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import duckdb
import pytest

from kascade.runtime.dbtargs import selection_args
from kascade.runtime.dbtprofile import target_for
from kascade.runtime.dbtresults import exception_message, first_line
from kascade.runtime.errors import CannotStart
from tests.projects import write_project

PROJECT = {
    "dbt_project.yml": """
        name: kt
        version: "1.0"
        config-version: 2
        profile: somebody_elses
        vars:
          upto: 3
        models:
          kt:
            staging:
              +schema: stg
    """,
    "seeds/raw_orders.csv": (
        "id,customer_id,amount_cents,status\n1,1,1250,placed\n2,1,990,shipped\n"
        "3,2,4000,returned\n4,3,100,placed\n"
    ),
    "seeds/raw_customers.csv": "id,email\n1,a@example.com\n2,\n3,c@example.com\n",
    "seeds/raw_products.csv": "id,price\n1,10\n2,20\n",
    "seeds/properties.yml": """
        version: 2
        seeds:
          - name: raw_orders
            columns:
              - name: id
                data_tests: [unique, not_null]
              - name: status
                data_tests:
                  - accepted_values:
                      arguments: {values: [placed, shipped]}
                      config: {severity: warn}
          - name: raw_customers
            columns:
              - name: email
                data_tests: [not_null]
    """,
    "tests/no_negative_amounts.sql": (
        "select * from {{ ref('raw_orders') }} where amount_cents < 0"
    ),
    "macros/to_currency.sql": (
        "{% macro to_currency(column) %}round({{ column }} / 100.0, 2){% endmacro %}"
    ),
    "models/staging/stg_orders.sql": """
        select id as order_id, customer_id, {{ to_currency('amount_cents') }} as amount, status
        from {{ ref('raw_orders') }}
    """,
    "models/kept_orders.sql": """
        {{ config(materialized='ephemeral') }}
        select * from {{ ref('stg_orders') }} where status != 'returned'
    """,
    "models/customer_totals.sql": """
        {{ config(materialized='table') }}
        select customer_id, sum(amount) as total from {{ ref('kept_orders') }} group by 1
    """,
    "models/numbers.sql": "{{ config(materialized='table') }} select 42 as answer",
    "models/letters.sql": "select 'a' as letter",
    "models/counter.sql": """
        {{ config(materialized='incremental', unique_key='id') }}
        select i as id, {{ var('upto') }} as loaded_upto
        from range({{ var('upto') }}) as t(i)
        {% if is_incremental() %}
        where i > (select max(id) from {{ this }})
        {% endif %}
    """,
    "models/bad.sql": "select id from raw_customerz",
    "models/slow.sql": """
        {{ config(materialized='table') }}
        select sum(hash(i)) as h from range(1000000000000) as t(i)
    """,
    "snapshots/products_snapshot.sql": """
        {% snapshot products_snapshot %}
        {{ config(unique_key='id', strategy='check', check_cols=['price']) }}
        select * from {{ ref('raw_products') }}
        {% endsnapshot %}
    """,
}


@dataclass
class Task:
    """A finished runtime process: what its user sees."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, object] | None

    @property
    def error(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        return lines[-1] if lines else ""


@dataclass
class Place:
    """A project, its warehouse and the folders a task may write."""

    project: Path
    root: Path
    seeded: Task | None = None

    @property
    def warehouse(self) -> Path:
        return self.root / "w.duckdb"

    def env(self, name: str) -> dict[str, str]:
        (self.root / "tmp" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "TMPDIR": str(self.root / "tmp" / name),
            "KASCADE_PROJECT": str(self.project),
            "KASCADE_WAREHOUSE": f"duckdb:///{self.warehouse}",
            "KASCADE_OUTPUTS": str(self.root / f"{name}.outputs.json"),
            "KASCADE_TERMINATION_LOG": str(self.root / f"{name}.published.json"),
        }

    def start(self, kind: str, name: str, *args: str, log: str | None = None) -> Started:
        log = log or f"{kind}-{name}"
        stdout = (self.root / f"{log}.out").open("w")
        stderr = (self.root / f"{log}.err").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "kascade.runtime", kind, name, *(["--", *args] if args else [])],
            env=self.env(log),
            cwd=self.project,
            stdout=stdout,
            stderr=stderr,
        )
        return Started(self, log, process, stdout, stderr)

    def run(self, kind: str, name: str, *args: str) -> Task:
        return self.start(kind, name, *args).finish()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return connection.execute(sql).fetchall()


@dataclass
class Started:
    """A runtime process still running, its output going to files."""

    place: Place
    log: str
    process: subprocess.Popen[bytes]
    stdout_file: IO[str]
    stderr_file: IO[str]

    def text(self, stream: str) -> str:
        return (self.place.root / f"{self.log}.{stream}").read_text()

    def wait_for(self, stream: str, text: str, timeout: float = 60) -> None:
        """Poll the process's output until `text` appears (it must still be running)."""
        deadline = time.monotonic() + timeout
        while text not in self.text(stream):
            if self.process.poll() is not None:
                pytest.fail(f"exited before printing {text!r}: {self.text('err')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} after {timeout} s")
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> Task:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.process.kill()
            self.stdout_file.close()
            self.stderr_file.close()
        published = self.place.root / f"{self.log}.published.json"
        outputs = json.loads(published.read_text()) if published.exists() else None
        published.unlink(missing_ok=True)
        # the temporary profile folder is gone, whatever happened
        assert list((self.place.root / "tmp" / self.log).iterdir()) == []
        return Task(code, self.text("out"), self.text("err"), outputs)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Place:
    """The shared project with its seeds loaded (by a seed task: the seed test)."""
    root = tmp_path_factory.mktemp("dbt")
    place = Place(write_project(root / "project", PROJECT), root)
    place.seeded = place.run(
        "seed", "raw_orders", "-s", "raw_orders", "raw_customers", "raw_products"
    )
    assert place.seeded.returncode == 0, place.seeded.stdout + place.seeded.stderr
    return place


def test_a_seed_task_loads_its_seeds_with_dbt(place):
    assert place.seeded is not None
    assert place.seeded.outputs == {
        "relation": "main.raw_orders",
        "materialized": "seed",
        "rows": 4,
    }
    assert place.query("select count(*) from main.raw_customers") == [(3,)]
    # dbt ran with our profile only: nothing written in the user's home, and partial parsing
    # state kept in the project for the next task
    assert list((place.root / "home").iterdir()) == []
    assert (place.project / "target" / "partial_parse.msgpack").exists()
    assert not (place.project / "logs").exists()


def test_models_build_views_tables_and_ephemerals_as_dbt_does(place):
    view = place.run("model", "stg_orders")
    assert view.returncode == 0, view.stdout + view.stderr
    # `+schema: stg` is dbt's custom schema: target schema + "_stg"
    assert view.outputs == {"relation": "main_stg.stg_orders", "materialized": "view"}
    table = place.run("model", "customer_totals")
    assert table.returncode == 0, table.stdout + table.stderr
    assert table.outputs == {"relation": "main.customer_totals", "materialized": "table"}
    ephemeral = place.run("model", "kept_orders")
    assert (ephemeral.returncode, ephemeral.outputs) == (0, {"materialized": "ephemeral"})

    # the macro turned cents into currency; the ephemeral model dropped the returned order
    assert place.query("select customer_id, total from customer_totals order by 1") == [
        (1, 22.4),
        (3, 1.0),
    ]
    kinds = dict(place.query("select table_name, table_type from information_schema.tables"))
    assert kinds["stg_orders"] == "VIEW"
    assert kinds["customer_totals"] == "BASE TABLE"
    assert "kept_orders" not in kinds
    assert "1 of 1 OK created sql table model main.customer_totals" in table.stdout


def test_an_incremental_model_appends_only_new_rows(place):
    first = place.run("model", "counter")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.outputs == {"relation": "main.counter", "materialized": "incremental"}
    # vars from dbt_project.yml (upto: 3), then from the engine's --vars
    second = place.run("model", "counter", "--select", "counter", "--vars", "{upto: 5}")
    assert second.returncode == 0, second.stdout + second.stderr
    assert place.query("select id, loaded_upto from counter order by id") == [
        (0, 3),
        (1, 3),
        (2, 3),
        (3, 5),
        (4, 5),
    ]


def test_a_snapshot_keeps_the_history_of_a_seed(place):
    first = place.run("snapshot", "products_snapshot")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.outputs == {"relation": "main.products_snapshot", "materialized": "snapshot"}
    with duckdb.connect(str(place.warehouse)) as connection:
        connection.execute("update main.raw_products set price = 11 where id = 1")
    second = place.run("snapshot", "products_snapshot")
    assert second.returncode == 0, second.stdout + second.stderr
    assert place.query(
        "select id, price, dbt_valid_to is null from products_snapshot order by id, price"
    ) == [(1, 10, False), (1, 11, True), (2, 20, True)]


def test_a_test_task_passes_with_warnings_and_counts_them(place):
    done = place.run(
        "test", "raw_orders", "--select", "raw_orders", "--indirect-selection", "cautious"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # unique, not_null, accepted_values (warn) and the singular test
    assert done.outputs is not None
    assert done.outputs["tests"] == 4
    assert done.outputs["failures"] == 1
    (warning,) = done.outputs["warnings"]
    assert warning.startswith("test `accepted_values_raw_orders_status")
    assert warning.endswith(": 1 failing rows (warn)")
    assert "PASS no_negative_amounts" in done.stdout


def test_a_failing_error_test_fails_its_task_naming_the_test(place):
    done = place.run("test", "not_null_raw_customers_email")
    assert done.returncode == 1
    assert done.error == (
        "error: test `not_null_raw_customers_email` (seeds/properties.yml): "
        "Got 1 result, configured to fail if != 0"
    )
    assert done.outputs is None


def test_a_database_error_names_the_model_its_file_and_the_first_line(place):
    done = place.run("model", "bad")
    assert done.returncode == 1
    assert done.error == (
        "error: model `bad` (models/bad.sql): "
        "Catalog Error: Table with name raw_customerz does not exist!"
    )
    assert "Did you mean" not in done.error
    assert "LINE" not in done.error


def test_a_selection_that_matches_nothing_fails(place):
    done = place.run("model", "nope")
    assert done.returncode == 1
    assert done.error == (
        "error: dbt selected nothing for `--select nope`: "
        "The selection criterion 'nope' does not match any enabled nodes"
    )


def test_a_compilation_error_is_one_line_naming_the_file(tmp_path):
    files = {
        "dbt_project.yml": "name: broken\nversion: '1.0'\nconfig-version: 2\n",
        "models/a.sql": "select * from {{ ref('missing') }}",
    }
    place = Place(write_project(tmp_path / "project", files), tmp_path)
    done = place.run("model", "a")
    assert done.returncode == 1
    assert done.error == (
        "error: Compilation Error: Model 'model.broken.a' (models/a.sql) depends on a node "
        "named 'missing' which was not found"
    )


def test_sigterm_interrupts_a_running_model(place):
    started = place.start("model", "slow")
    started.wait_for("out", "START sql table model main.slow")
    signalled = time.monotonic()
    started.process.send_signal(signal.SIGTERM)
    done = started.finish(timeout=60)
    assert done.returncode == 143
    assert time.monotonic() - signalled < 8  # cancelled, not ended by the watchdog
    assert done.error == "error: model `slow` stopped by SIGTERM"
    # the warehouse is whole and free: the next task can use it
    assert place.query("select count(*) from information_schema.tables where table_name = 'slow'")[
        0
    ] == (0,)


def test_tasks_on_one_duckdb_file_wait_for_each_other(place):
    lock = os.open(f"{place.warehouse}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        numbers = place.start("model", "numbers")
        letters = place.start("model", "letters")
        for started in (numbers, letters):
            started.wait_for("err", "waiting for the warehouse duckdb:///")
            assert "another task holds it" in started.text("err")
    finally:
        os.close(lock)
    for started in (numbers, letters):
        done = started.finish()
        assert done.returncode == 0, done.stdout + done.stderr
    assert place.query("select answer, letter from numbers, letters") == [(42, "a")]


@pytest.mark.parametrize(
    ("kind", "args", "message"),
    [
        ("model", ["--threads", "4"], "model `m`: dbt flag `--threads` is not allowed in a task"),
        ("model", ["--target=prod"], "model `m`: dbt flag `--target` is not allowed in a task"),
        ("test", ["--full-refresh"], "test `m`: dbt flag `--full-refresh` does not apply"),
        ("model", ["--select"], "model `m`: dbt flag `--select` needs a value"),
        ("model", ["stray"], "model `m`: unexpected dbt argument 'stray'"),
    ],
)
def test_a_task_passes_only_selection_flags_to_dbt(kind, args, message):
    with pytest.raises(CannotStart, match=message):
        selection_args(kind, "m", args)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["--select", "m"]),
        (["--vars", "{a: 1}"], ["--select", "m", "--vars", "{a: 1}"]),
        (["-s", "a", "b", "--exclude", "c", "--full-refresh"], None),
        (["--select=path:models/a.sql", "--indirect-selection", "cautious"], None),
    ],
)
def test_a_task_selects_its_name_unless_told_otherwise(args, expected):
    assert selection_args("model", "m", args) == (args if expected is None else expected)


def test_a_refused_flag_exits_2_before_dbt_starts(tmp_path):
    place = Place(write_project(tmp_path / "project", {"dbt_project.yml": "name: x\n"}), tmp_path)
    done = place.run("seed", "s", "--profiles-dir", "/etc")
    assert done.returncode == 2
    assert "error: seed `s`: dbt flag `--profiles-dir` is not allowed in a task" in done.error


def test_the_warehouse_becomes_a_dbt_target():
    assert target_for("duckdb:////data/w.duckdb") == {
        "type": "duckdb",
        "path": "/data/w.duckdb",
        "schema": "main",
        "threads": 1,
    }
    assert target_for("postgresql://kascade@db.svc:5433/shop?schema=analytics&sslmode=require") == {
        "type": "postgres",
        "host": "db.svc",
        "port": 5433,
        "user": "kascade",
        "dbname": "shop",
        "schema": "analytics",
        "sslmode": "require",
        "password": "{{ env_var('PGPASSWORD', '') }}",  # read by dbt, never written
        "threads": 1,
    }
    assert target_for("postgres://u@h/d")["schema"] == "public"
    with pytest.raises(CannotStart, match="no dbt adapter for warehouse URL 'mysql://db/x'"):
        target_for("mysql://db/x")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://u:hunter2@h/d", "holds a password: the URL is shown in statuses"),
        ("postgresql://h/d", "looks like postgresql://user@host:5432/database"),
        ("postgresql://u@h/d/e", "looks like postgresql://user@host:5432/database"),
        ("postgresql://u@h/d?search_path=x", "unknown option `search_path`"),
        ("postgresql://u@h/d?sslmode=sometimes", "sslmode `sometimes` is not one of"),
        ("postgresql://u@h/d?connect_timeout=0", "connect_timeout is whole seconds"),
        ("postgresql://u@h:70000/d", "Port out of range"),
    ],
)
def test_a_postgres_url_kascade_cannot_use_names_what_is_wrong(url: str, said: str):
    with pytest.raises(CannotStart, match=re.escape(said)) as raised:
        target_for(url)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (
            "Runtime Error in model a (models/a.sql)\n  Parser Error: syntax error at or near "
            '"selec"\n  \n  LINE 5:     selec 1\n              ^^^^^',
            'Parser Error: syntax error at or near "selec"',
        ),
        (
            "Compilation Error in model b (models/b.sql)\n  unexpected 'end of print statement'"
            "\n    line 1\n      select {{ 1 + }}",
            "unexpected 'end of print statement' (line 1)",
        ),
        ("Got 2 results, configured to fail if != 0", "Got 2 results, configured to fail if != 0"),
    ],
)
def test_error_lines_drop_dbt_headers_hints_and_excerpts(message, line):
    assert first_line(message) == line


def test_an_error_dbt_raises_names_the_resource_it_names():
    error = RuntimeError("Compilation Error in model b (models/b.sql)\n  custom boom")
    assert exception_message(error, "run") == "model `b` (models/b.sql): custom boom"
    assert exception_message(RuntimeError("odd"), "seed") == "dbt seed failed: odd"

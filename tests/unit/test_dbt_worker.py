"""The warm dbt worker (`python -m kascade.runtime.dbtworker`) on a small dbt project and a
real DuckDB file, spoken to as the host does: JSON lines in, JSON lines out. Asserts what
a user sees: requests that run at once and build their relations, each request's dbt
output in its own log, the one-shot runtime's exit codes, messages and outputs,
cancelling, the warehouse free between bursts, and a clean end on EOF and SIGTERM.
A worker costs about two seconds to start: the tests share one where they can."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.projects import write_project

PROJECT = {
    "dbt_project.yml": """
        name: kw
        version: "1.0"
        config-version: 2
        profile: somebody_elses
        models:
          kw:
            staging:
              +schema: stg
    """,
    "seeds/raw_orders.csv": "id,amount_cents,status\n1,1250,placed\n2,990,shipped\n3,40,lost\n",
    "seeds/raw_customers.csv": "id,email\n1,a@example.com\n2,\n",
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
    "models/staging/stg_orders.sql": (
        "select id as order_id, amount_cents / 100.0 as amount from {{ ref('raw_orders') }}"
    ),
    "models/kept_orders.sql": """
        {{ config(materialized='ephemeral') }}
        select * from {{ ref('stg_orders') }} where amount > 1
    """,
    "models/numbers.sql": "{{ config(materialized='table') }} select 42 as answer",
    "models/letters.sql": "select 'a' as letter",
    "models/appender.sql": """
        {{ config(materialized='incremental') }}
        select {% if is_incremental() %}(select max(n) + 1 from {{ this }}){% else %}1{% endif %}
            as n
    """,
    "models/bad.sql": "select id from raw_customerz",
    "models/slow.sql": """
        {{ config(materialized='table') }}
        select sum(hash(i)) as h from range(1000000000000) as t(i)
    """,
    # a model that takes a while without holding the warehouse or the interpreter
    "models/sleepy.py": (
        "import time\n\n\ndef model(dbt, session):\n"
        "    time.sleep(2)\n    return session.sql('select 1 as slept')\n"
    ),
    "snapshots/products_snapshot.sql": """
        {% snapshot products_snapshot %}
        {{ config(unique_key='id', strategy='check', check_cols=['price']) }}
        select * from {{ ref('raw_products') }}
        {% endsnapshot %}
    """,
}
SEEDS = ("--select", "raw_orders", "raw_customers", "raw_products")


class Worker:
    """A worker process: requests go to its stdin, its events are collected from stdout."""

    def __init__(self, project: Path, root: Path, *options: str) -> None:
        self.root = root
        self.warehouse = root / "w.duckdb"
        self.stderr = (root / f"worker-{time.monotonic_ns()}.err").open("w")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(root / "home"),
            "KASCADE_PROJECT": str(project),
            "KASCADE_WAREHOUSE": f"duckdb:///{self.warehouse}",
        }
        (root / "home").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kascade.runtime.dbtworker", *options],
            cwd=project,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.stray: list[str] = []
        self.arrived: dict[str, float] = {}
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                self.stray.append(line)  # stdout must carry protocol lines only
                continue
            with self._changed:
                self.events.append(event)
                if "id" in event:
                    self.arrived[event["id"]] = time.monotonic()
                self._changed.notify_all()

    def first(self, timeout: float = 60) -> dict[str, Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: self.events, timeout), "no first event"
            return self.events[0]

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def run(self, key: str, kind: str, name: str, *args: str) -> Path:
        log = self.root / f"{key}.log"
        self.send(
            {
                "op": "run",
                "id": key,
                "kind": kind,
                "name": name,
                "args": list(args),
                "log": str(log),
            }
        )
        return log

    def reply(self, key: str, timeout: float = 60) -> dict[str, Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: key in self.arrived, timeout), f"no reply {key}"
            return next(e for e in self.events if e.get("id") == key)

    def call(self, key: str, kind: str, name: str, *args: str) -> dict[str, Any]:
        self.run(key, kind, name, *args)
        return self.reply(key)

    def close(self, timeout: float = 30) -> int:
        """EOF on stdin; the exit code."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.stderr.close()


def wait_for_text(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.05)


def when_free(warehouse: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse opened once the worker has let it go (shortly after its last request)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=read_only)
        except duckdb.IOException:
            assert time.monotonic() < deadline, "the worker kept the warehouse"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("worker")
    return write_project(root / "project", PROJECT), root


@pytest.fixture(scope="module")
def worker(place: tuple[Path, Path]) -> Iterator[Worker]:
    """A worker shared by the tests below, its seeds loaded."""
    started = Worker(*place)
    try:
        assert started.first() == {"event": "ready"}
        assert started.call("seeds", "seed", "raw_orders", *SEEDS)["exit"] == 0
        yield started
    finally:
        started.kill()


def test_requests_run_at_once_each_logging_its_own_node_and_eof_ends_the_worker(place):
    worker = Worker(*place)
    try:
        assert worker.first() == {"event": "ready"}
        seeded = worker.call("seed", "seed", "raw_orders", *SEEDS)
        assert seeded == {
            "event": "done",
            "id": "seed",
            "exit": 0,
            "message": None,
            "outputs": {"relation": "main.raw_orders", "materialized": "seed", "rows": 3},
        }
        # all sent before any reply: the sleepy model, sent first, answers last
        requests = {
            "sleepy": ("model", "sleepy"),
            "numbers": ("model", "numbers"),
            "letters": ("model", "letters", "--select", "path:models/letters.sql"),
            "stg_orders": ("model", "stg_orders"),
            "snap": ("snapshot", "products_snapshot"),
            "customers": ("seed", "raw_customers"),
            "tests": (
                "test",
                "raw_orders.test",
                "--select",
                "raw_orders",
                "--indirect-selection",
                "cautious",
            ),
        }
        logs = {key: worker.run(key, *request) for key, request in requests.items()}
        replies = {key: worker.reply(key) for key in requests}
        assert {key: reply["exit"] for key, reply in replies.items()} == dict.fromkeys(requests, 0)
        assert (
            max(worker.arrived[key] for key in requests if key != "sleepy")
            < worker.arrived["sleepy"]
        )

        assert replies["numbers"]["outputs"] == {
            "relation": "main.numbers",
            "materialized": "table",
        }
        assert replies["stg_orders"]["outputs"] == {
            "relation": "main_stg.stg_orders",
            "materialized": "view",
        }
        assert replies["customers"]["outputs"] == {
            "relation": "main.raw_customers",
            "materialized": "seed",
            "rows": 2,
        }
        assert replies["snap"]["outputs"] == {
            "relation": "main.products_snapshot",
            "materialized": "snapshot",
        }
        tests = replies["tests"]["outputs"]
        assert (tests["tests"], tests["failures"]) == (3, 1)  # unique, not_null, accepted_values
        assert tests["warnings"] == [
            "test `accepted_values_raw_orders_status__placed__shipped`: 1 failing rows (warn)"
        ]
        # each log has dbt's lines of its own node and none of another's
        nodes = {
            "sleepy": "START python table model main.sleepy",
            "numbers": "START sql table model main.numbers",
            "letters": "START sql view model main.letters",
            "stg_orders": "START sql view model main_stg.stg_orders",
            "snap": "START snapshot main.products_snapshot",
            "customers": "START seed file main.raw_customers",
            "tests": "START test unique_raw_orders_id",
        }
        for key, log in logs.items():
            text = log.read_text()
            assert [line for line in nodes.values() if line in text] == [nodes[key]]
            assert "Done. PASS=" in text
        assert "PASS unique_raw_orders_id" in logs["tests"].read_text()

        # EOF while a model runs: it is cancelled and answered, the worker exits 0
        slow = worker.run("slow", "model", "slow")
        wait_for_text(slow, "START sql table model main.slow")
        assert worker.close() == 0
        assert worker.reply("slow", timeout=0)["exit"] == 143
        assert worker.stray == []
        assert all(
            set(event) <= {"event", "id", "exit", "message", "outputs"} for event in worker.events
        )
    finally:
        worker.kill()
    with duckdb.connect(str(place[1] / "w.duckdb"), read_only=True) as connection:
        tables = dict(
            connection.execute(
                "select table_name, table_type from information_schema.tables"
            ).fetchall()
        )
        assert connection.execute("select answer, letter from numbers, letters").fetchall() == [
            (42, "a")
        ]
    assert tables["numbers"] == "BASE TABLE"
    assert tables["stg_orders"] == "VIEW"
    assert {"sleepy", "products_snapshot"} <= set(tables)
    assert "slow" not in tables


def test_a_failing_model_names_its_file_and_the_database_error(worker):
    done = worker.call("bad", "model", "bad")
    assert (done["exit"], done["outputs"]) == (1, {})
    assert done["message"] == (
        "model `bad` (models/bad.sql): Catalog Error: Table with name raw_customerz does not exist!"
    )
    # the attempt's log ends as the one-shot runtime's does
    assert (worker.root / "bad.log").read_text().splitlines()[-1] == f"error: {done['message']}"


def test_an_error_test_fails_and_a_selection_of_nothing_fails(worker):
    failed = worker.call("nn", "test", "not_null_raw_customers_email")
    assert failed["exit"] == 1
    assert failed["message"] == (
        "test `not_null_raw_customers_email` (seeds/properties.yml): "
        "Got 1 result, configured to fail if != 0"
    )
    nothing = worker.call("nope", "model", "nope")
    assert nothing["exit"] == 1
    assert nothing["message"] == (
        "dbt selected nothing for `--select nope`: "
        "The selection criterion 'nope' does not match any enabled nodes"
    )


def test_an_ephemeral_model_builds_nothing_and_succeeds(worker):
    done = worker.call("kept", "model", "kept_orders")
    assert (done["exit"], done["outputs"]) == (0, {"materialized": "ephemeral"})


def test_an_incremental_model_appends_when_run_again(worker):
    assert worker.call("inc1", "model", "appender")["exit"] == 0
    second = worker.call("inc2", "model", "appender")
    assert second == {
        "event": "done",
        "id": "inc2",
        "exit": 0,
        "message": None,
        "outputs": {"relation": "main.appender", "materialized": "incremental"},
    }
    compiled = worker.root / "project" / "target" / "compiled" / "kw" / "models" / "appender.sql"
    assert "select max(n) + 1" in compiled.read_text()  # its is_incremental() branch
    with when_free(worker.warehouse, read_only=True) as connection:
        assert connection.execute("select n from appender order by n").fetchall() == [(1,), (2,)]
    # --full-refresh is the request's own: the table starts over
    assert worker.call("inc3", "model", "appender", "--full-refresh")["exit"] == 0
    assert worker.call("inc4", "model", "appender")["exit"] == 0
    with when_free(worker.warehouse, read_only=True) as connection:
        assert connection.execute("select n from appender order by n").fetchall() == [(1,), (2,)]


def test_arguments_a_task_may_not_pass_and_other_vars_exit_2(worker):
    refused = worker.call("threads", "model", "numbers", "--threads", "4")
    assert refused["exit"] == 2
    assert refused["message"].startswith("model `numbers`: dbt flag `--threads` is not allowed")
    other = worker.call("vars", "model", "numbers", "--vars", "{upto: 5}")
    assert other["exit"] == 2
    assert "differ from the worker's" in other["message"]
    assert worker.process.stdin is not None
    worker.process.stdin.write("not json\n{}\n")  # no request: nothing to answer
    unknown = worker.call("kind", "script", "numbers")
    assert (unknown["exit"], unknown["message"]) == (
        2,
        "unknown dbt kind 'script' (one of model, seed, snapshot, test)",
    )


def test_cancel_stops_a_running_query_quickly(worker):
    log = worker.run("slow1", "model", "slow")
    wait_for_text(log, "START sql table model main.slow")
    cancelled = time.monotonic()
    worker.send({"op": "cancel", "id": "slow1"})
    done = worker.reply("slow1", timeout=30)
    assert time.monotonic() - cancelled < 5
    assert (done["exit"], done["message"]) == (143, "model `slow` stopped")
    worker.send({"op": "cancel", "id": "slow1"})  # finished: a no-op
    worker.send({"op": "cancel", "id": "never-sent"})
    assert worker.call("after", "model", "letters")["exit"] == 0


def test_between_bursts_the_warehouse_is_free_and_the_next_burst_sees_its_changes(worker):
    assert worker.call("snap1", "snapshot", "products_snapshot")["exit"] == 0
    with when_free(worker.warehouse) as connection:
        connection.execute("update main.raw_products set price = 11 where id = 1")
        connection.execute("drop view main.letters")
    assert worker.call("snap2", "snapshot", "products_snapshot")["exit"] == 0
    assert worker.call("letters2", "model", "letters")["exit"] == 0  # its cache was refilled
    with when_free(worker.warehouse, read_only=True) as connection:
        history = connection.execute(
            "select id, price, dbt_valid_to is null from products_snapshot order by id, price"
        ).fetchall()
        assert connection.execute("select letter from letters").fetchall() == [("a",)]
    assert history == [(1, 10, False), (1, 11, True), (2, 20, True)]


def test_sigterm_cancels_what_runs_and_exits_143(place):
    worker = Worker(*place)
    try:
        assert worker.first() == {"event": "ready"}
        log = worker.run("slow2", "model", "slow")
        wait_for_text(log, "START sql table model main.slow")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(20) == 143
        assert worker.reply("slow2", timeout=0)["exit"] == 143
    finally:
        worker.kill()


def test_a_project_dbt_cannot_parse_fails_the_worker_with_one_line(tmp_path):
    files = {
        "dbt_project.yml": "name: broken\nversion: '1.0'\nconfig-version: 2\n",
        "models/a.sql": "select * from {{ ref('missing') }}",
    }
    worker = Worker(write_project(tmp_path / "project", files), tmp_path)
    try:
        assert worker.first() == {
            "event": "failed",
            "message": "Compilation Error: Model 'model.broken.a' (models/a.sql) depends on a "
            "node named 'missing' which was not found",
        }
        assert worker.process.wait(20) == 2
    finally:
        worker.kill()

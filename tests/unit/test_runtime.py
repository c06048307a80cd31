"""The task runtime against a real DuckDB file: connectors, scripts, outputs. (dbt resource
tasks: test_runtime_dbt.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from kascade.runtime.connectors import ConnectorError, run_connector
from kascade.runtime.outputs import OutputsError, encode_outputs
from kascade.runtime.warehouse import WarehouseError, duckdb_path, open_warehouse
from tests.projects import write_project

PROJECT = {
    "data/orders.csv": "id,amount\n1,10\n2,20\n3,30\n",
    "connectors/orders.yaml": "source: {path: data/orders.csv}\ndestination: {table: raw.orders}\n",
    "connectors/orders_append.yaml": "source: {path: data/orders.csv, format: csv}\n"
    "destination: {table: raw.orders}\nmode: append\n",
    "connectors/broken.yaml": "source: {path: data/orders.csv}\ndestination: {table: orders}\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", PROJECT)


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path}/w.duckdb"


def query(url: str, sql: str) -> list[tuple]:
    with duckdb.connect(duckdb_path(url), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_connectors_replace_or_append(project, warehouse):
    run_connector(str(project), "orders", warehouse)
    assert run_connector(str(project), "orders_append", warehouse)["rows"] == 6
    assert run_connector(str(project), "orders", warehouse)["rows"] == 3
    assert query(warehouse, "select sum(amount) from raw.orders") == [(60,)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "connector `nope` not found: connectors/nope.yaml does not exist"),
        ("broken", "connectors/broken.yaml: destination.table must look like schema.table"),
    ],
)
def test_connector_errors_name_the_file(project, warehouse, name, message):
    with pytest.raises(ConnectorError, match=message.replace(".", r"\.")):
        run_connector(str(project), name, warehouse)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///rel/w.duckdb", "rel/w.duckdb"),
        ("duckdb:////abs/w.duckdb", "/abs/w.duckdb"),
        ("duckdb:///:memory:", ":memory:"),
    ],
)
def test_duckdb_urls(url, path):
    assert duckdb_path(url) == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://db/x",
            "unsupported warehouse URL 'mysql://db/x' (supported: duckdb://, postgresql://)",
        ),
        ("postgres://db/x", "a PostgreSQL URL looks like postgresql://user@host:5432/database"),
        (
            "postgresql://kascade@127.0.0.1:1/x",
            "cannot connect to warehouse postgresql://kascade@127.0.0.1:1/x: connection failed: "
            'connection to server at "127.0.0.1", port 1 failed: Connection refused',
        ),
        ("duckdb://host/x", "a DuckDB URL looks like duckdb:///path/to/file.duckdb"),
        ("duckdb:///", "names no file"),
        ("duckdb:////no/such/dir/w.duckdb", "folder /no/such/dir does not exist"),
    ],
)
def test_unusable_warehouses_are_named(url, message):
    with pytest.raises(WarehouseError) as err:
        open_warehouse(url)
    assert message in str(err.value)


def test_outputs_must_be_a_small_json_object():
    assert encode_outputs({"b": 1, "a": "x"}) == '{"a":"x","b":1}'
    with pytest.raises(OutputsError, match="must be a JSON object, got list"):
        encode_outputs([1])
    with pytest.raises(OutputsError, match="the limit is 4096 bytes"):
        encode_outputs({"x": "y" * 5000})


def runtime(
    project: Path, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    published = tmp_path / "published.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "KASCADE_PROJECT": str(project),
        "KASCADE_OUTPUTS": str(tmp_path / "outputs.json"),
        "KASCADE_TERMINATION_LOG": str(published),
        "KASCADE_WAREHOUSE": f"duckdb:///{tmp_path}/w.duckdb",
    }
    result = subprocess.run(
        [sys.executable, "-m", "kascade.runtime", *args],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, published


SCRIPTS = {
    "scripts/ok/__main__.py": (
        "import json, os, sys\n"
        "json.dump({'args': sys.argv[1:], 'task': os.environ.get('KASCADE_TASK')},"
        " open(os.environ['KASCADE_OUTPUTS'], 'w'))\n"
    ),
    "scripts/exit3/__main__.py": "import sys\nprint('bye')\nsys.exit(3)\n",
    "scripts/boom/__main__.py": "raise RuntimeError('kaboom')\n",
    "scripts/sleepy/__main__.py": (
        "import time\nprint('started', flush=True)\n"
        "try:\n    time.sleep(60)\nexcept Exception:\n    print('swallowed')\n"
    ),
    "scripts/big/__main__.py": (
        "import json, os\njson.dump({'x': 'y' * 5000}, open(os.environ['KASCADE_OUTPUTS'], 'w'))\n"
    ),
}


def test_scripts_get_their_args_and_publish_outputs(tmp_path):
    project = write_project(tmp_path / "p", SCRIPTS)
    result, published = runtime(project, tmp_path, "script", "ok", "--", "a b", "--flag")
    assert result.returncode == 0, result.stderr
    assert json.loads(published.read_text()) == {"args": ["a b", "--flag"], "task": None}


@pytest.mark.parametrize(
    ("script", "code", "message"),
    [
        ("exit3", 3, "error: script `exit3` exited with code 3"),
        ("boom", 1, "RuntimeError: kaboom"),
        ("nope", 2, "error: script `nope` not found: scripts/nope/__main__.py does not exist"),
        ("big", 1, "error: outputs are 5008 bytes; the limit is 4096 bytes"),
    ],
)
def test_script_failures_exit_with_a_code_and_a_message(tmp_path, script, code, message):
    project = write_project(tmp_path / "p", SCRIPTS)
    result, published = runtime(project, tmp_path, "script", script)
    assert result.returncode == code
    assert message in result.stderr
    assert not published.exists()


def test_the_runtime_explains_its_usage(tmp_path):
    result, _ = runtime(tmp_path, tmp_path, "dance")
    assert result.returncode == 2
    assert "usage: python -m kascade.runtime" in result.stderr


def test_sigterm_stops_a_task_even_when_its_script_catches_exceptions(tmp_path):
    # In a pod the runtime is PID 1, which ignores SIGTERM unless it handles it: without
    # the handler a deleted Job's pod would linger for its whole grace period.
    project = write_project(tmp_path / "p", SCRIPTS)
    env = {"PATH": "/usr/bin:/bin", "KASCADE_PROJECT": str(project)}
    process = subprocess.Popen(
        [sys.executable, "-m", "kascade.runtime", "script", "sleepy"],
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "started\n"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 143
    assert "swallowed" not in stdout
    assert "error: script `sleepy` stopped by SIGTERM" in stderr
    assert "Traceback" not in stderr


def test_the_outputs_limit_is_one_number_everywhere():
    from kascade.api.task import OUTPUTS_MAX_BYTES as DESCRIBED
    from kascade.contract.outputs import OUTPUTS_MAX_BYTES

    assert OUTPUTS_MAX_BYTES == DESCRIBED == 4096


def test_a_script_task_does_not_load_the_api_or_a_warehouse_driver(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "scripts" / "noop").mkdir(parents=True)
    (tmp_path / "scripts" / "noop" / "__main__.py").write_text(
        "import sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'duckdb', 'jinja2', 'yaml') or m.startswith('kascade.api')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "kascade.runtime", "script", "noop"],
        capture_output=True,
        text=True,
        env={**os.environ, "KASCADE_PROJECT": str(tmp_path)},
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout

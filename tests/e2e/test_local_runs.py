"""End to end, locally: `kascade run --local` and friends as a user runs them, with real
task processes and a real DuckDB warehouse. Every assertion is on something a user sees:
exit codes, the run record printed by `-o json`, messages, task outputs and tables."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.projects import flow_yaml, write_project

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
CLI_TIMEOUT_SECONDS = 120
SLEEP_SECONDS = "30"

SHOP_TASKS = (
    "raw_customers",
    "raw_order_items",
    "raw_orders",
    "raw_payments",
    "raw_products",
    "stg_customers",
    "stg_order_items",
    "stg_orders",
    "stg_payments",
    "stg_products",
    "stg_customers.test",
    "stg_orders.test",
    "stg_order_items.test",
    "stg_payments.test",
    "stg_products.test",
    "relationships_stg_orders_customer_id__customer_id__ref_stg_customers_",
    "relationships_stg_order_items_order_id__order_id__ref_stg_orders_",
    "relationships_stg_order_items_product_id__product_id__ref_stg_products_",
    "relationships_stg_payments_order_id__order_id__ref_stg_orders_",
    "int_order_lines",
    "int_orders_enriched",
    "int_orders_enriched.test",
    "fct_payments_by_method",
    "fct_revenue_daily",
    "dim_customers",
    "fct_product_sales",
    "fct_revenue_daily.test",
    "fct_payments_by_method.test",
    "dim_customers.test",
    "fct_product_sales.test",
    "customers_snapshot",
)
BROKEN_MODEL = "int_order_lines"
BROKEN_MODEL_FILE = Path("models/intermediate/int_order_lines.sql")
# The tasks downstream of int_order_lines (fct_payments_by_method does not depend on it).
DOWNSTREAM_OF_BROKEN = (
    "int_orders_enriched",
    "int_orders_enriched.test",
    "fct_revenue_daily",
    "fct_revenue_daily.test",
    "dim_customers",
    "dim_customers.test",
    "fct_product_sales",
    "fct_product_sales.test",
)

# Script packages of the small purpose-built projects.
SCRIPTS = {
    # sleeper PID_FILE SECONDS: writes its pid (atomically), then sleeps.
    "scripts/sleeper/__main__.py": """
        import os
        import sys
        import time

        pid_file = sys.argv[1]
        with open(pid_file + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
        print("sleeping", flush=True)
        time.sleep(float(sys.argv[2]))
        print("woke up")
    """,
    # failer PID_FILE: waits (bounded) until a sleeper has written PID_FILE, then exits 3.
    "scripts/failer/__main__.py": """
        import os
        import sys
        import time

        deadline = time.monotonic() + 20
        while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
            time.sleep(0.05)
        print("failing on purpose")
        sys.exit(3)
    """,
    # publish JSON: publishes the JSON object given as its first argument.
    "scripts/publish/__main__.py": """
        import json
        import os
        import sys

        with open(os.environ["KASCADE_OUTPUTS"], "w") as handle:
            json.dump(json.loads(sys.argv[1]), handle)
    """,
    # echo ARGS...: publishes what it received (argv, environment, working directory).
    "scripts/echo/__main__.py": """
        import json
        import os
        import sys

        names = ["FROM_TEMPLATE", "KASCADE_RUN", "KASCADE_TASK", "KASCADE_FLOW"]
        names.append("KASCADE_WAREHOUSE")
        seen = {
            "argv": sys.argv[1:],
            "env": {name: os.environ.get(name) for name in names},
            "cwd": os.getcwd(),
        }
        with open(os.environ["KASCADE_OUTPUTS"], "w") as handle:
            json.dump(seen, handle)
    """,
    "models/one.sql": "select 1 as one\n",
    "models/two.sql": "select one + 1 as two from {{ ref('one') }}\n",
}


# --- helpers ------------------------------------------------------------------------


def kascade(*args: Any, cwd: Path, timeout: float = CLI_TIMEOUT_SECONDS):
    """Run the CLI as a user does; a non-zero exit is returned, not raised."""
    return subprocess.run(
        [sys.executable, "-m", "kascade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def record_of(stdout: str, stderr: str = "", code: int | None = None) -> dict[str, Any]:
    """The run record a `-o json` command printed; stdout must hold only that JSON."""
    try:
        record = json.loads(stdout)
    except ValueError:
        pytest.fail(
            f"stdout is not one JSON document (exit {code})\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )
    assert isinstance(record, dict), record
    return record


def tasks_of(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tasks of a run record by id."""
    return {task["id"]: task for task in record["tasks"]}


def main_phases(record: dict[str, Any]) -> dict[str, str]:
    """Task id -> phase of the tasks that are not hooks."""
    return {task["id"]: task["phase"] for task in record["tasks"] if task["hook"] is None}


def history_of(record: dict[str, Any]) -> list[str]:
    """The run phases in the order they were entered."""
    return [entry["phase"] for entry in record["history"]]


def wait_for(probe: Callable[[], tuple[bool, Any]], what: str, timeout: float = 30.0) -> Any:
    """Poll `probe` (returning (done, what it saw)) until done; fail showing the last state."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = probe()
        if done:
            return seen
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout}s for {what}; last seen: {seen!r}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The pid a sleeper wrote, or None while it has not written it."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def assert_process_ends(pid: int, what: str) -> None:
    """The process must be gone (killed by kascade), polled with a deadline."""

    def gone() -> tuple[bool, str]:
        alive = pid_alive(pid)
        return (not alive, f"pid {pid} {'alive' if alive else 'gone'}")

    wait_for(gone, f"{what} (pid {pid}) to be gone", timeout=15)


def write_flow_project(root: Path, nodes: list[dict[str, Any]], **spec: Any) -> Path:
    """A small project (the SCRIPTS and two models) with a flow; returns the flow file."""
    write_project(root, SCRIPTS)
    flow_file = root / "flow.yaml"
    flow_file.write_text(flow_yaml(nodes, name="e2e", **spec), encoding="utf-8")
    return flow_file


def script(name: str, task: str, *args: str, **settings: Any) -> dict[str, Any]:
    """A script node."""
    return {"name": task, "script": {"name": name, "args": list(args)}, **settings}


def run_local(tmp_path: Path, flow_file: Path, *extra: Any):
    """`kascade run FLOW --local --state-dir <tmp>/state -o json EXTRA...`:
    (the completed process, the printed record)."""
    result = kascade(
        "run",
        flow_file,
        "--local",
        "--state-dir",
        tmp_path / "state",
        "-o",
        "json",
        *extra,
        cwd=tmp_path,
    )
    return result, record_of(result.stdout, result.stderr, result.returncode)


def copy_shop(target: Path) -> Path:
    """The example project, copied so that nothing is written into the repository."""
    ignore = shutil.ignore_patterns(".kascade", "*.duckdb*", "__pycache__", "target", "logs")
    shutil.copytree(SHOP, target, ignore=ignore)
    return target


def table_rows(warehouse_file: Path) -> dict[str, int]:
    """schema.name -> row count of every table and view in a DuckDB file."""
    rows = {}
    with duckdb.connect(str(warehouse_file), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables order by 1, 2"
        ).fetchall()
        for schema, name in names:
            counted = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            rows[f"{schema}.{name}"] = counted[0] if counted else 0
    return rows


@pytest.fixture
def pid_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for sleepers' pid files; afterwards any sleeper still alive is killed
    (with its process group), so a failing test leaves no processes behind."""
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for pid_file in folder.glob("*.pid"):
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# --- the example project ------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One successful run of examples/shop (copied), with its state dir."""
    base = tmp_path_factory.mktemp("shop-ok")
    project = copy_shop(base / "shop")
    state = base / "state"
    result = kascade(
        "run", project / "flow.yaml", "--local", "--state-dir", state, "-o", "json", cwd=base
    )
    record = record_of(result.stdout, result.stderr, result.returncode)
    return {"base": base, "project": project, "state": state, "result": result, "record": record}


def test_example_shop_succeeds_and_builds_the_warehouse(shop_run):
    result, record, state = shop_run["result"], shop_run["record"], shop_run["state"]
    assert result.returncode == 0, result.stderr
    assert record["phase"] == "SUCCEEDED", record["message"]
    assert record["flow"] == "shop-daily"
    assert record["type"] == "MANUAL"
    assert history_of(record)[-1] == "SUCCEEDED"
    tasks = tasks_of(record)
    assert main_phases(record) == dict.fromkeys(SHOP_TASKS, "SUCCEEDED")
    # Failure hooks (the example's `alert`) are skipped; any success hook ran.
    assert tasks["alert"]["hook"] == "onFailure"
    assert tasks["alert"]["phase"] == "SKIPPED"
    assert tasks["alert"]["attempts"] == []
    for hook in record["tasks"]:
        if hook["hook"] in ("onSuccess", "onFinish"):
            assert hook["phase"] == "SUCCEEDED", hook["id"]
    for task_id in SHOP_TASKS:
        assert [a["exitCode"] for a in tasks[task_id]["attempts"]] == [0], task_id
    # dbt ran every resource: the incremental model, the seeds, the custom schema of the
    # intermediate models, the snapshot, and the tests (one of them warns).
    assert tasks["fct_revenue_daily"]["outputs"] == {
        "relation": "main.fct_revenue_daily",
        "materialized": "incremental",
    }
    assert tasks["raw_orders"]["outputs"] == {
        "relation": "main.raw_orders",
        "materialized": "seed",
        "rows": 30,
    }
    assert tasks["int_orders_enriched"]["outputs"]["relation"] == (
        "main_intermediate.int_orders_enriched"
    )
    assert tasks["stg_orders.test"]["outputs"] == {"tests": 4, "failures": 0, "warnings": []}
    assert tasks["dim_customers.test"]["outputs"]["warnings"] == [
        "test `not_null_dim_customers_first_order_date`: 2 failing rows (warn)"
    ]
    # The default warehouse is the state dir's DuckDB file; each task's dbt log is kept.
    warehouse_file = state / "warehouse.duckdb"
    assert record["warehouse"] == f"duckdb:///{warehouse_file}"
    seed_log = Path(tasks["raw_orders"]["attempts"][0]["log"]).read_text(encoding="utf-8")
    assert "1 of 1 OK loaded seed file main.raw_orders" in seed_log
    # Progress lines went to stderr, the summary record to stdout.
    assert "task raw_orders SUCCEEDED" in result.stderr
    assert (state / "runs" / record["id"] / "run.json").is_file()
    announce = Path(tasks["announce"]["attempts"][0]["log"]).read_text(encoding="utf-8")
    assert f"loaded 30 orders for {record['parameters']['as_of']}" in announce

    rows = table_rows(warehouse_file)
    assert rows["main.fct_revenue_daily"] == 28
    assert rows["main.dim_customers"] == 12
    assert rows["main.raw_orders"] == 30
    assert rows["main.customers_snapshot"] == 12
    assert rows["main_intermediate.int_orders_enriched"] == 30

    listed = kascade("tables", "--state-dir", state, cwd=shop_run["base"])
    assert listed.returncode == 0, listed.stderr
    shown = {}
    for line in listed.stdout.splitlines():
        words = re.findall(r"[\w.]+", line)
        if len(words) == 3:
            shown[words[0]] = (words[1], words[2])
    assert shown["main.fct_revenue_daily"] == ("table", "28")
    assert shown["main.dim_customers"] == ("table", "12")
    assert shown["main.raw_orders"] == ("table", "30")
    assert shown["main.stg_orders"] == ("view", "30")


@pytest.fixture(scope="module")
def broken_shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run of the example with a SQL error in int_order_lines, one retry and no delay."""
    base = tmp_path_factory.mktemp("shop-broken")
    project = copy_shop(base / "shop")
    model = project / BROKEN_MODEL_FILE
    model.write_text(model.read_text().replace("select\n", "selec oops\n", 1))
    flow_file = project / "flow.yaml"
    manifest = yaml.safe_load(flow_file.read_text())
    manifest["spec"]["defaults"].update({"retries": 1, "retryDelaySeconds": 0})
    flow_file.write_text(yaml.safe_dump(manifest, sort_keys=False))
    state = base / "state"
    result = kascade("run", flow_file, "--local", "--state-dir", state, "-o", "json", cwd=base)
    record = record_of(result.stdout, result.stderr, result.returncode)
    return {"base": base, "project": project, "state": state, "result": result, "record": record}


def test_broken_model_fails_the_run_and_runs_the_failure_hook(broken_shop):
    result, record = broken_shop["result"], broken_shop["record"]
    assert result.returncode == 1
    assert result.stdout.lstrip().startswith("{")
    assert record["phase"] == "FAILED"
    assert BROKEN_MODEL in record["message"]
    assert history_of(record)[-2:] == ["FAILING", "FAILED"]
    tasks = tasks_of(record)

    broken = tasks[BROKEN_MODEL]
    assert broken["phase"] == "FAILED"
    assert len(broken["attempts"]) == 2
    assert [a["exitCode"] for a in broken["attempts"]] == [1, 1]
    assert f"model `{BROKEN_MODEL}`" in broken["message"]
    assert str(BROKEN_MODEL_FILE) in broken["message"]
    assert "syntax error" in broken["message"]
    assert "selec" in broken["message"]
    for attempt in broken["attempts"]:
        assert "syntax error" in Path(attempt["log"]).read_text(encoding="utf-8")

    for task_id in DOWNSTREAM_OF_BROKEN:
        assert tasks[task_id]["phase"] == "UPSTREAM_FAILED", task_id
        assert tasks[task_id]["attempts"] == [], task_id
    assert tasks["fct_payments_by_method"]["phase"] == "SUCCEEDED"
    assert tasks["stg_orders"]["phase"] == "SUCCEEDED"

    alert = tasks["alert"]
    assert alert["phase"] == "SUCCEEDED"
    alert_log = Path(alert["attempts"][0]["log"]).read_text(encoding="utf-8")
    assert f"[notify] flow=shop-daily run={record['id']}: failed" in alert_log
    assert f"task {BROKEN_MODEL} FAILED" in result.stderr

    rows = table_rows(broken_shop["state"] / "warehouse.duckdb")
    assert rows["main.fct_payments_by_method"] == 8
    assert "main.fct_revenue_daily" not in rows


def test_rerun_failed_after_fixing_the_model(broken_shop):
    original = broken_shop["record"]
    state, base = broken_shop["state"], broken_shop["base"]
    fixed = (SHOP / BROKEN_MODEL_FILE).read_text()
    (broken_shop["project"] / BROKEN_MODEL_FILE).write_text(fixed)

    result = kascade(
        "rerun", original["id"], "--local", "--failed", "--state-dir", state, "-o", "json", cwd=base
    )
    rerun = record_of(result.stdout, result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    assert rerun["phase"] == "SUCCEEDED", rerun["message"]
    assert rerun["type"] == "RERUN_FAILED"
    assert rerun["rerunOf"] == original["id"]
    assert rerun["id"] != original["id"]
    assert rerun["parameters"] == original["parameters"]

    succeeded_before = {t for t, phase in main_phases(original).items() if phase == "SUCCEEDED"}
    assert "fct_payments_by_method" in succeeded_before
    tasks = tasks_of(rerun)
    for task_id in succeeded_before:
        assert tasks[task_id]["phase"] == "REUSED", task_id
        assert tasks[task_id]["attempts"] == [], task_id
        assert tasks[task_id]["reusedFrom"] == original["id"], task_id
    for task_id in (BROKEN_MODEL, *DOWNSTREAM_OF_BROKEN):
        assert tasks[task_id]["phase"] == "SUCCEEDED", task_id
        assert len(tasks[task_id]["attempts"]) == 1, task_id
    assert tasks["alert"]["phase"] == "SKIPPED"
    assert table_rows(state / "warehouse.duckdb")["main.fct_revenue_daily"] == 28

    stored = json.loads((state / "runs" / original["id"] / "run.json").read_text())
    assert stored["reruns"] == [rerun["id"]]
    assert stored["phase"] == "FAILED"
    listed = kascade("runs", "--local", "--state-dir", state, "-o", "json", cwd=base)
    assert listed.returncode == 0, listed.stderr
    runs = {r["id"]: r for r in json.loads(listed.stdout)}
    assert runs[original["id"]]["phase"] == "FAILED"
    assert runs[rerun["id"]]["phase"] == "SUCCEEDED"
    assert runs[rerun["id"]]["rerunOf"] == original["id"]


def test_rerun_one_task_with_downstream_then_everything(shop_run):
    original, state, base = shop_run["record"], shop_run["state"], shop_run["base"]
    task = "int_orders_enriched"
    chosen = {
        task,
        "int_orders_enriched.test",
        "fct_revenue_daily",
        "fct_revenue_daily.test",
        "dim_customers",
        "dim_customers.test",
    }

    result = kascade(
        "rerun",
        original["id"],
        "--local",
        "--task",
        task,
        "--downstream",
        "--state-dir",
        state,
        "-o",
        "json",
        cwd=base,
    )
    downstream = record_of(result.stdout, result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    assert downstream["phase"] == "SUCCEEDED"
    assert downstream["type"] == "RERUN_TASK"
    assert downstream["rerunOf"] == original["id"]
    tasks = tasks_of(downstream)
    for task_id in SHOP_TASKS:
        if task_id in chosen:
            assert tasks[task_id]["phase"] == "SUCCEEDED", task_id
            assert len(tasks[task_id]["attempts"]) == 1, task_id
        else:
            assert tasks[task_id]["phase"] == "REUSED", task_id
            assert tasks[task_id]["attempts"] == [], task_id
            assert tasks[task_id]["outputs"] == tasks_of(original)[task_id]["outputs"]

    result = kascade(
        "rerun", original["id"], "--local", "--all", "--state-dir", state, "-o", "json", cwd=base
    )
    everything = record_of(result.stdout, result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    assert everything["type"] == "RERUN_ALL"
    assert everything["phase"] == "SUCCEEDED"
    assert main_phases(everything) == dict.fromkeys(SHOP_TASKS, "SUCCEEDED")
    assert tasks_of(everything)["alert"]["phase"] == "SKIPPED"
    for task_id in SHOP_TASKS:
        assert len(tasks_of(everything)[task_id]["attempts"]) == 1, task_id
        assert tasks_of(everything)[task_id]["reusedFrom"] is None, task_id

    stored = json.loads((state / "runs" / original["id"] / "run.json").read_text())
    assert stored["reruns"] == [downstream["id"], everything["id"]]

    unknown = kascade(
        "rerun", original["id"], "--local", "--task", "no_such_task", "--state-dir", state, cwd=base
    )
    assert unknown.returncode == 1
    assert "no_such_task" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_history_records_every_phase_transition(tmp_path):
    """PRODUCT.md section 3: every transition is appended to the history. A run without
    hooks still goes QUEUED -> RUNNING -> SUCCEEDING -> SUCCEEDED."""
    flow_file = write_flow_project(tmp_path / "project", [script("echo", "echo")])
    result, record = run_local(tmp_path, flow_file)
    assert result.returncode == 0, result.stderr
    assert history_of(record) == ["QUEUED", "RUNNING", "SUCCEEDING", "SUCCEEDED"]


# --- deadlines, abort, failFast -------------------------------------------------------


def test_attempt_timeout_kills_the_task(tmp_path, pid_dir):
    pid_file = pid_dir / "slow.pid"
    flow_file = write_flow_project(
        tmp_path / "project",
        [script("sleeper", "slow", str(pid_file), SLEEP_SECONDS, timeoutSeconds=1)],
    )
    started = time.monotonic()
    result, record = run_local(tmp_path, flow_file)
    took = time.monotonic() - started

    assert result.returncode == 1
    assert record["phase"] == "FAILED"
    slow = tasks_of(record)["slow"]
    assert slow["phase"] == "TIMED_OUT"
    assert len(slow["attempts"]) == 1
    assert slow["attempts"][0]["reason"] == "DeadlineExceeded"
    assert "deadline" in slow["message"]
    assert "slow" in record["message"]
    # The sleeping script was stopped, not waited for.
    assert took < float(SLEEP_SECONDS) - 10, f"the run took {took:.1f}s"
    pid = read_pid(pid_file)
    assert pid is not None, "the script never started"
    assert_process_ends(pid, "the timed-out script")


def test_run_deadline_times_the_run_out(tmp_path, pid_dir):
    pid_file = pid_dir / "slow.pid"
    flow_file = write_flow_project(
        tmp_path / "project",
        [
            script("sleeper", "slow", str(pid_file), SLEEP_SECONDS),
            script("echo", "after", dependsOn=["slow"]),
        ],
        timeoutSeconds=2,
        hooks={"onFailure": [script("echo", "alert")], "onFinish": [script("echo", "done")]},
    )
    result, record = run_local(tmp_path, flow_file)

    assert result.returncode == 1
    assert record["phase"] == "TIMED_OUT"
    assert "2s" in record["message"]
    assert history_of(record)[-1] == "TIMED_OUT"
    tasks = tasks_of(record)
    assert tasks["slow"]["phase"] == "TIMED_OUT"
    assert tasks["after"]["phase"] == "ABORTED"
    assert tasks["after"]["attempts"] == []
    # A timed-out run runs no hooks.
    assert tasks["alert"]["attempts"] == []
    assert tasks["done"]["attempts"] == []
    pid = read_pid(pid_file)
    assert pid is not None, "the script never started"
    assert_process_ends(pid, "the script of the timed-out run")


def test_ctrl_c_aborts_the_run_and_kills_the_task(tmp_path, pid_dir):
    pid_file = pid_dir / "slow.pid"
    flow_file = write_flow_project(
        tmp_path / "project",
        [
            script("sleeper", "slow", str(pid_file), SLEEP_SECONDS),
            script("echo", "after", dependsOn=["slow"]),
        ],
        hooks={"onFailure": [script("echo", "alert")]},
    )
    command = [sys.executable, "-m", "kascade", "run", str(flow_file), "--local"]
    command += ["--state-dir", str(tmp_path / "state"), "-o", "json"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def script_started() -> tuple[bool, Any]:
            if process.poll() is not None:
                pytest.fail(f"kascade ended early with {process.returncode}")
            pid = read_pid(pid_file)
            return (pid is not None, pid)

        pid = wait_for(script_started, "the sleeping script to write its pid")
        assert pid_alive(pid)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, stderr  # 128 + SIGINT, as a shell reports Ctrl-C
    assert "Traceback" not in stderr
    record = record_of(stdout, stderr, process.returncode)
    assert record["phase"] == "ABORTED"
    assert history_of(record)[-2:] == ["ABORTING", "ABORTED"]
    tasks = tasks_of(record)
    assert tasks["slow"]["phase"] == "ABORTED"
    assert tasks["slow"]["attempts"][0]["reason"] == "Aborted"
    assert tasks["after"]["phase"] == "ABORTED"
    assert tasks["after"]["attempts"] == []
    assert tasks["alert"]["attempts"] == []
    assert_process_ends(pid, "the aborted script")
    stored = json.loads((tmp_path / "state" / "runs" / record["id"] / "run.json").read_text())
    assert stored["phase"] == "ABORTED"


def test_fail_fast_aborts_the_other_running_task(tmp_path, pid_dir):
    pid_file = pid_dir / "slow.pid"
    flow_file = write_flow_project(
        tmp_path / "project",
        [
            script("sleeper", "slow", str(pid_file), SLEEP_SECONDS),
            script("failer", "boom", str(pid_file)),
        ],
        failFast=True,
        hooks={"onFailure": [script("publish", "alert", '{"hook": "ran"}')]},
    )
    result, record = run_local(tmp_path, flow_file)

    assert result.returncode == 1
    assert record["phase"] == "FAILED"
    assert "boom" in record["message"]
    tasks = tasks_of(record)
    assert tasks["boom"]["phase"] == "FAILED"
    assert tasks["boom"]["attempts"][0]["exitCode"] == 3
    assert "failing on purpose" in tasks["boom"]["message"]
    assert tasks["slow"]["phase"] == "ABORTED"
    assert tasks["slow"]["reason"] == "FailFast"
    # Failure hooks still run.
    assert tasks["alert"]["phase"] == "SUCCEEDED"
    assert tasks["alert"]["outputs"] == {"hook": "ran"}
    pid = read_pid(pid_file)
    assert pid is not None, "the sleeping script never started"
    assert_process_ends(pid, "the script stopped by failFast")


# --- parameters and outputs ---------------------------------------------------------


@pytest.fixture
def parameter_flow(tmp_path: Path) -> Path:
    return write_flow_project(
        tmp_path / "project",
        [script("echo", "echo", "{{ params.greeting }}", "{{ params.n }}")],
        parameters=[
            {"name": "greeting", "type": "string", "default": "hello"},
            {"name": "n", "type": "integer"},
        ],
    )


def assert_failed_before_any_task(record: dict[str, Any]) -> None:
    assert record["phase"] == "FAILED"
    assert "RUNNING" not in history_of(record)
    for task in record["tasks"]:
        assert task["attempts"] == [], task["id"]


def test_missing_required_parameter_fails_before_any_task(tmp_path, parameter_flow):
    result, record = run_local(tmp_path, parameter_flow)
    assert result.returncode == 1
    assert_failed_before_any_task(record)
    assert "`n`" in record["message"]
    assert "required" in record["message"]
    assert "greeting" not in record["message"]


def test_parameter_of_the_wrong_type_fails_before_any_task(tmp_path, parameter_flow):
    result, record = run_local(tmp_path, parameter_flow, "--param", "n=abc")
    assert result.returncode == 1
    assert_failed_before_any_task(record)
    assert "`n`" in record["message"]
    assert "integer" in record["message"]
    assert "abc" in record["message"]


def test_undeclared_parameter_fails_before_any_task(tmp_path, parameter_flow):
    result, record = run_local(tmp_path, parameter_flow, "--param", "n=1", "--param", "m=2")
    assert result.returncode == 1
    assert_failed_before_any_task(record)
    assert "`m`" in record["message"]


def test_parameters_reach_the_script(tmp_path, parameter_flow):
    result, record = run_local(tmp_path, parameter_flow, "--param", "n=3")
    assert result.returncode == 0, result.stderr
    assert record["phase"] == "SUCCEEDED"
    assert record["parameters"] == {"greeting": "hello", "n": 3}
    assert tasks_of(record)["echo"]["outputs"]["argv"] == ["hello", "3"]


def test_run_name_and_the_task_contract_reach_the_script(tmp_path):
    project = tmp_path / "project"
    flow_file = write_flow_project(
        project,
        [
            script(
                "echo",
                "b",
                "{{ run.name }}",
                env=[{"name": "FROM_TEMPLATE", "value": "{{ run.name }}"}],
            )
        ],
    )
    result, record = run_local(tmp_path, flow_file)
    assert result.returncode == 0, result.stderr
    seen = tasks_of(record)["b"]["outputs"]
    assert seen["argv"] == [record["id"]]
    assert seen["env"] == {
        "FROM_TEMPLATE": record["id"],
        "KASCADE_RUN": record["id"],
        "KASCADE_TASK": "b",
        "KASCADE_FLOW": "e2e",
        "KASCADE_WAREHOUSE": record["warehouse"],
    }
    assert Path(seen["cwd"]).resolve() == project.resolve()


def test_outputs_reach_the_downstream_task(tmp_path):
    flow_file = write_flow_project(
        tmp_path / "project",
        [
            script("publish", "a", '{"count": 5}'),
            script(
                "echo",
                "b",
                "{{ tasks.a.outputs.count }}",
                dependsOn=["a"],
                env=[{"name": "FROM_TEMPLATE", "value": "{{ run.name }}"}],
            ),
        ],
    )
    result, record = run_local(tmp_path, flow_file)
    tasks = tasks_of(record)
    assert tasks["a"]["phase"] == "SUCCEEDED"
    assert tasks["a"]["outputs"] == {"count": 5}
    assert tasks["b"]["phase"] == "SUCCEEDED", tasks["b"]["message"]
    assert result.returncode == 0, result.stderr
    assert record["phase"] == "SUCCEEDED"
    assert tasks["b"]["outputs"]["argv"] == ["5"]
    assert tasks["b"]["outputs"]["env"]["FROM_TEMPLATE"] == record["id"]


# --- bad input ----------------------------------------------------------------------


def test_warehouse_that_cannot_be_opened_fails_the_model_tasks(tmp_path):
    flow_file = write_flow_project(tmp_path / "project", [{"name": "models", "transformation": {}}])
    result, record = run_local(
        tmp_path, flow_file, "--warehouse", "duckdb:////nonexistent-dir/x.duckdb"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert record["phase"] == "FAILED"
    assert record["warehouse"] == "duckdb:////nonexistent-dir/x.duckdb"
    tasks = tasks_of(record)
    assert tasks["one"]["phase"] == "FAILED"
    assert "/nonexistent-dir/x.duckdb" in tasks["one"]["message"]
    assert "Traceback" not in tasks["one"]["message"]
    assert tasks["two"]["phase"] == "UPSTREAM_FAILED"
    stored = json.loads((tmp_path / "state" / "runs" / record["id"] / "run.json").read_text())
    assert stored["phase"] == "FAILED"
    assert tasks_of(stored)["one"]["phase"] == "FAILED"


def test_unsupported_warehouse_url_is_refused(tmp_path):
    flow_file = write_flow_project(tmp_path / "project", [{"name": "models", "transformation": {}}])
    state = tmp_path / "state"
    result = kascade(
        "run",
        flow_file,
        "--local",
        "--state-dir",
        state,
        "--warehouse",
        "postgres://x",
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "postgres://x" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    listed = kascade("runs", "--local", "--state-dir", state, "-o", "json", cwd=tmp_path)
    assert json.loads(listed.stdout) == []


def test_state_dir_that_is_not_writable_is_refused(tmp_path):
    flow_file = write_flow_project(tmp_path / "project", [script("echo", "echo")])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    state = blocker / "state"
    result = kascade("run", flow_file, "--local", "--state-dir", state, "-o", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert str(state) in result.stderr
    assert "not writable" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_outputs_over_the_limit_fail_the_task(tmp_path):
    big = json.dumps({"blob": "x" * 5000})
    flow_file = write_flow_project(
        tmp_path / "project",
        [script("publish", "big", big), script("echo", "after", dependsOn=["big"])],
    )
    result, record = run_local(tmp_path, flow_file)
    assert result.returncode == 1
    assert record["phase"] == "FAILED"
    tasks = tasks_of(record)
    assert tasks["big"]["phase"] == "FAILED"
    assert "4096" in tasks["big"]["message"]
    assert tasks["big"]["outputs"] == {}
    assert tasks["after"]["phase"] == "UPSTREAM_FAILED"


def test_a_failing_test_stops_exactly_the_descendants_of_its_model(tmp_path):
    project = copy_shop(tmp_path / "shop")
    (project / "tests" / "no_payments_at_all.sql").write_text(
        "-- fails: every payment is a failing row\nselect * from {{ ref('stg_payments') }}\n"
    )
    result = kascade(
        "run",
        project / "flow.yaml",
        "--local",
        "--state-dir",
        tmp_path / "state",
        "-o",
        "json",
        cwd=tmp_path,
    )
    record = record_of(result.stdout, result.stderr, result.returncode)
    assert result.returncode == 1
    assert record["phase"] == "FAILED"
    phases = main_phases(record)
    tests = tasks_of(record)["stg_payments.test"]
    assert tests["phase"] == "FAILED"
    assert "no_payments_at_all" in tests["message"]
    # dbt build: what descends from stg_payments waits for its tests, and does not run
    for task_id in (
        "fct_payments_by_method",
        "int_orders_enriched",
        "fct_revenue_daily",
        "dim_customers",
    ):
        assert phases[task_id] == "UPSTREAM_FAILED", task_id
    # the rest of the project goes on
    for task_id in ("stg_orders", "stg_orders.test", "int_order_lines", "fct_product_sales"):
        assert phases[task_id] == "SUCCEEDED", task_id
    assert phases["customers_snapshot"] == "SUCCEEDED"

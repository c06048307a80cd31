"""The operator on the real control plane: Runs become Tasks and Jobs in dependency order,
with retries, failures, aborts, deadlines, restarts and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import yaml

from tests.integration.cluster import ROOT, Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.projects import manifest, write_project

GROUP, VERSION = "kascade.io", "v1alpha1"
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
RUN_FOR = "kascade.io/kwok-run-for"
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}
PROJECT = {
    "models/a.sql": "select 1 as id",
    "models/b.sql": "select * from {{ ref('a') }}",
    "models/c.sql": "select 2 as id",
    "scripts/step/__main__.py": "print('step')",
}


def kascade(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def setup_flow(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    nodes: list[dict[str, Any]],
    name: str = "f",
    files: dict[str, str] | None = None,
    **spec: Any,
) -> None:
    project = write_project(tmp_path / "project", files or PROJECT)
    # kwok's pods run nothing, so dbt's parse state (seconds of `dbt parse` per push,
    # which a schedule test cannot spare before its minute) is left out here.
    pushed = kascade(
        cluster,
        "project",
        "push",
        str(project),
        "--name",
        f"{name}-project",
        "-n",
        namespace,
        "--no-dbt-parse",
    )
    assert pushed.returncode == 0, pushed.stderr
    body = manifest(nodes, name=name, project={"configMap": f"{name}-project"}, **spec)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def trigger(cluster: Cluster, namespace: str, flow: str = "f") -> str:
    started = kascade(cluster, "trigger", flow, "-n", namespace)
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


def run_body(cluster: Cluster, namespace: str, run: str) -> dict[str, Any]:
    return cluster.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "runs", run)


def phase_of(cluster: Cluster, namespace: str, run: str) -> str | None:
    return (run_body(cluster, namespace, run).get("status") or {}).get("phase")


def finish(cluster: Cluster, namespace: str, run: str, timeout: float = 90) -> dict[str, Any]:
    wait_for(
        lambda: phase_of(cluster, namespace, run),
        lambda p: p in TERMINAL,
        timeout=timeout,
        what=f"run {run} to end",
    )
    return run_body(cluster, namespace, run)


def tasks(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    items = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    return {t["spec"]["id"]: t for t in items["items"]}


def task_phases(cluster: Cluster, namespace: str) -> dict[str, str | None]:
    return {i: (t.get("status") or {}).get("phase") for i, t in tasks(cluster, namespace).items()}


def jobs(cluster: Cluster, namespace: str) -> list[Any]:
    return cluster.batch().list_namespaced_job(namespace).items


def jobs_by_task(cluster: Cluster, namespace: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for job in jobs(cluster, namespace):
        grouped.setdefault(job.metadata.annotations["kascade.io/task-id"], []).append(job)
    return grouped


def events(cluster: Cluster, namespace: str, name: str) -> list[Any]:
    found = cluster.core().list_namespaced_event(namespace)
    return [e for e in found.items if e.involved_object.name == name]


def test_a_run_creates_one_job_per_task_in_dependency_order(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {"name": "load", "script": {"name": "step"}},
        {"name": "models", "transformation": {}, "dependsOn": ["load"]},
        {
            "name": "report",
            "script": {"name": "step", "args": ["{{ run.name }}"]},
            "dependsOn": ["models"],
        },
    ]
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        nodes,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "1s"}}},
        maxParallelTasks=2,
    )
    run = trigger(cluster, namespace)
    body = finish(cluster, namespace, run)
    status = body["status"]
    assert status["phase"] == "SUCCEEDED", status
    assert [h["phase"] for h in status["history"]] == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDING",
        "SUCCEEDED",
    ]
    assert status["progress"] == "5/5"
    assert set(task_phases(cluster, namespace).values()) == {"SUCCEEDED"}
    by_task = jobs_by_task(cluster, namespace)
    assert {task: len(found) for task, found in by_task.items()} == {
        "load": 1,
        "a": 1,
        "b": 1,
        "c": 1,
        "report": 1,
    }
    job = {task: found[0] for task, found in by_task.items()}
    for task_id, task in tasks(cluster, namespace).items():
        for dependency in task["spec"].get("dependsOn") or []:
            assert (
                job[task_id].metadata.creation_timestamp >= job[dependency].status.completion_time
            )
    template = job["report"].spec.template
    assert template.spec.containers[0].command == ["kascade", "task", "exec"]
    assert template.spec.containers[0].args[:2] == ["script", "step"]
    assert template.spec.containers[0].args[-1] == run  # {{ run.name }} rendered
    assert template.spec.security_context.run_as_non_root is True
    assert job["a"].metadata.owner_references[0].kind == "Task"
    assert job["a"].spec.backoff_limit == 0
    reasons = [e.reason for e in events(cluster, namespace, run)]
    assert "Succeeded" in reasons
    flow = cluster.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "flows", "f")
    assert flow["status"]["lastRun"]["name"] == run
    assert flow["status"]["conditions"][0]["status"] == "True"


def test_a_failing_task_is_retried_then_fails_downstream_while_others_finish(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {
            "name": "bad",
            "script": {"name": "step"},
            "retries": 1,
            "retryDelaySeconds": 0,
            "podMetadata": {"labels": {FAIL_LABEL: "true"}},
        },
        {"name": "after", "script": {"name": "step"}, "dependsOn": ["bad"]},
        {"name": "other", "script": {"name": "step"}},
    ]
    setup_flow(cluster, namespace, tmp_path, nodes)
    run = trigger(cluster, namespace)
    body = finish(cluster, namespace, run)
    assert body["status"]["phase"] == "FAILED"
    assert body["status"]["message"] == "task `bad` failed"
    found = tasks(cluster, namespace)
    bad = found["bad"]["status"]
    assert bad["phase"] == "FAILED"
    assert [a["exitCode"] for a in bad["attempts"]] == [1, 1]
    assert found["after"]["status"]["phase"] == "UPSTREAM_FAILED"
    assert found["other"]["status"]["phase"] == "SUCCEEDED"
    assert {task: len(j) for task, j in jobs_by_task(cluster, namespace).items()} == {
        "bad": 2,
        "other": 1,
    }
    warnings = [e for e in events(cluster, namespace, run) if e.type == "Warning"]
    assert any("task `bad` failed" in e.message for e in warnings)


def test_abort_deletes_running_jobs_and_ends_aborted(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {"name": "one", "script": {"name": "step"}},
        {"name": "two", "script": {"name": "step"}},
        {"name": "later", "script": {"name": "step"}, "dependsOn": ["one"]},
    ]
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        nodes,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "10m"}}},
    )
    run = trigger(cluster, namespace)
    wait_for(
        lambda: len(jobs(cluster, namespace)), lambda n: n == 2, timeout=60, what="two running Jobs"
    )
    aborted = kascade(cluster, "abort", run, "-n", namespace)
    assert aborted.returncode == 0, aborted.stderr
    body = finish(cluster, namespace, run)
    assert body["status"]["phase"] == "ABORTED"
    assert task_phases(cluster, namespace) == {
        "one": "ABORTED",
        "two": "ABORTED",
        "later": "ABORTED",
    }
    wait_for(
        lambda: len(jobs(cluster, namespace)),
        lambda n: n == 0,
        timeout=60,
        what="the Jobs to be deleted",
    )


def test_the_run_deadline_times_the_run_out(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {"name": "slow", "script": {"name": "step"}},
        {"name": "next", "script": {"name": "step"}, "dependsOn": ["slow"]},
    ]
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        nodes,
        timeoutSeconds=3,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "10m"}}},
    )
    run = trigger(cluster, namespace)
    body = finish(cluster, namespace, run)
    assert body["status"]["phase"] == "TIMED_OUT"
    assert task_phases(cluster, namespace) == {"slow": "TIMED_OUT", "next": "ABORTED"}
    wait_for(
        lambda: len(jobs(cluster, namespace)),
        lambda n: n == 0,
        timeout=60,
        what="the timed-out Job to be deleted",
    )


def test_an_operator_killed_mid_run_finishes_it_after_restart_without_duplicates(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {"name": f"s{i}", "script": {"name": "step"}, **({"dependsOn": [f"s{i - 1}"]} if i else {})}
        for i in range(4)
    ]
    nodes.append({"name": "side", "script": {"name": "step"}})
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        nodes,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "2s"}}},
    )
    run = trigger(cluster, namespace)
    wait_for(
        lambda: jobs_by_task(cluster, namespace),
        lambda j: "s0" in j,
        timeout=60,
        what="the first Job",
    )
    operator.kill()
    operator.start()
    wait_for(
        lambda: jobs_by_task(cluster, namespace),
        lambda j: "s2" in j,
        timeout=60,
        what="the third Job",
    )
    operator.kill()
    operator.start()
    body = finish(cluster, namespace, run)
    assert body["status"]["phase"] == "SUCCEEDED"
    counts = {task: len(found) for task, found in jobs_by_task(cluster, namespace).items()}
    assert counts == {"s0": 1, "s1": 1, "s2": 1, "s3": 1, "side": 1}
    for task in tasks(cluster, namespace).values():
        assert [a["number"] for a in task["status"]["attempts"]] == [1]


def test_bad_input_is_a_condition_and_an_event_and_the_operator_keeps_running(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    cluster.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Run",
                "metadata": {"name": "lost"},
                "spec": {"flowRef": {"name": "nope"}},
            }
        ),
    )
    lost = finish(cluster, namespace, "lost")["status"]
    assert lost["phase"] == "FAILED"
    assert "Flow `nope` not found" in lost["message"]
    assert lost["conditions"][0]["type"] == "Valid"
    assert lost["conditions"][0]["status"] == "False"
    assert any(e.reason == "InvalidRun" for e in events(cluster, namespace, "lost"))

    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "sel", "transformation": {"include": ["tag:"]}}],
        name="broken",
    )

    def flow_condition() -> dict[str, Any] | None:
        flow = cluster.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, "flows", "broken"
        )
        conditions = (flow.get("status") or {}).get("conditions") or []
        return conditions[0] if conditions else None

    condition = wait_for(
        flow_condition, lambda c: c is not None, timeout=60, what="the Flow's Valid condition"
    )
    assert condition["status"] == "False"
    assert "selector `tag:` has no value" in condition["message"]
    run = trigger(cluster, namespace, "broken")
    failed = finish(cluster, namespace, run)["status"]
    assert failed["phase"] == "FAILED"
    assert "selector `tag:` has no value" in failed["message"]

    setup_flow(
        cluster, namespace, tmp_path, [{"name": "ok", "script": {"name": "step"}}], name="fine"
    )
    assert finish(cluster, namespace, trigger(cluster, namespace, "fine"))["status"]["phase"] == (
        "SUCCEEDED"
    )
    assert operator.alive


def test_a_flow_task_starts_a_child_run_and_waits_for_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "work", "script": {"name": "step"}}],
        name="child",
        defaults={"podMetadata": {"annotations": {RUN_FOR: "1s"}}},
    )
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [
            {"name": "sub", "flow": {"name": "child"}},
            {"name": "after", "script": {"name": "step"}, "dependsOn": ["sub"]},
        ],
        name="parent",
    )
    run = trigger(cluster, namespace, "parent")
    assert finish(cluster, namespace, run)["status"]["phase"] == "SUCCEEDED"
    runs = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "runs")
    children = [r for r in runs["items"] if r["spec"].get("type") == "SUBFLOW"]
    assert len(children) == 1
    child = children[0]
    assert child["spec"]["parent"] == {"run": run, "task": "sub"}
    assert child["status"]["phase"] == "SUCCEEDED"
    assert child["metadata"]["ownerReferences"][0]["kind"] == "Task"


def test_the_local_executor_runs_the_dbt_project_for_a_cluster_run(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    process = OperatorProcess(cluster, namespace, tmp_path / "op", executor="local")
    (tmp_path / "op").mkdir()
    process.start()
    try:
        shop = ROOT / "examples" / "shop"
        pushed = kascade(
            cluster, "project", "push", str(shop), "--name", "shop-project", "-n", namespace
        )
        assert pushed.returncode == 0, pushed.stderr
        cluster.kubectl("apply", "-n", namespace, "-f", str(shop / "flow.yaml"))
        run = trigger(cluster, namespace, "shop-daily")
        # dbt starts in each of the 31 tasks: a few seconds each, one writer at a time
        assert finish(cluster, namespace, run, timeout=400)["status"]["phase"] == "SUCCEEDED"
    finally:
        process.stop()
    warehouse = tmp_path / "op" / "state" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("select count(*) from main.fct_revenue_daily").fetchone() == (28,)
        snapshot = connection.execute("select count(*) from main.customers_snapshot").fetchone()
        assert snapshot == (12,)
    state = str(tmp_path / "op" / "state")
    logs = kascade(cluster, "logs", run, "raw_orders", "-n", namespace, "--state-dir", state)
    assert "OK loaded seed file main.raw_orders" in logs.stdout
    tests = kascade(cluster, "logs", run, "stg_orders.test", "-n", namespace, "--state-dir", state)
    assert "PASS=4" in tests.stdout


def test_status_and_logs_commands(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(cluster, namespace, tmp_path, [{"name": "only", "script": {"name": "step"}}])
    run = trigger(cluster, namespace)
    finish(cluster, namespace, run)
    shown = kascade(cluster, "status", run, "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert f"run {run} SUCCEEDED" in shown.stdout
    assert "attempt 1" in shown.stdout
    missing = kascade(cluster, "status", "nope", "-n", namespace)
    assert missing.returncode == 1
    assert "run `nope` not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_max_active_runs_queues_a_second_run_until_the_first_ends(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "only", "script": {"name": "step"}}],
        maxActiveRuns=1,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "3s"}}},
    )
    first = trigger(cluster, namespace)
    wait_for(
        lambda: phase_of(cluster, namespace, first),
        lambda p: p == "RUNNING",
        timeout=60,
        what="the first run to start",
    )
    second = trigger(cluster, namespace)
    wait_for(
        lambda: phase_of(cluster, namespace, second),
        lambda p: p == "QUEUED",
        timeout=60,
        what="the second run to queue",
    )
    assert phase_of(cluster, namespace, first) == "RUNNING"
    assert finish(cluster, namespace, first)["status"]["phase"] == "SUCCEEDED"
    body = finish(cluster, namespace, second)
    assert body["status"]["phase"] == "SUCCEEDED"
    started = next(h["time"] for h in body["status"]["history"] if h["phase"] == "RUNNING")
    first_done = run_body(cluster, namespace, first)["status"]["completionTime"]
    assert started >= first_done.replace("Z", "+00:00")[:19]

"""The operator's Prometheus endpoint, scraped while it works on the real control plane:
the values move as runs and tasks do, and promtool finds nothing to complain about."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from kascade import __version__
from tests.integration.cluster import Cluster, promtool
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import FAIL_LABEL, RUN_FOR, finish, setup_flow, trigger
from tests.integration.test_schedules_and_reruns import offset_before_minute, scheduled
from tests.integration.waiting import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (metric, have), v in found.items() if metric == name and wanted <= have)


def test_metrics_follow_scheduled_and_failing_runs(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    port = free_port()
    operator = OperatorProcess(
        cluster,
        namespace,
        tmp_path,
        extra=(
            "--metrics-address",
            f"127.0.0.1:{port}",
            "--clock-offset",
            # the flows are made before the minute turns, even on a loaded machine
            f"{offset_before_minute(20):.3f}",
        ),
    )
    operator.start()
    try:
        nodes = [
            {"name": "load", "script": {"name": "step"}},
            {"name": "models", "transformation": {}, "dependsOn": ["load"]},
        ]
        slow = {"podMetadata": {"annotations": {RUN_FOR: "3s"}}}
        setup_flow(
            cluster, namespace, tmp_path, nodes, schedule={"cron": "* * * * *"}, defaults=slow
        )
        broken = {
            "name": "broken",
            "script": {"name": "step"},
            "retries": 0,
            "podMetadata": {"labels": {FAIL_LABEL: "true"}},
        }
        setup_flow(cluster, namespace, tmp_path / "g", [broken], name="g")
        first = scrape(port)
        assert total(samples(first), "kascade_build_info", version=__version__) == 1

        run = wait_for(
            lambda: scheduled(cluster, namespace),
            lambda runs: len(runs) == 1,
            timeout=45,
            what="the scheduled run",
        )[0]
        during = wait_for(
            lambda: samples(scrape(port)),
            lambda s: (
                total(s, "kascade_active_runs", namespace=namespace, flow="f") == 1
                and total(s, "kascade_run_tasks", flow="f", phase="RUNNING") >= 1
            ),
            timeout=30,
            what="an active run with a running task in the metrics",
        )
        assert total(during, "kascade_schedule_lag_seconds_count", flow="f") == 1
        assert 0 <= total(during, "kascade_schedule_lag_seconds_sum", flow="f") < 5

        failed_run = trigger(cluster, namespace, "g")
        assert finish(cluster, namespace, run)["status"]["phase"] == "SUCCEEDED"
        assert finish(cluster, namespace, failed_run)["status"]["phase"] == "FAILED"

        after = wait_for(
            lambda: samples(scrape(port)),
            lambda s: (
                total(s, "kascade_runs_total") == 2
                and total(s, "kascade_active_runs", flow="f") == 0
            ),
            timeout=30,
            what="both runs counted as finished",
        )
        ok = {"namespace": namespace, "flow": "f"}
        assert total(after, "kascade_runs_total", **ok, type="ORCHESTRATED", phase="SUCCEEDED") == 1
        assert total(after, "kascade_runs_total", flow="g", type="MANUAL", phase="FAILED") == 1
        assert total(after, "kascade_run_duration_seconds_count", **ok, phase="SUCCEEDED") == 1
        assert total(after, "kascade_run_duration_seconds_sum", **ok) >= 6  # two 3 s layers
        # load, a, b, c (the PROJECT's models) succeeded; broken failed
        assert total(after, "kascade_tasks_total", **ok, phase="SUCCEEDED") == 4
        assert total(after, "kascade_tasks_total", flow="g", type="script", phase="FAILED") == 1
        assert total(after, "kascade_task_duration_seconds_count", flow="f") == 4
        assert total(after, "kascade_task_launch_latency_seconds_count", flow="f") == 4
        created = total(after, "kascade_kubernetes_requests_total", verb="create", resource="jobs")
        assert created == 5
        assert total(after, "kascade_reconcile_duration_seconds_count", kind="run") > 0
        assert total(after, "kascade_reconcile_duration_seconds_count", kind="schedule") > 0
        assert total(after, "kascade_reconcile_errors_total") == 0
        assert total(after, "kascade_run_tasks", flow="f") == 0

        linted = subprocess.run(
            [promtool(), "check", "metrics"],
            input=scrape(port),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr
    finally:
        operator.stop()

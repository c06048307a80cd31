"""The operator's metrics without a cluster: the scrape-time gauges, the event metrics,
the request labels, the metrics address, and reading state from the event loop."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kascade.api import RunPhase, TaskPhase
from kascade.operator.kube import request_labels
from kascade.operator.metrics import (
    Metrics,
    RunSample,
    TaskSample,
    in_loop,
    parse_address,
    run_gauges,
    task_gauges,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def scraped(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_run_gauges_count_active_and_queued_runs_per_flow_and_ignore_finished_ones():
    ago = NOW - timedelta(minutes=5)
    runs = [
        RunSample("ns", "f", RunPhase.RUNNING, ago),
        RunSample("ns", "f", RunPhase.FAILING, NOW - timedelta(seconds=30)),
        RunSample("ns", "f", RunPhase.QUEUED, NOW - timedelta(seconds=10)),
        RunSample("ns", "f", None, None),  # just created: waits like a queued run
        RunSample("ns", "f", RunPhase.SUCCEEDED, ago),
        RunSample("ns", "g", RunPhase.SCHEDULED, ago),
        RunSample("other", "f", RunPhase.ABORTING, ago),
    ]
    gauges = run_gauges(runs, NOW)
    assert gauges["active"] == {("ns", "f"): 2, ("ns", "g"): 0, ("other", "f"): 1}
    assert gauges["queued"] == {("ns", "f"): 2, ("ns", "g"): 0, ("other", "f"): 0}
    assert gauges["phase_seconds"] == {
        ("ns", "f", "RUNNING"): 300,
        ("ns", "f", "FAILING"): 30,
        ("ns", "f", "QUEUED"): 10,
        ("ns", "g", "SCHEDULED"): 300,
        ("other", "f", "ABORTING"): 300,
    }


def test_a_flow_whose_runs_all_ended_shows_zero_active_runs_only_if_it_had_one_open():
    assert run_gauges([RunSample("ns", "f", RunPhase.FAILED, NOW)], NOW)["active"] == {}


def test_task_gauges_count_phases_per_flow():
    samples = [
        TaskSample("ns", "f", (TaskPhase.RUNNING, TaskPhase.RUNNING, TaskPhase.PENDING)),
        TaskSample("ns", "f", (TaskPhase.SUCCEEDED,)),
        TaskSample("ns", "g", (TaskPhase.RETRYING,)),
    ]
    assert task_gauges(samples) == {
        ("ns", "f", "RUNNING"): 2,
        ("ns", "f", "PENDING"): 1,
        ("ns", "f", "SUCCEEDED"): 1,
        ("ns", "g", "RETRYING"): 1,
    }


def test_event_metrics_are_exposed_with_their_labels():
    metrics = Metrics()
    metrics.state.runs = lambda: [RunSample("ns", "f", RunPhase.RUNNING, NOW)]
    metrics.state.tasks = lambda: [TaskSample("ns", "f", (TaskPhase.RUNNING,))]
    metrics.run_finished("ns", "f", "MANUAL", RunPhase.FAILED, NOW, NOW + timedelta(seconds=90))
    metrics.task_finished("ns", "f", "model", TaskPhase.SUCCEEDED, NOW, NOW + timedelta(2))
    metrics.task_finished("ns", "f", "model", TaskPhase.UPSTREAM_FAILED, None, None)
    metrics.task_launched("ns", "f", 0.2)
    metrics.scheduled("ns", "f", 0.4)
    metrics.skipped("ns", "f", "Forbidden")
    metrics.api_request("create", "jobs", 201)
    found = scraped(metrics)
    run = (("flow", "f"), ("namespace", "ns"), ("phase", "FAILED"), ("type", "MANUAL"))
    assert found[("kascade_runs_total", run)] == 1
    assert found[("kascade_run_duration_seconds_sum", run[:3])] == 90
    bucket = "kascade_run_duration_seconds_bucket"
    assert found[(bucket, (run[0], ("le", "60.0"), *run[1:3]))] == 0
    assert found[(bucket, (run[0], ("le", "120.0"), *run[1:3]))] == 1
    upstream = (("flow", "f"), ("namespace", "ns"), ("phase", "UPSTREAM_FAILED"), ("type", "model"))
    assert found[("kascade_tasks_total", upstream)] == 1
    assert ("kascade_task_duration_seconds_count", upstream) not in found  # it never ran
    flow = (("flow", "f"), ("namespace", "ns"))
    assert found[("kascade_task_launch_latency_seconds_count", flow)] == 1
    assert found[("kascade_schedule_lag_seconds_sum", flow)] == pytest.approx(0.4)
    assert found[("kascade_schedules_skipped_total", (*flow, ("reason", "Forbidden")))] == 1
    request = (("code", "201"), ("resource", "jobs"), ("verb", "create"))
    assert found[("kascade_kubernetes_requests_total", request)] == 1
    assert found[("kascade_active_runs", flow)] == 1
    assert found[("kascade_run_tasks", (*flow, ("phase", "RUNNING")))] == 1
    assert not [name for name, _ in found if name.endswith("_created")]


def test_reconcile_times_every_pass_and_counts_failures_but_not_cancellation():
    metrics = Metrics()
    with metrics.reconcile("flow"):
        pass
    with pytest.raises(RuntimeError), metrics.reconcile("flow"):
        raise RuntimeError("boom")
    with pytest.raises(asyncio.CancelledError), metrics.reconcile("flow"):
        raise asyncio.CancelledError
    found = scraped(metrics)
    assert found[("kascade_reconcile_duration_seconds_count", (("kind", "flow"),))] == 3
    assert found[("kascade_reconcile_errors_total", (("kind", "flow"),))] == 1


def test_request_labels_name_the_verb_and_resource_of_client_calls():
    from kubernetes import client

    custom, batch, core = client.CustomObjectsApi(), client.BatchV1Api(), client.CoreV1Api()
    call = ("kascade.io", "v1alpha1", "ns", "runs", "r", {})
    assert request_labels(custom.patch_namespaced_custom_object_status, call) == (
        "patch",
        "runs/status",
    )
    assert request_labels(custom.get_namespaced_custom_object, call) == ("get", "runs")
    assert request_labels(batch.delete_namespaced_job, ("j", "ns")) == ("delete", "jobs")
    assert request_labels(core.read_namespaced_config_map, ("c", "ns")) == ("get", "configmaps")
    assert request_labels(core.create_namespaced_event, ("ns", {})) == ("create", "events")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0.0.0.0:8080", "0.0.0.0:8080"), (":9090", "0.0.0.0:9090"), ("[::]:8080", "[::]:8080")],
)
def test_metrics_addresses_are_host_and_port(given: str, expected: str):
    assert parse_address(given) == expected


@pytest.mark.parametrize("bad", ["8080", "host:", "host:http", "host:70000", "host:0"])
def test_a_bad_metrics_address_is_refused_with_an_example(bad: str):
    with pytest.raises(ValueError, match=r"expected HOST:PORT, e\.g\. 0\.0\.0\.0:8080"):
        parse_address(bad)


def test_state_is_read_in_the_event_loop_thread_for_a_scrape_from_another_thread():
    seen: dict[str, object] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        read = in_loop(loop, lambda: threading.current_thread().name)
        scrape = threading.Thread(target=lambda: seen.update(thread=read()), name="scrape")
        scrape.start()
        while scrape.is_alive():
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert seen["thread"] == threading.main_thread().name


def test_every_kascade_metric_is_documented_in_the_metrics_reference():
    reference = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    metrics = Metrics()
    metrics.state.runs = lambda: [RunSample("ns", "f", RunPhase.RUNNING, NOW)]
    metrics.state.tasks = lambda: [TaskSample("ns", "f", (TaskPhase.RUNNING,))]
    families = {
        family.name
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        if family.name.startswith("kascade_")
    }
    documented = {
        name.removesuffix("_total") if name.endswith("_total") else name
        for name in re.findall(r"`(kascade_[a-z_]+)`", reference)
    }
    assert len(families) == 15
    assert families <= documented, families - documented

"""Schedules and reruns on the real control plane. The operator's clock is shifted
(--clock-offset) so a minute boundary comes in seconds, and shifted again across a
restart to stand for downtime; Runs are what the scheduler creates."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import (
    GROUP,
    RUN_FOR,
    VERSION,
    events,
    finish,
    jobs_by_task,
    kascade,
    phase_of,
    run_body,
    setup_flow,
    trigger,
)
from tests.integration.waiting import wait_for

LEAD_SECONDS = 4


def offset_before_minute(lead: float = LEAD_SECONDS) -> float:
    """A clock offset that puts the operator `lead` seconds before a minute boundary."""
    now = time.time()
    return (60 - lead - now % 60) % 60


def runs(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    found = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "runs")
    return {r["metadata"]["name"]: r for r in found["items"]}


def scheduled(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(
        name for name, r in runs(cluster, namespace).items() if r["spec"]["type"] == "ORCHESTRATED"
    )


def run_tasks(cluster: Cluster, namespace: str, run: str) -> dict[str, dict[str, Any]]:
    """The Tasks of one run by id (ids repeat across runs in a namespace)."""
    found = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    return {t["spec"]["id"]: t for t in found["items"] if t["spec"]["runRef"]["name"] == run}


def all_tasks(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    return list(found["items"])


def flow_status(cluster: Cluster, namespace: str, name: str = "f") -> dict[str, Any]:
    body = cluster.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "flows", name)
    return body.get("status") or {}


def start(operator: OperatorProcess, offset: float) -> None:
    operator.extra = ("--clock-offset", f"{offset:.3f}")
    operator.start()


def schedule_flow(
    cluster: Cluster, namespace: str, tmp_path: Path, run_for: str = "1s", **schedule: Any
) -> None:
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "job", "script": {"name": "step"}}],
        schedule={"cron": "* * * * *", **schedule},
        defaults={"podMetadata": {"annotations": {RUN_FOR: run_for}}},
    )


def test_runs_are_created_on_time_and_once_across_restarts(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    operator = OperatorProcess(cluster, namespace, tmp_path)
    offset = offset_before_minute()
    start(operator, offset)
    try:
        schedule_flow(cluster, namespace, tmp_path)
        first = wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 1,
            timeout=30,
            what="the first scheduled run",
        )[0]
        body = run_body(cluster, namespace, first)
        instant = datetime.fromisoformat(body["spec"]["scheduledTime"].replace("Z", "+00:00"))
        assert first == f"f-{int(instant.timestamp())}"
        assert instant.second == 0
        created = datetime.fromisoformat(
            body["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        ).timestamp()
        assert abs(created + offset - instant.timestamp()) <= 2  # second-granular timestamps
        assert finish(cluster, namespace, first)["status"]["phase"] == "SUCCEEDED"
        # a restart within the same minute creates nothing new
        operator.kill()
        start(operator, offset)
        time.sleep(3)  # a restart has no observable "done" event; give it a few seconds
        assert scheduled(cluster, namespace) == [first]
        # down past the next instant: it runs on restart, once
        operator.kill()
        start(operator, offset + 60)
        second = wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 2,
            timeout=30,
            what="the missed run",
        )[1]
        assert second == f"f-{int(instant.timestamp()) + 60}"
        expected = datetime.fromtimestamp(instant.timestamp() + 60, UTC).strftime("%Y-%m-%dT%H:%M")
        status = wait_for(
            lambda: flow_status(cluster, namespace),
            lambda s: str(s.get("lastScheduleTime", "")).startswith(expected),
            timeout=30,
            what="the Flow status to show the last schedule time",
        )
        assert status["schedule"] == "* * * * *"
        assert status["nextScheduleTime"] > status["lastScheduleTime"]
    finally:
        operator.stop()


def test_missed_instants_outside_the_deadline_are_skipped_with_an_event(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    operator = OperatorProcess(cluster, namespace, tmp_path)
    offset = offset_before_minute()
    start(operator, offset)
    try:
        schedule_flow(cluster, namespace, tmp_path, startingDeadlineSeconds=20)
        wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 1,
            timeout=30,
            what="the first run",
        )
        operator.kill()
        start(operator, offset + 60 + 40)  # the next instant is now 40 s late
        warning = wait_for(
            lambda: [e for e in events(cluster, namespace, "f") if e.reason == "Skipped"],
            lambda found: bool(found),
            timeout=30,
            what="a Skipped event",
        )
        assert "past startingDeadlineSeconds 20" in warning[0].message
        assert len(scheduled(cluster, namespace)) == 1
        operator.kill()
        start(operator, offset + 120 + 5)  # and this one only 5 s: inside the deadline
        wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 2,
            timeout=30,
            what="the run inside the deadline",
        )
    finally:
        operator.stop()


def test_forbid_skips_while_a_run_is_active_and_replace_aborts_it(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    operator = OperatorProcess(cluster, namespace, tmp_path)
    offset = offset_before_minute()
    start(operator, offset)
    try:
        schedule_flow(cluster, namespace, tmp_path, run_for="10m", concurrencyPolicy="Forbid")
        first = wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 1,
            timeout=30,
            what="the first run",
        )[0]
        wait_for(
            lambda: phase_of(cluster, namespace, first),
            lambda p: p == "RUNNING",
            timeout=30,
            what="the first run to run",
        )
        operator.kill()
        start(operator, offset + 60)
        skipped = wait_for(
            lambda: [e for e in events(cluster, namespace, "f") if e.reason == "Skipped"],
            lambda found: bool(found),
            timeout=30,
            what="Forbid's Skipped event",
        )
        assert f"concurrencyPolicy Forbid: run {first} is still active" in skipped[0].message
        assert scheduled(cluster, namespace) == [first]

        cluster.kubectl(
            "patch",
            "flow",
            "f",
            "-n",
            namespace,
            "--type",
            "merge",
            "-p",
            '{"spec": {"schedule": {"concurrencyPolicy": "Replace"}}}',
        )
        operator.kill()
        start(operator, offset + 120)
        second = wait_for(
            lambda: scheduled(cluster, namespace),
            lambda r: len(r) == 2,
            timeout=30,
            what="the replacing run",
        )[1]
        assert finish(cluster, namespace, first)["status"]["phase"] == "ABORTED"
        wait_for(
            lambda: phase_of(cluster, namespace, second),
            lambda p: p == "RUNNING",
            timeout=30,
            what="the replacing run to run",
        )
    finally:
        operator.stop()


def test_suspend_stops_runs_and_unsuspending_starts_no_burst(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    operator = OperatorProcess(cluster, namespace, tmp_path)
    offset = offset_before_minute()
    start(operator, offset)
    try:
        schedule_flow(cluster, namespace, tmp_path, suspend=True)
        checkpoint = wait_for(
            lambda: flow_status(cluster, namespace).get("scheduleCheckpoint"),
            lambda c: c is not None,
            timeout=30,
            what="the suspended instant to be dealt with",
        )
        assert scheduled(cluster, namespace) == []
        operator.kill()
        start(operator, offset + 180)  # three more instants pass while suspended and down
        # The restarted operator deals with them while the Flow is still suspended (the
        # unsuspend must not overtake its first look, or the latest would rightly run).
        wait_for(
            lambda: flow_status(cluster, namespace).get("scheduleCheckpoint"),
            lambda c: c != checkpoint,
            timeout=30,
            what="the checkpoint to move past the instants missed while down",
        )
        cluster.kubectl(
            "patch",
            "flow",
            "f",
            "-n",
            namespace,
            "--type",
            "merge",
            "-p",
            '{"spec": {"schedule": {"suspend": false}}}',
        )
        generation = cluster.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, "flows", "f"
        )["metadata"]["generation"]
        wait_for(
            lambda: flow_status(cluster, namespace).get("observedGeneration"),
            lambda g: g == generation,
            timeout=30,
            what="the operator to see the unsuspended Flow",
        )
        time.sleep(2)  # nothing must appear: give a burst the chance to show itself
        assert scheduled(cluster, namespace) == []
    finally:
        operator.stop()


def test_history_limits_delete_the_oldest_finished_runs(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "job", "script": {"name": "step"}}],
        successfulRunsHistoryLimit=1,
        failedRunsHistoryLimit=1,
    )
    made = []
    for _ in range(3):
        made.append(trigger(cluster, namespace))
        finish(cluster, namespace, made[-1])
    wait_for(
        lambda: sorted(runs(cluster, namespace)),
        lambda names: names == [made[-1]],
        timeout=60,
        what="only the newest run to be kept",
    )
    wait_for(
        lambda: {t["spec"]["runRef"]["name"] for t in all_tasks(cluster, namespace)},
        lambda owners: owners == {made[-1]},
        timeout=60,
        what="the pruned runs' Tasks to go",
    )


def test_a_run_scheduled_for_later_waits_in_scheduled(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(cluster, namespace, tmp_path, [{"name": "job", "script": {"name": "step"}}])
    later = datetime.fromtimestamp(time.time() + 6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
                "metadata": {"name": "later"},
                "spec": {"flowRef": {"name": "f"}, "scheduledTime": later},
            }
        ),
    )
    wait_for(
        lambda: phase_of(cluster, namespace, "later"),
        lambda p: p == "SCHEDULED",
        timeout=30,
        what="the run to wait",
    )
    body = finish(cluster, namespace, "later")
    assert body["status"]["phase"] == "SUCCEEDED"
    started = datetime.fromisoformat(body["status"]["startTime"].replace("Z", "+00:00"))
    assert started >= datetime.fromisoformat(later.replace("Z", "+00:00"))


def test_reruns_reuse_tasks_without_jobs_and_are_listed_on_the_original(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    nodes = [
        {"name": "models", "transformation": {}},
        {
            "name": "bad",
            "script": {"name": "step"},
            "dependsOn": ["models"],
            "podMetadata": {"labels": {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"}},
        },
        {"name": "after", "script": {"name": "step"}, "dependsOn": ["bad"]},
    ]
    setup_flow(cluster, namespace, tmp_path, nodes)
    original = trigger(cluster, namespace)
    assert finish(cluster, namespace, original)["status"]["phase"] == "FAILED"
    jobs_before = {task: len(j) for task, j in jobs_by_task(cluster, namespace).items()}
    assert jobs_before == {"a": 1, "b": 1, "c": 1, "bad": 1}

    failed = kascade(cluster, "rerun", original, "--failed", "-n", namespace)
    assert failed.returncode == 0, failed.stderr
    rerun = failed.stdout.strip()
    finish(cluster, namespace, rerun)
    rerun_tasks = run_tasks(cluster, namespace, rerun)
    assert {i: t["status"]["phase"] for i, t in rerun_tasks.items()} == {
        "a": "REUSED",
        "b": "REUSED",
        "c": "REUSED",
        "bad": "FAILED",
        "after": "UPSTREAM_FAILED",
    }
    assert rerun_tasks["a"]["status"]["reusedFrom"] == original
    jobs_after = {task: len(j) for task, j in jobs_by_task(cluster, namespace).items()}
    assert jobs_after == {"a": 1, "b": 1, "c": 1, "bad": 2}  # REUSED tasks made no Job

    every = kascade(cluster, "rerun", original, "--all", "-n", namespace)
    finish(cluster, namespace, every.stdout.strip())
    assert {task: len(j) for task, j in jobs_by_task(cluster, namespace).items()} == {
        "a": 2,
        "b": 2,
        "c": 2,
        "bad": 3,
    }
    cluster.kubectl(
        "annotate",
        "run",
        original,
        "-n",
        namespace,
        "kascade.io/rerun=task:a",
        "kascade.io/rerun-downstream=true",
    )
    annotated = wait_for(
        lambda: runs(cluster, namespace),
        lambda found: any(r["spec"]["type"] == "RERUN_TASK" for r in found.values()),
        timeout=30,
        what="the annotation's rerun",
    )
    rerun_task = next(n for n, r in annotated.items() if r["spec"]["type"] == "RERUN_TASK")
    finish(cluster, namespace, rerun_task)
    phases = {i: t["status"]["phase"] for i, t in run_tasks(cluster, namespace, rerun_task).items()}
    assert phases["c"] == "REUSED"  # not downstream of a
    assert phases["a"] == "SUCCEEDED"
    assert phases["b"] == "SUCCEEDED"  # downstream of a
    listed = run_body(cluster, namespace, original)["status"]["reruns"]
    assert listed == [rerun, every.stdout.strip(), rerun_task]
    annotations = run_body(cluster, namespace, original)["metadata"].get("annotations") or {}
    assert "kascade.io/rerun" not in annotations


def test_a_rerun_of_an_unfinished_run_is_refused(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "job", "script": {"name": "step"}}],
        defaults={"podMetadata": {"annotations": {RUN_FOR: "10m"}}},
    )
    active = trigger(cluster, namespace)
    wait_for(
        lambda: phase_of(cluster, namespace, active),
        lambda p: p == "RUNNING",
        timeout=30,
        what="the run to start",
    )
    refused = kascade(cluster, "rerun", active, "--all", "-n", namespace)
    assert refused.returncode == 1
    assert f"run `{active}` is RUNNING; only a finished run can be rerun" in refused.stderr
    cluster.kubectl("annotate", "run", active, "-n", namespace, "kascade.io/rerun=all")
    event = wait_for(
        lambda: [e for e in events(cluster, namespace, active) if e.reason == "RerunRefused"],
        lambda found: bool(found),
        timeout=30,
        what="a RerunRefused event",
    )
    assert "only a finished run can be rerun" in event[0].message
    assert [r for r in runs(cluster, namespace).values() if r["spec"]["type"] != "MANUAL"] == []


def test_a_bad_schedule_is_refused_or_marked_invalid_and_nothing_crashes(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    refused = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        stdin=yaml.safe_dump(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Flow",
                "metadata": {"name": "short"},
                "spec": {
                    "schedule": {"cron": "* * *"},
                    "nodes": [{"name": "a", "script": {"name": "s"}}],
                },
            }
        ),
    )
    assert refused.returncode != 0
    assert "spec.schedule.cron" in refused.stderr
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "job", "script": {"name": "step"}}],
        name="odd",
        schedule={"cron": "61 * * * *", "timezone": "Mars/Olympus"},
    )
    condition = wait_for(
        lambda: (flow_status(cluster, namespace, "odd").get("conditions") or [None])[0],
        lambda c: c is not None,
        timeout=30,
        what="the Valid condition",
    )
    assert condition["status"] == "False"
    assert "spec.schedule.cron: invalid cron expression '61 * * * *'" in condition["message"]
    assert "spec.schedule.timezone: unknown IANA time zone 'Mars/Olympus'" in condition["message"]
    assert operator.alive

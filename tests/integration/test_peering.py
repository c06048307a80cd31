"""Two operator replicas with kopf peering on the real control plane: the one started
first works, the other stands by; when the working one dies, the standby takes over the
run in flight and finishes it without a duplicate Job."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import (
    RUN_FOR,
    finish,
    jobs,
    jobs_by_task,
    setup_flow,
    trigger,
)
from tests.integration.waiting import wait_for

PEERING = "kascade"
LIFETIME = 10
LEADING = "event=leading"
STARTED_JOB = "event=started job="


def peering_object(cluster: Cluster, namespace: str) -> None:
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": PEERING, "namespace": namespace},
    }
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def replica(cluster: Cluster, namespace: str, workdir: Path, *extra: str) -> OperatorProcess:
    workdir.mkdir()
    peering = ("--peering", PEERING, "--peering-lifetime", str(LIFETIME))
    return OperatorProcess(cluster, namespace, workdir, extra=(*peering, *extra))


def load_then_models(cluster: Cluster, namespace: str, tmp_path: Path, run_for: str) -> None:
    """Flow `f`: a script, then the project's models, each Job running for `run_for`."""
    nodes = [
        {"name": "load", "script": {"name": "step"}},
        {"name": "models", "transformation": {}, "dependsOn": ["load"]},
    ]
    annotations = {RUN_FOR: run_for}
    setup_flow(
        cluster, namespace, tmp_path, nodes, defaults={"podMetadata": {"annotations": annotations}}
    )


def test_one_replica_works_and_the_standby_takes_over_when_it_dies(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    peering_object(cluster, namespace)
    first = replica(cluster, namespace, tmp_path / "first")
    second = replica(cluster, namespace, tmp_path / "second")
    first.start()
    wait_for(first.log, lambda log: LEADING in log, timeout=30, what="the first replica to lead")
    second.start()
    try:
        load_then_models(cluster, namespace, tmp_path, "4s")
        run = trigger(cluster, namespace)
        wait_for(
            lambda: len(jobs(cluster, namespace)),
            lambda count: count >= 1,
            timeout=30,
            what="the first Job",
        )
        # the Job can be seen a moment before the replica has logged its creation
        wait_for(first.log, lambda log: STARTED_JOB in log, timeout=10, what="the log line")
        assert STARTED_JOB not in second.log()
        assert LEADING not in second.log(), "the standby must not work while the first lives"

        first.kill()  # no goodbye: the standby waits for the peering record to expire
        killed = time.monotonic()
        wait_for(
            second.log,
            lambda log: LEADING in log,
            timeout=LIFETIME + 30,
            what="the standby to take over",
        )
        took_over = time.monotonic() - killed
        assert took_over <= LIFETIME + 15, f"takeover took {took_over:.1f}s"

        body = finish(cluster, namespace, run, timeout=120)
        assert body["status"]["phase"] == "SUCCEEDED", body["status"]
        assert {task: len(found) for task, found in jobs_by_task(cluster, namespace).items()} == {
            "load": 1,
            "a": 1,
            "b": 1,
            "c": 1,
        }
        assert STARTED_JOB in second.log()
    finally:
        first.stop()
        second.stop()
    for process in (first, second):
        assert "Traceback" not in process.log(), process.log()[-4000:]


def test_a_replica_that_starts_later_never_takes_over_from_a_working_one(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    peering_object(cluster, namespace)
    first = replica(cluster, namespace, tmp_path / "first")
    second = replica(cluster, namespace, tmp_path / "second")
    first.start()
    try:
        wait_for(first.log, lambda log: LEADING in log, timeout=30, what="the first to lead")
        second.start()
        setup_flow(cluster, namespace, tmp_path, [{"name": "load", "script": {"name": "step"}}])
        run = trigger(cluster, namespace)
        assert finish(cluster, namespace, run)["status"]["phase"] == "SUCCEEDED"
        assert LEADING not in second.log()
        assert "event=standing-by" not in first.log()
        # a graceful stop hands over at once: the record is withdrawn, not left to expire
        stopped = time.monotonic()
        first.stop()
        wait_for(second.log, lambda log: LEADING in log, timeout=LIFETIME, what="a handover")
        assert time.monotonic() - stopped < LIFETIME
    finally:
        first.stop()
        second.stop()


def test_a_working_replica_paused_by_a_higher_priority_one_stops_its_runs(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    peering_object(cluster, namespace)
    first = replica(cluster, namespace, tmp_path / "first")
    first.start()
    second = replica(cluster, namespace, tmp_path / "second", "--priority", str(10**18))
    try:
        wait_for(first.log, lambda log: LEADING in log, timeout=30, what="the first to lead")
        load_then_models(cluster, namespace, tmp_path, "3s")
        run = trigger(cluster, namespace)
        wait_for(first.log, lambda log: STARTED_JOB in log, timeout=30, what="a first Job")
        second.start()
        wait_for(first.log, lambda log: "event=standing-by" in log, timeout=30, what="a pause")
        wait_for(second.log, lambda log: LEADING in log, timeout=30, what="the second to lead")
        jobs_by_first = first.log().count(STARTED_JOB)
        body = finish(cluster, namespace, run, timeout=120)
        assert body["status"]["phase"] == "SUCCEEDED", body["status"]
        assert first.log().count(STARTED_JOB) == jobs_by_first, "a paused replica worked on"
        assert STARTED_JOB in second.log()
        assert all(len(found) == 1 for found in jobs_by_task(cluster, namespace).values())
    finally:
        first.stop()
        second.stop()

"""The operator's pure parts: names, admission, Job manifests, outcomes, statuses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from kascade.api import RunPhase, TaskPhase, TaskType
from kascade.api.flow import TaskSettings
from kascade.engine.attempts import Progress
from kascade.engine.launch import RunIdentity, launch_context, merged_settings
from kascade.engine.launch import launch as engine_launch
from kascade.engine.naming import (
    child_run_name,
    dns_name,
    job_name,
    label_value,
    scheduled_run_name,
    task_object_name,
)
from kascade.engine.plan import PlannedTask
from kascade.host.records import AttemptRecord, RunRecord, task_record
from kascade.operator.executors import RunFacts
from kascade.operator.facts import job_facts, job_outcome, pod_facts
from kascade.operator.flows import runs_summary
from kascade.operator.jobs import ClusterAttempt, job_body
from kascade.operator.status import run_status
from kascade.operator.taskobjects import task_status
from tests.unit.decisions import task

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["shop", "Hello World", "a_b", "x" * 300, "-lead", "ü-ber"])
def test_names_are_valid_dns_labels_and_stable(text):
    name = dns_name(text)
    assert DNS_LABEL.match(name), name
    assert len(name) <= 63
    assert dns_name(text) == name


def test_names_that_had_to_change_stay_distinct():
    assert task_object_name("r", "a-b") == "r-a-b"
    assert task_object_name("r", "a_b") != task_object_name("r", "a-b")
    assert task_object_name("r", "a_b") != task_object_name("r", "a.b")


def test_job_names_fit_63_characters_and_end_with_the_attempt():
    long_task = task_object_name("shop-daily-20261122-105540-9dca", "fct_payments_by_method")
    for attempt in (1, 12, 100):
        name = job_name(long_task, attempt)
        assert len(name) <= 63
        assert name.endswith(f"-{attempt}")
        assert DNS_LABEL.match(name)
    assert job_name(long_task, 1) != job_name(
        task_object_name("shop-daily-20261122-105540-9dca", "fct_payments_by_methox"), 1
    )


def test_other_names():
    assert scheduled_run_name("shop", 1767225600) == "shop-1767225600"
    assert child_run_name("r", "sub", 2) == "r-sub-2"
    value = label_value("a" * 100)
    assert len(value) <= 63
    assert label_value("shop-daily") == "shop-daily"


def attempt(**changes):
    base = {
        "namespace": "ns",
        "run": "r",
        "flow": "f",
        "task_object": "r-load",
        "task_uid": "uid-1",
        "task_id": "load",
        "attempt": 2,
        "job": "r-load-2",
        "project_config_map": "shop-project",
    }
    return ClusterAttempt(**{**base, **changes})


def launch(settings=None, env=None, warehouse="duckdb:///w.duckdb"):
    planned = PlannedTask(
        id="load", node="load", type=TaskType.SCRIPT, target="load_raw", timeout_seconds=60
    )
    given = {
        "args": ["--day", "{{ params.day }}"],
        "env": env if env is not None else [{"name": "A", "value": "1"}],
        "podMetadata": {"labels": {"team": "data"}, "annotations": {"x": "y"}},
        **(settings or {}),
    }
    run = RunIdentity("r", "f", "MANUAL", None, T0)
    context = launch_context(run, {"day": "2026-11-01"}, {})
    return engine_launch(planned, given, 2, run, context, warehouse)


def test_job_manifest_runs_the_task_restricted_and_owned_by_its_task():
    job = job_body(attempt(), launch(), "img:1")
    assert job["metadata"]["name"] == "r-load-2"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Task"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 60
    pod = spec["template"]
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["labels"]["kascade.io/attempt"] == "2"
    assert pod["metadata"]["annotations"]["x"] == "y"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "img:1"
    assert container["command"] == ["kascade", "task", "exec"]
    assert container["args"] == ["script", "load_raw", "--", "--day", "2026-11-01"]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/kascade/work", "/tmp"} <= mounts  # writable places on a read-only root
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert env["A"] == "1"
    assert env["KASCADE_TASK"] == "load"
    assert env["KASCADE_WAREHOUSE"] == "duckdb:///w.duckdb"
    assert env["KASCADE_PROJECT_ARCHIVE"] == "/kascade/archive/project.tar.gz"
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes["project"]["configMap"]["name"] == "shop-project"


def test_a_flow_can_override_image_security_and_warehouse():
    job = job_body(
        attempt(),
        launch(
            settings={"image": "mine:2", "securityContext": {"runAsUser": 0}},
            env=[{"name": "KASCADE_WAREHOUSE", "value": "postgres://x"}],
        ),
        "img:1",
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mine:2"
    assert container["securityContext"] == {"runAsUser": 0}
    warehouses = [v for v in container["env"] if v["name"] == "KASCADE_WAREHOUSE"]
    assert warehouses == [{"name": "KASCADE_WAREHOUSE", "value": "postgres://x"}]


def test_task_pods_go_where_the_flow_places_them():
    placement = {
        "nodeSelector": {"kubernetes.io/hostname": "real-node"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "data"}],
        "imagePullSecrets": [{"name": "regcred"}],
    }
    pod = job_body(attempt(), launch(settings=placement), "img:1")["spec"]["template"]["spec"]
    assert {key: pod[key] for key in placement} == placement
    unplaced = job_body(attempt(), launch(), "img:1")["spec"]["template"]["spec"]
    assert not set(placement) & set(unplaced)


def test_a_flows_warehouse_password_reaches_the_pod_only_as_a_secret_reference():
    settings = {
        "warehouse": "postgresql://kascade@pg:5432/shop?schema=public",
        "warehousePassword": {"name": "warehouse", "key": "password"},
    }
    container = job_body(attempt(), launch(settings=settings), "img:1")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {var["name"]: var for var in container["env"]}
    assert env["KASCADE_WAREHOUSE"]["value"] == settings["warehouse"]
    assert env["PGPASSWORD"] == {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "warehouse", "key": "password"}},
    }


def job(conditions=None, **status):
    return job_facts(
        {
            "metadata": {
                "name": "j-1",
                "annotations": {"kascade.io/task-id": "t"},
                "labels": {"kascade.io/attempt": "1"},
                "creationTimestamp": "2026-11-22T10:00:00Z",
            },
            "status": {
                "startTime": "2026-11-22T10:00:01Z",
                "conditions": conditions or [],
                **status,
            },
        }
    )


def pod(**terminated):
    return pod_facts(
        {
            "metadata": {"labels": {"batch.kubernetes.io/job-name": "j-1"}},
            "status": {"containerStatuses": [{"state": {"terminated": terminated}}]},
        }
    )


def test_outcomes_of_jobs():
    assert job_outcome(None, []).progress == Progress.UNSEEN
    assert job_outcome(job(), []).progress == Progress.RUNNING
    done = job_outcome(
        job([{"type": "Complete", "status": "True"}], completionTime="2026-11-22T10:00:05Z"),
        [pod(exitCode=0, message='{"rows": 3}')],
    )
    assert (done.progress, done.exit_code, done.outputs) == (Progress.ENDED, 0, {"rows": 3})
    assert done.ended == datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)
    failed = job_outcome(
        job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]),
        [pod(exitCode=3, reason="Error", message="boom")],
    )
    assert (failed.exit_code, failed.reason, failed.message) == (3, "Error", "boom")
    late = job_outcome(
        job(
            [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                }
            ]
        ),
        [],
    )
    assert late.reason == "DeadlineExceeded"


def test_task_status_lists_attempts_and_is_written_whole():
    record = task_record(task("t"), {})
    record.phase, record.reason = TaskPhase.FAILED, "Error"
    record.message = "attempt 1 failed (exit code 1): boom"
    record.attempts = [
        AttemptRecord(
            number=1,
            start_time=T0,
            end_time=T0 + timedelta(seconds=4),
            exit_code=1,
            reason="Error",
            message="boom",
            job="j-1",
        )
    ]
    status = task_status(record)
    assert status["phase"] == "FAILED"
    assert status["message"] == "attempt 1 failed (exit code 1): boom"
    assert status["outputs"] is None
    assert status["nextRetryTime"] is None
    assert status["attemptCount"] == 1
    assert status["attempts"][0] == {
        "number": 1,
        "jobName": "j-1",
        "startTime": "2026-11-22T10:00:00Z",
        "endTime": "2026-11-22T10:00:04Z",
        "exitCode": 1,
        "reason": "Error",
        "message": "boom",
    }
    assert status["completionTime"] == "2026-11-22T10:00:04Z"


def test_run_status_counts_tasks_not_detail():
    tasks = [task_record(t, {}) for t in (task("a"), task("b", "a"), task("h", hook="onFailure"))]
    tasks[0].phase, tasks[1].phase = TaskPhase.SUCCEEDED, TaskPhase.RUNNING
    record = RunRecord(
        id="r",
        flow="f",
        created_at=T0,
        phase=RunPhase.RUNNING,
        started_at=T0,
        parameters={"x": 1},
        max_parallel_tasks=2,
        tasks=tasks,
    )
    status = run_status(record, None, None, T0 + timedelta(seconds=5))
    assert status["progress"] == "1/2"
    assert {k: v for k, v in status["taskCounts"].items() if v} == {"RUNNING": 1, "SUCCEEDED": 1}
    assert sum(status["taskCounts"].values()) == status["totalTasks"] == 2
    assert status["taskCounts"]["FAILED"] == 0  # written, so a merge patch clears it
    assert status["settings"]["maxParallelTasks"] == 2
    assert status["duration"] is None
    assert "tasks" not in status


def test_node_settings_override_defaults_by_name_and_key():
    defaults = TaskSettings.model_validate(
        {
            "image": "i:1",
            "retries": 2,
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "podMetadata": {"labels": {"team": "x", "tier": "1"}},
        }
    )
    node = TaskSettings.model_validate(
        {
            "retries": 0,
            "env": [{"name": "B", "value": "override"}],
            "podMetadata": {"labels": {"tier": "2"}},
        }
    )
    merged = merged_settings(defaults, node)
    assert merged["image"] == "i:1"
    assert merged["retries"] == 0
    assert merged["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "override"}]
    assert merged["podMetadata"] == {"labels": {"team": "x", "tier": "2"}}


def test_flow_runs_summary():
    runs = [
        RunFacts(
            "r1",
            "ns",
            "f",
            RunPhase.SUCCEEDED,
            T0,
            T0,
            T0 + timedelta(minutes=1),
            False,
            "MANUAL",
            None,
        ),
        RunFacts(
            "r2",
            "ns",
            "f",
            RunPhase.RUNNING,
            T0 + timedelta(minutes=5),
            T0,
            None,
            False,
            "MANUAL",
            None,
        ),
    ]
    summary = runs_summary(runs)
    assert summary["activeRuns"] == ["r2"]
    assert summary["lastRun"]["name"] == "r2"
    assert summary["lastRun"]["phase"] == "RUNNING"
    assert runs_summary([]) == {"activeRuns": None, "lastRun": None}

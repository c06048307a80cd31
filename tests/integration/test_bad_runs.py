"""Bad input on the cluster ends a run with a reason, never hangs it: flows that start
themselves or each other, SUBFLOW runs without a parent, Jobs the API server refuses,
spec fields added after creation, selections that select nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import (
    GROUP,
    VERSION,
    events,
    finish,
    run_body,
    setup_flow,
    tasks,
    trigger,
)
from tests.integration.waiting import wait_for


def runs(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "runs")
    return list(found["items"])


def create_run(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Run", "metadata": {"name": name}}
    cluster.kubectl(
        "create", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({**body, "spec": spec})
    )


def valid_condition(
    cluster: Cluster, namespace: str, flow: str, generation: int = 1
) -> dict[str, Any]:
    def condition() -> dict[str, Any] | None:
        body = cluster.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, "flows", flow
        )
        found = (body.get("status") or {}).get("conditions") or []
        current = [c for c in found if c.get("observedGeneration") == generation]
        return current[0] if current else None

    return wait_for(condition, lambda c: c is not None, timeout=60, what=f"Flow {flow} Valid")


def test_a_flow_that_starts_itself_fails_at_the_repeat_naming_the_chain(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(cluster, namespace, tmp_path, [{"name": "again", "flow": {"name": "f"}}])
    run = trigger(cluster, namespace)
    ended = finish(cluster, namespace, run)["status"]
    assert ended["phase"] == "FAILED"
    task = tasks(cluster, namespace)["again"]["status"]
    assert task["phase"] == "FAILED"
    assert "flow recursion: f → f" in task["message"]
    assert task["attempts"][0]["reason"] == "StartError"
    assert [r["metadata"]["name"] for r in runs(cluster, namespace)] == [run]
    assert operator.alive


def test_flows_that_start_each_other_stop_at_the_first_repeat(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(cluster, namespace, tmp_path, [{"name": "to-b", "flow": {"name": "b"}}], name="a")
    setup_flow(cluster, namespace, tmp_path, [{"name": "to-a", "flow": {"name": "a"}}], name="b")
    # the Flow whose edit closed the cycle warns about it, naming the chain
    condition = valid_condition(cluster, namespace, "b")
    assert condition["status"] == "True"
    assert "flows start each other: b → a → b" in condition["message"]
    assert any(e.reason == "FlowCycle" for e in events(cluster, namespace, "b"))

    run = trigger(cluster, namespace, "a")
    assert finish(cluster, namespace, run, timeout=120)["status"]["phase"] == "FAILED"
    every = runs(cluster, namespace)
    assert len(every) == 2, [r["metadata"]["name"] for r in every]
    child = next(r for r in every if r["metadata"]["name"] != run)
    assert child["spec"]["type"] == "SUBFLOW"
    assert child["status"]["lineage"] == ["a", "b"]
    assert child["status"]["phase"] == "FAILED"
    by_run = {t["metadata"]["labels"]["kascade.io/run"]: t for t in tasks_list(cluster, namespace)}
    repeat = by_run[child["metadata"]["name"]]["status"]
    assert "flow recursion: a → b → a" in repeat["message"]


def tasks_list(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    return list(found["items"])


def test_child_flows_deeper_than_the_maximum_fail_naming_the_chain(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    operator = OperatorProcess(cluster, namespace, tmp_path, extra=("--max-flow-depth", "1"))
    operator.start()
    try:
        setup_flow(
            cluster, namespace, tmp_path, [{"name": "down", "flow": {"name": "b"}}], name="a"
        )
        setup_flow(
            cluster, namespace, tmp_path, [{"name": "down", "flow": {"name": "c"}}], name="b"
        )
        setup_flow(
            cluster, namespace, tmp_path, [{"name": "s", "script": {"name": "step"}}], name="c"
        )
        run = trigger(cluster, namespace, "a")
        assert finish(cluster, namespace, run, timeout=120)["status"]["phase"] == "FAILED"
        messages = [
            (t.get("status") or {}).get("message") or "" for t in tasks_list(cluster, namespace)
        ]
        assert any("nested too deeply: a → b → c" in m for m in messages), messages
        assert len(runs(cluster, namespace)) == 2
    finally:
        operator.stop()
    assert "Traceback" not in operator.log()


def test_a_subflow_run_without_its_parent_fails_before_it_starts(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    setup_flow(cluster, namespace, tmp_path, [{"name": "s", "script": {"name": "step"}}])
    create_run(
        cluster,
        namespace,
        "orphan",
        {"flowRef": {"name": "f"}, "type": "SUBFLOW", "parent": {"run": "nobody", "task": "t"}},
    )
    ended = finish(cluster, namespace, "orphan")["status"]
    assert ended["phase"] == "FAILED"
    assert "spec.parent.run: the parent run `nobody` does not exist" in ended["message"]
    assert any(e.reason == "InvalidRun" for e in events(cluster, namespace, "orphan"))
    assert cluster.batch().list_namespaced_job(namespace).items == []


def test_a_job_the_api_server_refuses_ends_the_attempt(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    # a pod label value Kubernetes refuses: the Flow is fine, the Job is not
    bad = {"labels": {"team": "not a valid label value!"}}
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        [{"name": "s", "script": {"name": "step"}, "podMetadata": bad, "retries": 1}],
    )
    run = trigger(cluster, namespace)
    ended = finish(cluster, namespace, run)["status"]
    assert ended["phase"] == "FAILED"
    task = tasks(cluster, namespace)["s"]["status"]
    assert [a["reason"] for a in task["attempts"]] == ["StartError", "StartError"]
    assert "the API server refused the Job" in task["attempts"][0]["message"]
    assert "spec.template.labels: Invalid value" in task["attempts"][0]["message"]


@pytest.mark.parametrize(
    ("added", "field"),
    [
        ({"scheduledTime": "2030-01-01T00:00:00Z"}, "spec.scheduledTime"),
        ({"parameters": {"x": "1"}}, "spec.parameters"),
        ({"flowRef": {"name": "other"}}, "spec.flowRef"),
    ],
)
def test_run_spec_fields_cannot_be_added_or_changed_after_creation(
    cluster: Cluster, namespace: str, added: dict[str, Any], field: str
):
    create_run(cluster, namespace, "r", {"flowRef": {"name": "f"}})
    with pytest.raises(ApiException) as refused:
        cluster.custom().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "runs", "r", {"spec": added}
        )
    assert refused.value.status == 422
    assert f"{field} is immutable: only spec.abort may change" in str(refused.value.body)
    cluster.custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "runs", "r", {"spec": {"abort": True}}
    )
    assert run_body(cluster, namespace, "r")["spec"]["abort"] is True


def test_a_transformation_that_selects_nothing_is_invalid_unless_allowed(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
):
    node: dict[str, Any] = {"name": "none", "transformation": {"include": ["tag:nothing"]}}
    setup_flow(cluster, namespace, tmp_path, [node])
    condition = valid_condition(cluster, namespace, "f")
    assert condition["status"] == "False"
    assert "node `none` selects no models (include: tag:nothing)" in condition["message"]
    run = trigger(cluster, namespace)
    assert finish(cluster, namespace, run)["status"]["phase"] == "FAILED"

    node["transformation"]["allowEmpty"] = True
    setup_flow(cluster, namespace, tmp_path, [node, {"name": "s", "script": {"name": "step"}}])
    assert valid_condition(cluster, namespace, "f", generation=2)["status"] == "True"

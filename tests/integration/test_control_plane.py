"""Proof that the local control plane is real: CRDs, admission, Jobs, kwok, GC."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes.client import ApiException

from tests.integration.cluster import ROOT, Cluster
from tests.integration.waiting import wait_for
from tests.projects import manifest

FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
GROUP, VERSION = "kascade.io", "v1alpha1"


def job(
    name: str,
    *,
    fail: bool = False,
    annotations: dict[str, str] | None = None,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-attempt Job; on kwok its pod completes, or fails when it carries the label
    (and on a real kubelet the command does the same)."""
    metadata: dict[str, Any] = {"name": name}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {FAIL_LABEL: "true"} if fail else {},
                    "annotations": annotations or {},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "task",
                            "image": "busybox:1.37",
                            "command": ["false" if fail else "true"],
                        }
                    ],
                },
            },
        },
    }


def job_condition(cluster: Cluster, namespace: str, name: str) -> str | None:
    status = cluster.batch().read_namespaced_job_status(name, namespace).status
    for condition in status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def finished(cluster: Cluster, namespace: str, name: str) -> str:
    """Wait for a Job to end; its final condition, Complete or Failed."""
    condition = wait_for(
        lambda: job_condition(cluster, namespace, name),
        lambda c: c is not None,
        timeout=60,
        what=f"job {name} to finish",
    )
    assert condition is not None
    return condition


def pod_exit_codes(cluster: Cluster, namespace: str, job_name: str) -> list[int | None]:
    pods = cluster.core().list_namespaced_pod(namespace, label_selector=f"job-name={job_name}")
    codes: list[int | None] = []
    for pod in pods.items:
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated if status.state else None
            codes.append(terminated.exit_code if terminated else None)
    return codes


def test_the_node_is_ready(cluster: Cluster):
    nodes = cluster.core().list_node().items
    ready = {
        n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready")
        for n in nodes
    }
    # kwok's simulated node, and the real node (kubelet, containerd) tainted so that only
    # pods that tolerate it run there
    assert ready == {"kwok-node-0": "True", "kascade-node-0": "True"}
    real = next(n for n in nodes if n.metadata.name == "kascade-node-0")
    assert [(t.key, t.effect) for t in real.spec.taints] == [
        ("kascade.dev/real-node", "NoSchedule")
    ]
    assert real.status.node_info.container_runtime_version.startswith("containerd://")
    version = cluster.kubectl("version", "-o", "yaml").stdout
    assert yaml.safe_load(version)["serverVersion"]["gitVersion"].startswith("v1.3")


def test_crds_apply_and_are_established(cluster: Cluster):
    again = cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    names = [
        "flows.kascade.io",
        "runs.kascade.io",
        "tasks.kascade.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]
    assert again.stdout.count("unchanged") == len(names), again.stdout
    for name in names:
        established = cluster.kubectl(
            "get",
            "crd",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
        ).stdout
        assert established == "True"


def test_kubectl_explain_shows_our_descriptions(cluster: Cluster):
    nodes = " ".join(cluster.kubectl("explain", "flow.spec.nodes").stdout.split())
    assert "The steps of the Flow." in nodes
    assert "Exactly one of transformation, connection, script, flow." in nodes
    assert "dependsOn" in nodes
    assert "Nodes whose tasks must all finish" in nodes
    phase = " ".join(cluster.kubectl("explain", "run.status.phase").stdout.split())
    assert "Current phase." in phase


def test_the_example_flow_is_accepted_and_listed(cluster: Cluster, namespace: str):
    cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples/shop/flow.yaml"))
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
                "metadata": {"name": "r1"},
                "spec": {"flowRef": {"name": "shop-daily"}, "parameters": {"as_of": "2026-11-01"}},
            }
        ),
    )
    listed = cluster.kubectl("get", "kascade", "-n", namespace).stdout
    assert "flow.kascade.io/shop-daily" in listed
    assert "run.kascade.io/r1" in listed
    runs = cluster.kubectl("get", "krun", "-n", namespace).stdout.splitlines()
    assert runs[0].split() == [
        "NAME",
        "FLOW",
        "TYPE",
        "PHASE",
        "TASKS",
        "STARTED",
        "DURATION",
        "AGE",
    ]
    assert runs[1].split()[:3] == ["r1", "shop-daily", "MANUAL"]


@pytest.mark.parametrize(
    ("nodes", "messages"),
    [
        ([{"name": "a", "sql": {"select": 1}}], ['unknown field "spec.nodes[0].sql"']),
        (
            [{"name": "a", "script": {"name": "s"}, "trigger": "sometimes"}],
            ['spec.nodes[0].trigger: Unsupported value: "sometimes"'],
        ),
        (
            [{"name": "a", "script": {"name": "s"}, "retries": -1}],
            ["spec.nodes[0].retries: Invalid value: -1"],
        ),
        ([{"name": "Bad Name", "script": {"name": "s"}}], ["spec.nodes[0].name: Invalid value"]),
        (
            [{"name": "a"}],
            [
                "spec.nodes[0]: Invalid value",
                "node a must set exactly one of: transformation, connection, script, flow",
            ],
        ),
        (
            [{"name": "a", "script": {"name": "s"}, "flow": {"name": "f"}}],
            ["node a must set exactly one of"],
        ),
        (
            [{"name": "a", "script": {"name": "s"}}, {"name": "a", "script": {"name": "t"}}],
            ['spec.nodes[1]: Duplicate value: {"name":"a"}'],
        ),
    ],
)
def test_invalid_flows_are_rejected_at_admission_naming_the_field(
    cluster: Cluster, namespace: str, nodes, messages
):
    result = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(manifest(nodes, name="bad")),
        check=False,
    )
    assert result.returncode != 0
    for message in messages:
        assert message in result.stderr
    assert cluster.kubectl("get", "flows", "-n", namespace, "-o", "name").stdout == ""


def test_run_rules_hold_at_admission(cluster: Cluster, namespace: str):
    def run(spec: dict[str, Any]) -> str:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {"name": "r"},
            "spec": spec,
        }
        return cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body), check=False
        ).stderr

    assert "rerunOf is required" in run({"flowRef": {"name": "f"}, "type": "RERUN_ALL"})
    assert run({"flowRef": {"name": "f"}}) == ""
    assert "flowRef is immutable" in run({"flowRef": {"name": "g"}})
    assert run({"flowRef": {"name": "f"}, "abort": True}) == ""
    assert "abort cannot be withdrawn" in run({"flowRef": {"name": "f"}, "abort": False})


def test_a_job_runs_to_complete_on_the_kwok_node(cluster: Cluster, namespace: str):
    cluster.batch().create_namespaced_job(namespace, job("ok"))
    assert finished(cluster, namespace, "ok") == "Complete"
    assert pod_exit_codes(cluster, namespace, "ok") == [0]
    pod = cluster.core().list_namespaced_pod(namespace, label_selector="job-name=ok").items[0]
    assert pod.spec.node_name == "kwok-node-0"  # placed by the real scheduler


def test_a_job_whose_pod_carries_the_failure_label_fails_with_exit_code_1(
    cluster: Cluster, namespace: str
):
    cluster.batch().create_namespaced_job(namespace, job("bad", fail=True))
    assert finished(cluster, namespace, "bad") == "Failed"
    assert pod_exit_codes(cluster, namespace, "bad") == [1]


def test_a_job_pod_can_run_for_a_while_and_exit_with_a_chosen_code(
    cluster: Cluster, namespace: str
):
    annotations = {"kascade.io/kwok-run-for": "3s", "kascade.io/kwok-exit-code": "3"}
    cluster.batch().create_namespaced_job(namespace, job("slow", annotations=annotations))
    running = wait_for(
        lambda: pod_exit_codes(cluster, namespace, "slow"),
        lambda c: c == [None],
        timeout=30,
        what="the slow pod to run",
    )
    assert running == [None]
    assert job_condition(cluster, namespace, "slow") is None
    assert finished(cluster, namespace, "slow") == "Failed"
    assert pod_exit_codes(cluster, namespace, "slow") == [3]


def test_deleting_a_run_cascades_to_its_tasks_jobs_and_pods(cluster: Cluster, namespace: str):
    custom = cluster.custom()
    run = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "runs",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {"name": "r"},
            "spec": {"flowRef": {"name": "f"}},
        },
    )
    task = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "tasks",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Task",
            "metadata": {"name": "r-load", "ownerReferences": [_owner(run)]},
            "spec": {
                "runRef": {"name": "r"},
                "id": "load",
                "node": "load",
                "type": "script",
                "target": "load_raw",
            },
        },
    )
    cluster.batch().create_namespaced_job(
        namespace,
        job("r-load-1", annotations={"kascade.io/kwok-run-for": "10m"}, owner=_owner(task)),
    )
    wait_for(
        lambda: pod_exit_codes(cluster, namespace, "r-load-1"),
        lambda c: c == [None],
        timeout=30,
        what="the task's pod to run",
    )

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "runs", "r")

    def remaining() -> dict[str, int]:
        return {
            "tasks": len(
                custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")["items"]
            ),
            "jobs": len(cluster.batch().list_namespaced_job(namespace).items),
            "pods": len(cluster.core().list_namespaced_pod(namespace).items),
        }

    wait_for(
        remaining,
        lambda left: not any(left.values()),
        timeout=90,
        what="the garbage collector to delete the Task, Job and Pod",
    )
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "runs", "r")
    assert gone.value.status == 404


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

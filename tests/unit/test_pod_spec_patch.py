"""podSpecPatch: strategic-merge rules on the task pod's spec (as `kubectl patch` and
Argo's podSpecPatch apply them), in the Job, and lint naming a patch that cannot apply."""

from __future__ import annotations

from typing import Any

import pytest

from kascade.api import Flow
from kascade.engine.lint import pod_patch_problems
from kascade.engine.podpatch import PodPatchError, patch_pod_spec
from kascade.operator.jobs import job_body
from tests.unit.test_operator_parts import attempt, launch

POD: dict[str, Any] = {
    "restartPolicy": "Never",
    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
    "containers": [
        {
            "name": "task",
            "image": "img:1",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumeMounts": [{"name": "work", "mountPath": "/kascade/work"}],
        }
    ],
    "volumes": [{"name": "work", "emptyDir": {}}],
    "tolerations": [{"key": "a", "operator": "Exists"}],
}


def test_lists_with_merge_keys_merge_by_key():
    patched = patch_pod_spec(
        POD,
        {
            "containers": [
                {
                    "name": "task",
                    "env": [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 8080}],
                },
                {"name": "sidecar", "image": "proxy:1"},
            ],
            "volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}],
        },
    )
    task, sidecar = patched["containers"]
    assert task["image"] == "img:1"  # kept
    assert task["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "changed"},
        {"name": "C", "value": "3"},
    ]
    assert task["ports"] == [{"containerPort": 8080}]
    assert task["volumeMounts"] == POD["containers"][0]["volumeMounts"]
    assert sidecar == {"name": "sidecar", "image": "proxy:1"}
    assert [v["name"] for v in patched["volumes"]] == ["work", "cache"]
    assert POD["containers"][0]["env"][1]["value"] == "2"  # the original is untouched


def test_other_lists_are_replaced_maps_merge_and_null_removes():
    patched = patch_pod_spec(
        POD,
        {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": None},
            "priorityClassName": "batch",
        },
    )
    assert patched["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert patched["securityContext"] == {"runAsUser": 1000}
    assert patched["priorityClassName"] == "batch"


def test_directives_delete_and_replace():
    patched = patch_pod_spec(
        POD,
        {
            "containers": [{"name": "task", "env": [{"name": "A", "$patch": "delete"}]}],
            "volumes": [{"$patch": "replace"}, {"name": "only", "emptyDir": {}}],
            "securityContext": {"$patch": "replace", "fsGroup": 7},
        },
    )
    assert patched["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    assert patched["volumes"] == [{"name": "only", "emptyDir": {}}]
    assert patched["securityContext"] == {"fsGroup": 7}


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"containers": [{"image": "x"}]}, "podSpecPatch.containers: every element needs"),
        ({"containers": [{"name": "task", "$patch": "merge"}]}, "unknown $patch 'merge'"),
        ({"securityContext": {"$patch": "delete"}}, "unknown $patch 'delete' for a map"),
    ],
)
def test_patches_that_cannot_apply_are_named(patch: dict[str, Any], words: str):
    with pytest.raises(PodPatchError) as refused:
        patch_pod_spec(POD, patch)
    assert words in str(refused.value)


def test_the_job_is_made_with_the_patch_last():
    patch = {
        "containers": [{"name": "task", "ports": [{"containerPort": 9090}]}],
        "priorityClassName": "batch",
        "securityContext": {"fsGroup": 5},
    }
    pod = job_body(attempt(), launch(settings={"podSpecPatch": patch}), "img:1")
    spec = pod["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "batch"
    assert spec["containers"][0]["ports"] == [{"containerPort": 9090}]
    assert spec["containers"][0]["command"] == ["kascade", "task", "exec"]
    assert spec["securityContext"]["fsGroup"] == 5
    assert spec["securityContext"]["runAsNonRoot"] is True  # merged into the default


def test_lint_names_the_node_of_a_patch_that_cannot_apply():
    flow = Flow.model_validate(
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "f"},
            "spec": {
                "nodes": [
                    {"name": "ok", "script": {"name": "s"}},
                    {
                        "name": "bad",
                        "script": {"name": "s"},
                        "podSpecPatch": {"containers": [{"image": "x"}]},
                    },
                ]
            },
        }
    )
    assert pod_patch_problems(flow.spec) == [
        "spec.nodes[1] (bad).podSpecPatch.containers: every element needs its merge key 'name'"
    ]

"""Pod settings a Flow gives its task pods beyond placement: affinity, volumes and volume
mounts, and the pod-level securityContext; how defaults and nodes merge them, what the Job
holds, and the inputs the models (and so lint and the Flow's Valid condition) refuse,
naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kascade.api.flow import FlowSpec, TaskSettings
from kascade.engine.launch import merged_settings
from kascade.operator.jobs import RESTRICTED_POD, job_body
from tests.unit.test_operator_parts import attempt, launch

AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
            ]
        },
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "cores", "operator": "Gt", "values": ["8"]}]}}
        ],
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"kascade.io/flow": "shop"}},
                "topologyKey": "kubernetes.io/hostname"}}
        ]
    },
}  # fmt: skip
VOLUMES = [
    {"name": "certs", "secret": {"secretName": "warehouse-ca", "defaultMode": 0o440}},
    {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
    {"name": "lake", "persistentVolumeClaim": {"claimName": "lake", "readOnly": True}},
]
MOUNTS = [
    {"name": "certs", "mountPath": "/etc/warehouse", "readOnly": True},
    {"name": "cache", "mountPath": "/cache"},
]
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "fsGroup": 2000,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_of(settings: dict[str, Any]) -> dict[str, Any]:
    checked = TaskSettings.model_validate(settings).to_wire()
    spec: dict[str, Any] = job_body(attempt(), launch(settings=checked), "img:1")["spec"]
    return spec["template"]["spec"]


def test_the_job_carries_affinity_volumes_mounts_and_the_pod_security_context():
    pod = pod_of(
        {
            "affinity": AFFINITY,
            "volumes": VOLUMES,
            "volumeMounts": MOUNTS,
            "podSecurityContext": POD_SECURITY,
        }
    )
    assert pod["affinity"] == AFFINITY
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert {"work", "tmp", "project", "certs", "cache", "lake"} == set(volumes)
    assert volumes["certs"] == VOLUMES[0]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/warehouse"] == MOUNTS[0]
    assert "/kascade/work" in mounts  # kascade's own stay
    assert pod["securityContext"] == POD_SECURITY


def test_without_them_the_pod_keeps_the_restricted_defaults():
    pod = pod_of({})
    assert "affinity" not in pod
    assert pod["securityContext"] == RESTRICTED_POD
    assert {volume["name"] for volume in pod["volumes"]} == {"work", "tmp", "project"}


def test_nodes_merge_volumes_by_name_and_mounts_by_path():
    defaults = TaskSettings.model_validate({"volumes": VOLUMES[:2], "volumeMounts": MOUNTS[:1]})
    node = TaskSettings.model_validate(
        {
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "volumeMounts": [
                {"name": "certs", "mountPath": "/etc/warehouse", "subPath": "ca.pem"},
                {"name": "cache", "mountPath": "/cache"},
            ],
        }
    )
    merged = merged_settings(defaults, node)
    assert merged["volumes"] == [VOLUMES[0], {"name": "cache", "emptyDir": {}}]
    assert merged["volumeMounts"] == [
        {"name": "certs", "mountPath": "/etc/warehouse", "subPath": "ca.pem"},
        {"name": "cache", "mountPath": "/cache"},
    ]


def flow_spec(**defaults: Any) -> dict[str, Any]:
    return {
        "defaults": defaults,
        "nodes": [{"name": "load", "script": {"name": "load"}}],
    }


@pytest.mark.parametrize(
    ("defaults", "words"),
    [
        ({"volumes": [{"name": "work", "emptyDir": {}}]}, "kascade's own"),
        ({"volumes": [{"name": "x"}]}, "exactly one of"),
        (
            {"volumes": [{"name": "x", "emptyDir": {}, "secret": {"secretName": "s"}}]},
            "exactly one of",
        ),
        ({"volumes": [{"name": "x", "hostPath": {"path": "/"}}]}, "hostPath"),
        ({"volumeMounts": [{"name": "nothing", "mountPath": "/data"}]}, "no volume named"),
        (
            {"volumes": VOLUMES[:1], "volumeMounts": [{"name": "certs", "mountPath": "/tmp"}]},
            "kascade's own",
        ),
        (
            {"volumes": VOLUMES[:1], "volumeMounts": [{"name": "certs", "mountPath": "rel"}]},
            "mountPath",
        ),
        (
            {
                "volumes": VOLUMES[:1],
                "volumeMounts": [{"name": "certs", "mountPath": "/c", "subPath": "../x"}],
            },
            "'..'",
        ),
        (
            {"volumes": [{"name": "s", "secret": {"secretName": "s", "items": [
                {"key": "k", "path": "/etc/passwd"}]}}]},
            "must be relative",
        ),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "disk", "operator": "Exists", "values": ["ssd"]}]}]}}}},
            "values must be empty",
        ),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "cores", "operator": "Gt", "values": ["many"]}]}]}}}},
            "one integer value",
        ),
        (
            {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"a": "b"}}}]}}},
            "topologyKey",
        ),
        ({"podSecurityContext": {"runAsUser": -1}}, "runAsUser"),
        ({"podSecurityContext": {"fsGroupChangePolicy": "Sometimes"}}, "fsGroupChangePolicy"),
    ],
)  # fmt: skip
def test_bad_pod_settings_are_refused_naming_the_field(defaults: dict[str, Any], words: str):
    with pytest.raises(ValidationError) as refused:
        FlowSpec.model_validate(flow_spec(**defaults))
    assert words in str(refused.value), str(refused.value)


def test_a_node_may_mount_a_volume_of_the_defaults():
    spec = flow_spec(volumes=VOLUMES[:1])
    spec["nodes"][0]["volumeMounts"] = MOUNTS[:1]
    FlowSpec.model_validate(spec)

"""The Job of one task attempt: the runtime image running `kascade task exec`, with the
project unpacked from its ConfigMap, the Flow's env and settings, and the Pod Security
"restricted" profile unless the Flow overrides it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kascade.operator.labels import ATTEMPT, TASK_ID, owner_reference, task_labels
from kascade.runtime import contract
from kascade.runtime.archive import ARCHIVE_KEY

WORK_DIR = "/kascade/work"
ARCHIVE_DIR = "/kascade/archive"
RUNTIME_USER = 65532
TASK_COMMAND = ("kascade", "task", "exec")
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": RUNTIME_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}


@dataclass(frozen=True)
class Launch:
    """One attempt to start: which task, and everything its process needs."""

    namespace: str
    run: str
    flow: str
    task_object: str
    task_uid: str
    task_id: str
    attempt: int
    kind: str
    target: str
    job: str
    args: list[str] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    project_config_map: str | None = None
    warehouse: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def job_body(launch: Launch, default_image: str) -> dict[str, Any]:
    """The Job manifest of an attempt (owned by its Task, so deleting the Run cleans up)."""
    spec = launch.spec
    labels = {**task_labels(launch.run, launch.flow, launch.task_id), ATTEMPT: str(launch.attempt)}
    pod_meta = spec.get("podMetadata") or {}
    env = [*launch.env, *_contract_env(launch)]
    container: dict[str, Any] = {
        "name": "task",
        "image": spec.get("image") or default_image,
        # `command` rather than the image's ENTRYPOINT, so a Flow's own image (one built
        # from the runtime image with more packages) runs the task the same way.
        "command": list(TASK_COMMAND),
        "args": [launch.kind, launch.target, "--", *launch.args],
        "env": env,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": spec.get("securityContext") or RESTRICTED_CONTAINER,
        "volumeMounts": [
            {"name": "work", "mountPath": WORK_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    # The root filesystem is read-only: the work dir and /tmp are the writable places.
    volumes: list[dict[str, Any]] = [
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if launch.project_config_map:
        container["volumeMounts"].append(
            {"name": "project", "mountPath": ARCHIVE_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "project",
                "configMap": {
                    "name": launch.project_config_map,
                    "items": [{"key": ARCHIVE_KEY, "path": ARCHIVE_KEY}],
                },
            }
        )
    if spec.get("envFrom"):
        container["envFrom"] = spec["envFrom"]
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": RESTRICTED_POD,
        "containers": [container],
        "volumes": volumes,
    }
    if spec.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = spec["serviceAccountName"]
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {
                "labels": {**(pod_meta.get("labels") or {}), **labels},
                "annotations": {**(pod_meta.get("annotations") or {}), TASK_ID: launch.task_id},
            },
            "spec": pod_spec,
        },
    }
    if spec.get("timeoutSeconds"):
        job_spec["activeDeadlineSeconds"] = int(spec["timeoutSeconds"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": launch.job,
            "namespace": launch.namespace,
            "labels": labels,
            "annotations": {TASK_ID: launch.task_id},
            "ownerReferences": [owner_reference("Task", launch.task_object, launch.task_uid)],
        },
        "spec": job_spec,
    }


def _contract_env(launch: Launch) -> list[dict[str, Any]]:
    values = {
        contract.RUN: launch.run,
        contract.TASK: launch.task_id,
        contract.FLOW: launch.flow,
        contract.PROJECT: f"{WORK_DIR}/project",
        contract.OUTPUTS: f"{WORK_DIR}/outputs.json",
        contract.TERMINATION_LOG: "/dev/termination-log",
        "HOME": WORK_DIR,
    }
    if launch.project_config_map:
        values[contract.PROJECT_ARCHIVE] = f"{ARCHIVE_DIR}/{ARCHIVE_KEY}"
    user_names = {var.get("name") for var in launch.env}
    if launch.warehouse and contract.WAREHOUSE not in user_names:
        values[contract.WAREHOUSE] = launch.warehouse
    return [{"name": name, "value": value} for name, value in values.items()]

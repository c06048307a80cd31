"""The Job of one task attempt: the runtime image running `kascade task exec`, with the
project unpacked from its ConfigMap, the task's env and settings, and the Pod Security
"restricted" profile unless the Flow overrides it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kascade.api.volumes import PROFILES_VOLUME
from kascade.api.warehouse import PROFILES_DIR
from kascade.contract import env as contract_env
from kascade.contract.archive import ARCHIVE_KEY
from kascade.engine.launch import Launch
from kascade.engine.podpatch import patch_pod_spec
from kascade.operator.labels import ATTEMPT, TASK_ID, owner_reference, task_labels

WORK_DIR = "/kascade/work"
# What a task pod's default warehouse (contract DEFAULT_WAREHOUSE, relative to the work dir,
# the runtime image's WORKDIR) comes to: a DuckDB file of the pod's own.
POD_WAREHOUSE = (
    "duckdb:///" + WORK_DIR + "/" + contract_env.DEFAULT_WAREHOUSE.removeprefix("duckdb:///")
)
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
class ClusterAttempt:
    """Where one attempt lives on the cluster: its run, its Task object, its Job (or child
    Run) name, and the project ConfigMap its pod mounts."""

    namespace: str
    run: str
    flow: str
    task_object: str
    task_uid: str
    task_id: str
    attempt: int
    job: str
    target: str = ""
    wait: bool = True
    """A flow task's child run: the Flow it runs, and whether the task waits for it."""
    project_config_map: str | None = None


def job_body(attempt: ClusterAttempt, launch: Launch, default_image: str) -> dict[str, Any]:
    """The Job manifest of an attempt (owned by its Task, so deleting the Run cleans up)."""
    settings = launch.settings
    labels = {
        **task_labels(attempt.run, attempt.flow, attempt.task_id),
        ATTEMPT: str(attempt.attempt),
    }
    pod_meta = settings.get("podMetadata") or {}
    container: dict[str, Any] = {
        "name": "task",
        "image": settings.get("image") or default_image,
        # `command` rather than the image's ENTRYPOINT, so a Flow's own image (one built
        # from the runtime image with more packages) runs the task the same way.
        "command": list(TASK_COMMAND),
        "args": [launch.kind.value, launch.target, "--", *launch.args],
        "env": [*(dict(var) for var in launch.env), *_contract_env(attempt, launch)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": settings.get("securityContext") or RESTRICTED_CONTAINER,
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
    if attempt.project_config_map:
        container["volumeMounts"].append(
            {"name": "project", "mountPath": ARCHIVE_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "project",
                "configMap": {
                    "name": attempt.project_config_map,
                    "items": [{"key": ARCHIVE_KEY, "path": ARCHIVE_KEY}],
                },
            }
        )
    profiles = settings.get("warehouseProfiles")
    if profiles:  # a `profiles` warehouse: the Secret's profiles.yml, read-only
        container["volumeMounts"].append(
            {"name": PROFILES_VOLUME, "mountPath": PROFILES_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": PROFILES_VOLUME,
                "secret": {
                    "secretName": profiles["name"],
                    "items": [{"key": profiles["key"], "path": "profiles.yml"}],
                },
            }
        )
    container["volumeMounts"].extend(settings.get("volumeMounts") or [])
    volumes.extend(settings.get("volumes") or [])
    if settings.get("envFrom"):
        container["envFrom"] = settings["envFrom"]
    if settings.get("resources"):
        container["resources"] = settings["resources"]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": settings.get("podSecurityContext") or RESTRICTED_POD,
        "containers": [container],
        "volumes": volumes,
    }
    if settings.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = settings["serviceAccountName"]
    for placement in ("nodeSelector", "tolerations", "imagePullSecrets", "affinity"):
        if settings.get(placement):
            pod_spec[placement] = settings[placement]
    if settings.get("podSpecPatch"):  # last: it may change anything above
        pod_spec = patch_pod_spec(pod_spec, settings["podSpecPatch"])
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {
                "labels": {**(pod_meta.get("labels") or {}), **labels},
                "annotations": {
                    **(pod_meta.get("annotations") or {}),
                    TASK_ID: attempt.task_id,
                },
            },
            "spec": pod_spec,
        },
    }
    if launch.timeout_seconds:
        job_spec["activeDeadlineSeconds"] = launch.timeout_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": attempt.job,
            "namespace": attempt.namespace,
            "labels": labels,
            "annotations": {TASK_ID: attempt.task_id},
            "ownerReferences": [owner_reference("Task", attempt.task_object, attempt.task_uid)],
        },
        "spec": job_spec,
    }


def _contract_env(attempt: ClusterAttempt, launch: Launch) -> list[dict[str, Any]]:
    """The task contract in a pod: the run's values, and where the pod keeps its files."""
    values = {
        **launch.contract,
        contract_env.PROJECT: f"{WORK_DIR}/project",
        contract_env.OUTPUTS: f"{WORK_DIR}/outputs.json",
        contract_env.TERMINATION_LOG: "/dev/termination-log",
        "HOME": WORK_DIR,
    }
    if attempt.project_config_map:
        values[contract_env.PROJECT_ARCHIVE] = f"{ARCHIVE_DIR}/{ARCHIVE_KEY}"
    return [{"name": name, "value": value} for name, value in values.items()]

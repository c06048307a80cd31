"""Labels and annotations kascade puts on what it creates, and how to read them back."""

from __future__ import annotations

from typing import Any

from kascade.engine.naming import label_value

GROUP = "kascade.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kascade"
RUN = "kascade.io/run"
FLOW = "kascade.io/flow"
TASK = "kascade.io/task"
ATTEMPT = "kascade.io/attempt"
TASK_ID = "kascade.io/task-id"  # annotation: the exact id (labels may be hashed)
PLAN_INDEX = "kascade.io/plan-index"  # annotation: the task's place in the plan order
JOB_NAME = "batch.kubernetes.io/job-name"


def run_labels(run: str, flow: str) -> dict[str, str]:
    """Labels of everything that belongs to a run."""
    return {MANAGED_BY: MANAGER, RUN: label_value(run), FLOW: label_value(flow)}


def task_labels(run: str, flow: str, task_id: str) -> dict[str, str]:
    """Labels of a Task object and of its Jobs and pods."""
    return {**run_labels(run, flow), TASK: label_value(task_id)}


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controlling owner reference to a kascade object (deleting it deletes the owned)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }

"""Reruns requested by annotating a finished Run, for kubectl and GitOps users:
`kascade.io/rerun: failed | all | task:<id>` (and `kascade.io/rerun-downstream: "true"`
with task:). The operator creates the rerun Run and removes the annotation."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kascade.api import RunPhase, RunType
from kascade.engine.naming import dns_name
from kascade.engine.reruns import RerunError, check_rerunnable
from kascade.operator.labels import API_VERSION

if TYPE_CHECKING:
    from kascade.operator.context import Operations

log = logging.getLogger("kascade.operator")
RERUN_ANNOTATION = "kascade.io/rerun"
DOWNSTREAM_ANNOTATION = "kascade.io/rerun-downstream"


class RerunRequestError(Exception):
    """An annotation value that does not say which rerun."""


def parse_request(value: str) -> tuple[RunType, str | None]:
    """`failed`, `all` or `task:<id>` as a run type and task."""
    text = value.strip()
    if text == "failed":
        return RunType.RERUN_FAILED, None
    if text == "all":
        return RunType.RERUN_ALL, None
    if text.startswith("task:") and text[5:].strip():
        return RunType.RERUN_TASK, text[5:].strip()
    raise RerunRequestError(f"{RERUN_ANNOTATION}: {value!r} is not one of failed, all, task:<id>")


def rerun_body(
    original: dict[str, Any], name: str, kind: RunType, task: str | None, downstream: bool
) -> dict[str, Any]:
    """The Run of a rerun of `original`."""
    spec: dict[str, Any] = {
        "flowRef": dict(original["spec"]["flowRef"]),
        "type": kind.value,
        "rerunOf": original["metadata"]["name"],
    }
    if kind == RunType.RERUN_TASK:
        spec["rerunTask"] = task
        spec["downstream"] = downstream
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {"name": name, "namespace": original["metadata"]["namespace"]},
        "spec": spec,
    }


async def rerun_from_annotation(ops: Operations, original: dict[str, Any]) -> None:
    """Carry out (or refuse, saying why in an Event) the rerun an annotation asks for."""
    meta = original["metadata"]
    annotations = meta.get("annotations") or {}
    value = annotations.get(RERUN_ANNOTATION)
    if value is None:
        return
    status = original.get("status") or {}
    phase = status.get("phase")
    try:
        kind, task = parse_request(value)
        check_rerunnable(meta["name"], RunPhase(phase) if phase else None)
    except (RerunRequestError, RerunError) as err:
        await ops.kube.event(original, "Run", "RerunRefused", str(err), warning=True)
    else:
        number = len(status.get("reruns") or []) + 1
        name = dns_name(f"{meta['name']}-rerun-{number}", 253)
        downstream = annotations.get(DOWNSTREAM_ANNOTATION, "").lower() == "true"
        await ops.kube.create(
            "runs", meta["namespace"], rerun_body(original, name, kind, task, downstream)
        )
        await ops.kube.event(original, "Run", "RerunRequested", f"{kind.value} as run {name}")
        log.info(
            "run=%s/%s event=rerun-requested rerun=%s type=%s",
            meta["namespace"],
            meta["name"],
            name,
            kind.value,
        )
    await ops.kube.patch_metadata(
        "runs",
        meta["namespace"],
        meta["name"],
        {
            "annotations": {RERUN_ANNOTATION: None, DOWNSTREAM_ANNOTATION: None},
        },
    )

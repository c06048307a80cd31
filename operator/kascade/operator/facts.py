"""What the operator reads off Jobs and their pods, reduced to small facts (kept in kopf
indexes), and how an attempt's outcome follows from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kascade.contract.outputs import decode_outputs
from kascade.engine.attempts import Observation, Progress
from kascade.engine.runstate import KILL_DEADLINE
from kascade.operator.labels import ATTEMPT, JOB_NAME, TASK_ID


def timestamp(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339 string) as a datetime."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def rfc3339(value: datetime | None) -> str | None:
    """A datetime as the API writes timestamps (UTC with Z)."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass(frozen=True)
class JobFacts:
    """The part of a Job that tells how its attempt goes."""

    name: str
    task_id: str
    attempt: int
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    outcome: str | None  # Complete | Failed | None while running
    reason: str | None
    message: str | None


@dataclass(frozen=True)
class PodFacts:
    """The part of a task pod that tells how its container ended."""

    job: str
    exit_code: int | None
    reason: str | None
    message: str | None
    finished: datetime | None


def job_facts(body: Any) -> JobFacts:
    """Facts of a Job body (dict-like)."""
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    status = body.get("status") or {}
    outcome = reason = message = None
    ended = None
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            outcome = condition["type"]
            reason, message = condition.get("reason"), condition.get("message")
            ended = timestamp(condition.get("lastTransitionTime"))
    if outcome == "Complete":
        ended = timestamp(status.get("completionTime")) or ended
    return JobFacts(
        name=meta.get("name", ""),
        task_id=(meta.get("annotations") or {}).get(TASK_ID, ""),
        attempt=int(labels.get(ATTEMPT, "0") or 0),
        created=timestamp(meta.get("creationTimestamp")),
        started=timestamp(status.get("startTime")),
        ended=ended,
        outcome=outcome,
        reason=reason,
        message=message,
    )


def pod_facts(body: Any) -> PodFacts | None:
    """Facts of a task pod, once its container has terminated."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    job = labels.get(JOB_NAME) or labels.get("job-name")
    if not job:
        return None
    for status in (body.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return PodFacts(
                job=job,
                exit_code=terminated.get("exitCode"),
                reason=terminated.get("reason"),
                message=terminated.get("message"),
                finished=timestamp(terminated.get("finishedAt")),
            )
    return PodFacts(job=job, exit_code=None, reason=None, message=None, finished=None)


def job_outcome(job: JobFacts | None, pods: list[PodFacts]) -> Observation:
    """The outcome of one attempt from its Job and its pod (the pod gives the exit code,
    the termination message: outputs on success, the log tail on failure)."""
    if job is None:
        return Observation(Progress.UNSEEN)
    if job.outcome is None:
        return Observation(Progress.RUNNING, started=job.started or job.created)
    pod = next((p for p in pods if p.exit_code is not None), None)
    started = job.started or job.created
    if job.outcome == "Complete":
        return Observation(
            Progress.ENDED,
            started,
            job.ended,
            0,
            "Completed",
            None,
            decode_outputs(pod.message if pod else None),
        )
    if job.reason == "DeadlineExceeded":
        return Observation(
            Progress.ENDED,
            started,
            job.ended,
            pod.exit_code if pod else None,
            KILL_DEADLINE,
            job.message,
        )
    exit_code = pod.exit_code if pod and pod.exit_code is not None else 1
    message = (pod.message if pod and pod.message else None) or job.message
    reason = (pod.reason if pod and pod.reason else None) or job.reason or "Error"
    return Observation(Progress.ENDED, started, job.ended, exit_code, reason, message)

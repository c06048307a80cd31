"""Deterministic names of the objects kascade creates, so a second create of the same
thing is AlreadyExists, never a duplicate. Pure functions of their inputs."""

from __future__ import annotations

import hashlib
import re

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_HASH_LENGTH = 8
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def dns_name(text: str, limit: int = LABEL_MAX) -> str:
    """A DNS-1123 name for `text`: lowercase letters, digits and dashes. When `text` had to
    change (or is too long), a short hash of the original keeps names distinct."""
    clean = _NOT_DNS.sub("-", text.lower()).strip("-")
    if clean == text and len(clean) <= limit:
        return clean
    room = limit - _HASH_LENGTH - 1
    return f"{clean[:room].rstrip('-')}-{_digest(text)}".lstrip("-")


def label_value(text: str) -> str:
    """A valid label value for `text` (at most 63 characters), hashed when it must change."""
    clean = _NOT_LABEL_VALUE.sub("-", text).strip("-_.")
    if clean == text and len(clean) <= LABEL_MAX:
        return clean
    room = LABEL_MAX - _HASH_LENGTH - 1
    return f"{clean[:room].rstrip('-_.')}-{_digest(text)}".lstrip("-_.")


def task_object_name(run: str, task_id: str) -> str:
    """The Task object of a task of a run (ids like `stg_orders` gain a hash, so `a_b`
    and `a-b` stay distinct)."""
    return dns_name(f"{run}-{task_id}", SUBDOMAIN_MAX)


def job_name(task_object: str, attempt: int) -> str:
    """The Job of one attempt of a task, ending in the attempt number (63 characters at
    most: a Job labels its pods with its own name)."""
    suffix = f"-{attempt}"
    return dns_name(task_object, LABEL_MAX - len(suffix)) + suffix


def child_run_name(run: str, task_id: str, attempt: int) -> str:
    """The child Run a flow task starts, one per attempt."""
    return dns_name(f"{run}-{task_id}-{attempt}", SUBDOMAIN_MAX)


def scheduled_run_name(flow: str, unix_time: int) -> str:
    """The Run of a flow's schedule at one instant: `<flow>-<unix time>`."""
    return dns_name(f"{flow}-{unix_time}", SUBDOMAIN_MAX)

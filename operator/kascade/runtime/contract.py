"""The environment contract between a task and whoever starts it (local runner, Job)."""

from __future__ import annotations

import os

WAREHOUSE = "KASCADE_WAREHOUSE"
RUN = "KASCADE_RUN"
TASK = "KASCADE_TASK"
FLOW = "KASCADE_FLOW"
PROJECT = "KASCADE_PROJECT"
PROJECT_ARCHIVE = "KASCADE_PROJECT_ARCHIVE"
OUTPUTS = "KASCADE_OUTPUTS"
TERMINATION_LOG = "KASCADE_TERMINATION_LOG"

DEFAULT_WAREHOUSE = "duckdb:///warehouse.duckdb"
KUBERNETES_TERMINATION_LOG = "/dev/termination-log"
OUTPUTS_MAX_BYTES = 4096


def warehouse_url() -> str:
    """The warehouse a task works on."""
    return os.environ.get(WAREHOUSE) or DEFAULT_WAREHOUSE


def project_dir() -> str:
    """The project the task runs from: $KASCADE_PROJECT, else the working directory."""
    return os.environ.get(PROJECT) or os.getcwd()

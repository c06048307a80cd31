"""The environment variables a task receives from its host (local runner or Job)."""

from __future__ import annotations

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

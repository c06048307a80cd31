"""The task's side of the contract: where it reads its warehouse and project from."""

from __future__ import annotations

import os

from kascade.contract.env import DEFAULT_WAREHOUSE, PROJECT, WAREHOUSE


def warehouse_url() -> str:
    """The warehouse a task works on."""
    return os.environ.get(WAREHOUSE) or DEFAULT_WAREHOUSE


def project_dir() -> str:
    """The project the task runs from: $KASCADE_PROJECT, else the working directory."""
    return os.environ.get(PROJECT) or os.getcwd()

"""How the operator is configured (`kascade operator` flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kascade import __version__
from kascade.engine.ancestry import MAX_FLOW_DEPTH

DEFAULT_IMAGE = f"ghcr.io/kascade/runtime:{__version__}"
EXECUTORS = ("jobs", "local")


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of one operator process."""

    namespaces: tuple[str, ...] = ()
    executor: str = "jobs"
    image: str = DEFAULT_IMAGE
    warehouse: str | None = None
    state_dir: Path = field(default_factory=lambda: Path(".kascade/operator"))
    max_active_runs: int | None = None
    max_flow_depth: int = MAX_FLOW_DEPTH
    max_api_concurrency: int = 32
    resync_seconds: float = 120.0
    missing_job_grace_seconds: float = 30.0
    clock_offset_seconds: float = 0.0
    metrics_address: str | None = None
    peering: str | None = None
    peering_lifetime_seconds: int = 60


def default_operator_warehouse(executor: str, state_dir: Path) -> str | None:
    """The warehouse tasks get when the operator is given none: the local executor's
    embedded DuckDB file in its state dir; Jobs get none (their image decides)."""
    if executor != "local":
        return None
    return "duckdb:///" + str((state_dir / "warehouse.duckdb").absolute())

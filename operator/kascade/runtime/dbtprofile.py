"""The dbt profile a task runs with: the warehouse URL mapped to a dbt target, written as
profiles.yml into a folder of the task's own (never the user's ~/.dbt or the project's).

A PostgreSQL URL becomes a dbt-postgres target; its password is never written into the
file: the profile says `{{ env_var('PGPASSWORD', '') }}` and dbt reads it from the task's
environment (a Secret's key on a cluster).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import yaml

from kascade.contract.warehouse import (
    PASSWORD_ENV,
    POSTGRES_SCHEMES,
    WarehouseURLError,
    postgres_settings,
)
from kascade.runtime.errors import CannotStart
from kascade.runtime.warehouse import duckdb_path

PROFILE = "kascade"
TARGET = "kascade"
# Tasks run one model each; several threads would only contend for one DuckDB writer.
THREADS = 1


def target_for(url: str) -> dict[str, Any]:
    """The dbt target (one entry of a profile's `outputs`) of a warehouse URL."""
    scheme = urlparse(url).scheme
    if scheme == "duckdb":
        return _duckdb_target(url)
    if scheme in POSTGRES_SCHEMES:
        return _postgres_target(url)
    raise CannotStart(
        f"no dbt adapter for warehouse URL {url!r} (supported: duckdb://, postgresql://)"
    )


def _postgres_target(url: str) -> dict[str, Any]:
    try:
        settings = postgres_settings(url)
    except WarehouseURLError as err:
        raise CannotStart(str(err)) from err
    return {
        "type": "postgres",
        **settings,
        "password": "{{ env_var('" + PASSWORD_ENV + "', '') }}",
        "threads": THREADS,
    }


def _duckdb_target(url: str) -> dict[str, Any]:
    path = duckdb_path(url)
    if path != ":memory:":
        path = os.path.abspath(path)
    return {"type": "duckdb", "path": path, "schema": "main", "threads": THREADS}


def write_profiles(folder: str, url: str, settings: Mapping[str, Any] | None = None) -> str:
    """Write profiles.yml with the profile `kascade` (target `kascade`) into folder; returns
    its path. `settings` override the target's (the warm worker's threads, for one)."""
    target = {**target_for(url), **(settings or {})}
    profiles = {PROFILE: {"target": TARGET, "outputs": {TARGET: target}}}
    path = os.path.join(folder, "profiles.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(profiles, handle, sort_keys=False)
    return path

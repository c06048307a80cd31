"""The dbt profile a task runs with: the warehouse URL mapped to a dbt target, written as
profiles.yml into a folder of the task's own (never the user's ~/.dbt or the project's).

A PostgreSQL URL becomes a dbt-postgres target; its password is never written into the
file: the profile says `{{ env_var('PGPASSWORD', '') }}` and dbt reads it from the task's
environment (a Secret's key on a cluster). A dbt-profiles URL names a target of the
user's own profiles.yml (on a cluster: a Secret mounted into the pod), for any adapter
installed beside kascade; the target is copied as it is, env_var() calls and all.
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
    PROFILES_SCHEME,
    WarehouseURLError,
    postgres_settings,
    profiles_location,
)
from kascade.runtime import contract
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
    if scheme == PROFILES_SCHEME:
        return _profiles_target(url)
    raise CannotStart(
        f"no dbt adapter for warehouse URL {url!r} "
        "(supported: duckdb://, postgresql://, dbt-profiles://)"
    )


def _profiles_target(url: str) -> dict[str, Any]:
    """The target a dbt-profiles URL names, from the user's profiles.yml: the URL's profile
    (else the project's `profile:`, else the file's only profile) and the URL's target
    (else the profile's `target:`); CannotStart naming the file and what is missing."""
    try:
        path, profile, target = profiles_location(url)
    except WarehouseURLError as err:
        raise CannotStart(str(err)) from err
    try:
        with open(path, encoding="utf-8") as handle:
            profiles = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CannotStart(f"cannot read the dbt profiles file {path}: {err}") from err
    if not isinstance(profiles, dict):
        raise CannotStart(f"{path} holds no dbt profiles (a mapping of profile names)")
    names = [name for name in profiles if name != "config"]
    profile = profile or _project_profile() or (names[0] if len(names) == 1 else None)
    if profile is None or not isinstance(profiles.get(profile), dict):
        raise CannotStart(
            f"{path} has no profile {profile!r} (it has: {', '.join(map(str, names)) or 'none'})"
            if profile
            else f"{path} holds several profiles ({', '.join(map(str, names))}): name one "
            "with ?profile= in the warehouse URL"
        )
    outputs = profiles[profile].get("outputs")
    target = target or profiles[profile].get("target")
    if not isinstance(outputs, dict) or not isinstance(outputs.get(target), dict):
        known = ", ".join(map(str, outputs)) if isinstance(outputs, dict) else "none"
        raise CannotStart(
            f"{path}: profile {profile!r} has no target {target!r} (its outputs: {known})"
        )
    return {**outputs[target], "threads": THREADS}


def _project_profile() -> str | None:
    """The `profile:` of the task's dbt_project.yml, when it names one."""
    try:
        with open(os.path.join(contract.project_dir(), "dbt_project.yml"), encoding="utf-8") as f:
            project = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = project.get("profile") if isinstance(project, dict) else None
    return name if isinstance(name, str) else None


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

"""dbt as the oracle: parse a project once in this process, then `dbt ls` it with many
selections, reading dbt's own JSON output (resource type, name, dependencies)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner

PROFILE = "gen:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: ':memory:', threads: 1}\n"


@dataclass(frozen=True)
class Listed:
    """One resource as `dbt ls --output json` prints it."""

    resource_type: str
    name: str
    unique_id: str
    depends_on: tuple[str, ...]
    tags: tuple[str, ...]
    source_name: str | None = None

    @property
    def key(self) -> str:
        """How parity tests name a resource: `model:stg_00`, `source:raw.events`."""
        name = f"{self.source_name}.{self.name}" if self.source_name else self.name
        return f"{self.resource_type}:{name}"


class Oracle:
    """One parsed project, listed as often as needed."""

    def __init__(self, project: Path, profiles: Path, vars: dict[str, Any] | None = None) -> None:
        profiles.mkdir(parents=True, exist_ok=True)
        (profiles / "profiles.yml").write_text(PROFILE, encoding="utf-8")
        self.flags = [
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(profiles),
            "--quiet",
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
            "--log-path",
            str(profiles / "logs"),
            "--target-path",
            str(profiles / "target"),
        ]
        if vars:
            self.flags += ["--vars", json.dumps(vars)]
        result = dbtRunner().invoke(["parse", *self.flags])
        if not result.success:
            raise AssertionError(f"dbt parse failed: {result.exception}")
        self.runner = dbtRunner(manifest=result.result)

    def ls(
        self, select: str | None = None, exclude: str | None = None, selector: str | None = None
    ) -> list[Listed]:
        """`dbt ls --output json` of a selection (None: the default selector of
        selectors.yml, else everything), or of a YAML selector."""
        keys = "resource_type name unique_id depends_on tags source_name"
        args = ["ls", "--output", "json", "--output-keys", keys]
        if select is not None:
            args += ["--select", select]
        if exclude is not None:
            args += ["--exclude", exclude]
        if selector is not None:
            args += ["--selector", selector]
        result = self.runner.invoke([*args, *self.flags])
        if not result.success:
            raise AssertionError(f"dbt ls {select!r} failed: {result.exception}")
        return [_listed(json.loads(line)) for line in result.result or []]

    def everything(self) -> list[Listed]:
        """Every resource (dbt's own default selection)."""
        return self.ls("fqn:* source:*")


def _listed(entry: dict[str, Any]) -> Listed:
    depends = entry.get("depends_on") or {}
    return Listed(
        resource_type=entry["resource_type"],
        name=entry["name"],
        unique_id=entry["unique_id"],
        depends_on=tuple(depends.get("nodes") or ()),
        tags=tuple(entry.get("tags") or ()),
        source_name=entry.get("source_name"),
    )

"""The resources of a dbt project as kascade plans them: models, seeds, snapshots, tests
and sources, each with dbt's unique id, fully qualified name, merged config and parents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kascade.engine.dbtconfig import as_list
from kascade.engine.sqlcalls import Computed, Ref, Source


class Kind(StrEnum):
    """A dbt resource type (the values are dbt's own names)."""

    MODEL = "model"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    TEST = "test"
    SOURCE = "source"


REFABLE = (Kind.MODEL, Kind.SEED, Kind.SNAPSHOT)
"""What `ref()` can name, and what a transformation node makes a task of."""


@dataclass(frozen=True)
class TestSpec:
    """What a test is: generic (from a properties file) or singular (a .sql file)."""

    generic: bool
    test_name: str
    """The generic test (`not_null`, `dbt_utils.unique_combination_of_columns`) or, for a
    singular test, its file name."""
    attached: str | None = None
    """The unique id of the resource a generic test is declared on."""
    column: str | None = None


@dataclass(frozen=True)
class Resource:
    """One resource: its identity, file, configuration and what it depends on."""

    unique_id: str
    kind: Kind
    name: str
    package: str
    path: str
    """The file relative to the project, with `/`: models/x.sql, or
    dbt_packages/utils/models/x.sql for a resource of an installed package."""
    fqn: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    refs: tuple[Ref, ...] = ()
    sources: tuple[Source, ...] = ()
    test: TestSpec | None = None
    source_name: str | None = None
    """For a source table, the source it belongs to."""
    patch_path: str | None = None
    """The properties file that describes the resource, if one does (dbt selects the
    resource by `path:` on that file too), relative to its package like dbt_path."""
    original_path: str | None = None
    """For a resource of an installed package, its file relative to the package."""
    unresolved: tuple[Computed, ...] = ()
    """Calls only dbt's parse can tell (a ref built by a macro, a var the run sets)."""

    @property
    def dbt_path(self) -> str:
        """dbt's original_file_path: relative to the resource's own package."""
        return self.original_path or self.path

    @property
    def in_package(self) -> bool:
        """Whether the resource comes from an installed package."""
        return self.original_path is not None

    @property
    def materialized(self) -> str:
        """The model's materialization (view when nothing says otherwise)."""
        return str(self.config.get("materialized", "view"))

    @property
    def schema(self) -> str | None:
        """The custom schema config() or dbt_project.yml names, if any."""
        value = self.config.get("schema")
        return None if value is None else str(value)

    @property
    def label(self) -> str:
        """`model `stg_orders``, for messages."""
        return f"{self.kind.value} `{self.name}`"


def unique_id(kind: Kind, package: str, *name: str) -> str:
    """dbt's unique id: `model.shop.stg_orders`, `source.shop.raw.orders`."""
    return ".".join((kind.value, package, *name))


def tags_of(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The tags of a merged config, first seen first, each once."""
    return unique_tags(as_list(config.get("tags")))


def unique_tags(tags: Iterable[Any]) -> tuple[str, ...]:
    """Tags as strings, first seen first, each once."""
    return tuple(dict.fromkeys(str(tag) for tag in tags))

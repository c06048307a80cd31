"""A Flow's warehouse (`spec.warehouse`): where its dbt tasks build and its scripts find
their tables. Absent: the embedded DuckDB default. PostgreSQL takes its connection
settings here and its password only as a reference to a Secret key, which reaches the
task pods as PGPASSWORD from `secretKeyRef` and appears nowhere else. Any other dbt
adapter (installed in the task image) is a whole dbt profiles.yml held in a Secret, which
the task pods mount read-only and dbt reads there."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, model_validator

from kascade.api.base import ApiModel
from kascade.api.core import CONFIG_KEY, CONFIG_KEY_MAX
from kascade.api.markers import cel
from kascade.api.meta import DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX

HOSTNAME = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
IDENTIFIER_LIKE = r"^[A-Za-z_][A-Za-z0-9_$-]*$"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_POSTGRES_NEEDS = ("host", "database", "user")
PROFILES_DIR = "/kascade/profiles"
"""Where a task pod mounts the Secret of a `profiles` warehouse (as profiles.yml)."""
PROFILE_NAME = r"^[A-Za-z0-9_][-A-Za-z0-9_.]*$"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the Flow's namespace."""

    name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="Name of the Secret."
    )
    key: str = Field(
        max_length=CONFIG_KEY_MAX, pattern=CONFIG_KEY, description="Key within the Secret."
    )


class Warehouse(ApiModel):
    """The warehouse of a Flow's tasks."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.type != 'postgres' || (has(self.host) && has(self.database) && "
                "has(self.user))",
                "a postgres warehouse needs host, database and user",
            ),
            ("self.type != 'duckdb' || has(self.path)", "a duckdb warehouse needs path"),
            (
                "(self.type == 'profiles') == has(self.profilesSecretRef)",
                "a profiles warehouse needs profilesSecretRef, and only it takes one",
            ),
        )
    )

    type: Literal["postgres", "duckdb", "profiles"] = Field(
        description="The dbt adapter: postgres (dbt-postgres); duckdb for a file the task "
        "pods share through a volume; or profiles: a target of a whole dbt profiles.yml "
        "from a Secret, for any adapter the task image holds."
    )
    host: str | None = Field(
        default=None, max_length=253, pattern=HOSTNAME, description="PostgreSQL server host."
    )
    port: StrictInt = Field(default=5432, ge=1, le=65535, description="PostgreSQL port.")
    database: str | None = Field(
        default=None, max_length=63, pattern=IDENTIFIER_LIKE, description="Database name."
    )
    schema_: str = Field(
        default="public",
        alias="schema",
        max_length=63,
        pattern=IDENTIFIER_LIKE,
        description="dbt's target schema (custom schemas become <schema>_<custom>).",
    )
    user: str | None = Field(
        default=None, max_length=63, pattern=IDENTIFIER_LIKE, description="Role to log in as."
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(default=None, description="libpq's sslmode.")
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="The Secret key holding the password; it reaches the task pods as "
        "PGPASSWORD and is never copied anywhere else.",
    )
    profiles_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="profiles: the Secret key holding a whole dbt profiles.yml; the task "
        f"pods mount it read-only at {PROFILES_DIR}/profiles.yml.",
    )
    profile: str | None = Field(
        default=None,
        max_length=253,
        pattern=PROFILE_NAME,
        description="profiles: the profile to use (default: the dbt project's `profile:`).",
    )
    target: str | None = Field(
        default=None,
        max_length=253,
        pattern=PROFILE_NAME,
        description="profiles: the target to use (default: the profile's `target:`).",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^/[^\x00]*$",
        description="duckdb: the absolute path of the database file inside the task pods.",
    )

    @model_validator(mode="after")
    def _settings_of_its_type(self) -> Warehouse:
        if (self.type == "profiles") != (self.profiles_secret_ref is not None):
            raise ValueError("a profiles warehouse needs profilesSecretRef, and only it takes one")
        if self.type == "profiles":
            return self
        if self.type == "postgres":
            missing = [name for name in _POSTGRES_NEEDS if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a postgres warehouse needs {', '.join(missing)}")
        elif self.path is None:
            raise ValueError("a duckdb warehouse needs path")
        return self

    def url(self) -> str:
        """The warehouse as the URL tasks receive in KASCADE_WAREHOUSE (no password)."""
        if self.type == "duckdb":
            return "duckdb:///" + str(self.path)
        if self.type == "profiles":
            options = [f"{k}={v}" for k, v in (("profile", self.profile), ("target", self.target))]
            chosen = "&".join(option for option in options if not option.endswith("=None"))
            return f"dbt-profiles://{PROFILES_DIR}/profiles.yml" + (f"?{chosen}" if chosen else "")
        query = f"?schema={self.schema_}" + (f"&sslmode={self.sslmode}" if self.sslmode else "")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}{query}"

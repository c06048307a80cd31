"""The subset of core/v1 types a Flow may carry into its Jobs: env, envFrom, resources, pods.

Only the shape kascade itself reads is modelled; the rest of each core/v1 object passes
through untouched (``x-kubernetes-preserve-unknown-fields``) and is validated by the API
server when the Job is created.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from kascade.api.base import ApiModel
from kascade.api.markers import preserve_unknown_fields

ENV_NAME = r"^[!-<>-~]+$"
"""Printable ASCII without `=` or spaces: what core/v1 allows in an env name, less the
space, which no shell or exec environment takes in a name."""
_ENV_NAME = re.compile(ENV_NAME)


def without_nul(value: str) -> str:
    """A string that holds no NUL byte (no process argument or environment value can)."""
    if "\x00" in value:
        raise ValueError("holds a NUL byte, which no process argument or environment value can")
    return value


NulFreeStr = Annotated[str, AfterValidator(without_nul)]
"""A string that reaches a process (an argument, an environment value): no NUL byte."""


class EnvVar(ApiModel):
    """A core/v1 EnvVar: a literal value or a reference (secretKeyRef, configMapKeyRef, ...)."""

    name: str = Field(
        min_length=1,
        description="Name of the environment variable: printable ASCII without `=` or spaces.",
        json_schema_extra={"pattern": ENV_NAME},
    )
    value: NulFreeStr | None = Field(
        default=None,
        description="Literal value; may use templates such as {{ params.x }} or {{ run.name }}.",
    )
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="A core/v1 EnvVarSource: secretKeyRef, configMapKeyRef, fieldRef or "
        "resourceFieldRef. Secrets arrive in the task as plain environment variables.",
        json_schema_extra=preserve_unknown_fields(),
    )

    @field_validator("name")
    @classmethod
    def _name_is_printable(cls, value: str) -> str:
        # the pattern is in the schema (for the API server) but checked here, for a message
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid name: use printable ASCII without `=` or spaces"
            )
        return value


class LocalObjectReference(ApiModel):
    """A reference to a ConfigMap or Secret in the same namespace."""

    name: str = Field(min_length=1, description="Name of the referenced object.")
    optional: bool | None = Field(
        default=None, description="Do not fail when the referenced object does not exist."
    )


class EnvFromSource(ApiModel):
    """A core/v1 EnvFromSource: every key of a ConfigMap or Secret becomes a variable."""

    prefix: str | None = Field(default=None, description="Prefix added to every variable name.")
    config_map_ref: LocalObjectReference | None = Field(
        default=None, description="The ConfigMap whose keys become variables."
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None, description="The Secret whose keys become variables."
    )


class ResourceRequirements(ApiModel):
    """A core/v1 ResourceRequirements for the task container."""

    limits: dict[str, int | str] | None = Field(
        default=None, description="Maximum resources, e.g. {cpu: 1, memory: 1Gi}."
    )
    requests: dict[str, int | str] | None = Field(
        default=None, description="Resources reserved for scheduling, e.g. {cpu: 100m}."
    )


class PodMetadata(ApiModel):
    """Labels and annotations copied onto the pod template of every Job of a task."""

    labels: dict[str, str] | None = Field(default=None, description="Labels for the task pods.")
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations for the task pods."
    )


class SecurityContext(ApiModel):
    """A core/v1 (container) SecurityContext overriding the restricted default of task pods."""

    model_config = ConfigDict(extra="allow", json_schema_extra=preserve_unknown_fields())

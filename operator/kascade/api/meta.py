"""Kubernetes object metadata and the status types shared by every kind (conditions)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from kascade.api.base import ApiModel, StatusModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
GENERATION_MAX = 2**53 - 1
"""metadata.generation is an int64, but a CRD's `maximum` is a float64 to the API server,
which refuses a bound it cannot hold exactly: the largest integer a float64 holds."""
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN)


class ObjectMeta(ApiModel):
    """The part of metadata kascade reads; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Object name.")
    generate_name: str | None = Field(default=None, description="Prefix for a generated name.")
    namespace: str | None = Field(default=None, description="Object namespace.")
    labels: dict[str, str] | None = Field(default=None, description="Object labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Object annotations.")


class NamedObjectMeta(ObjectMeta):
    """Metadata of an object whose name kascade uses as a path and in the names of other
    objects (a Flow): the name must be a DNS-1123 subdomain, as Kubernetes requires."""

    @field_validator("name")
    @classmethod
    def _name_is_dns_subdomain(cls, value: str | None) -> str | None:
        if value is not None and (
            len(value) > DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.fullmatch(value)
        ):
            shown = value if len(value) <= 80 else value[:60] + "..."
            raise ValueError(
                "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
                f"starting and ending with a letter or digit, at most {DNS_SUBDOMAIN_MAX} "
                f"characters (got {shown!r})"
            )
        return value


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Condition type, e.g. Ready or Valid.")
    status: str = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="One CamelCase word: why.")
    message: str | None = Field(default=None, description="Human-readable details.")
    last_transition_time: datetime | None = Field(
        default=None, description="When the status last changed."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        le=GENERATION_MAX,
        description="The .metadata.generation this condition was computed for.",
    )

"""Kubernetes object metadata and the status types shared by every kind (conditions)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from kascade.api.base import ApiModel, StatusModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ObjectMeta(ApiModel):
    """The part of metadata kascade reads; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Object name.")
    generate_name: str | None = Field(default=None, description="Prefix for a generated name.")
    namespace: str | None = Field(default=None, description="Object namespace.")
    labels: dict[str, str] | None = Field(default=None, description="Object labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Object annotations.")


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
        default=None, description="The .metadata.generation this condition was computed for."
    )

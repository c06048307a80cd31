"""Volumes a Flow adds to its task pods, and where the task container mounts them: the
core/v1 sources tasks use (ConfigMap, Secret, PersistentVolumeClaim, emptyDir, CSI), with
the shapes and checks the API server applies (see core.py). kascade's own volumes and
mount paths (the work dir, /tmp, the project archive) are reserved."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from kascade.api.core import (
    CONFIG_KEY,
    CONFIG_KEY_MAX,
    CoreModel,
    LocalObjectReference,
    Quantity,
    exactly_one_rule,
)
from kascade.api.markers import cel
from kascade.api.meta import DNS_LABEL, DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX
from kascade.api.warehouse import PROFILES_DIR

MAX_VOLUMES = 20
MAX_ITEMS = 50
PATH_MAX = 4096
MODE_MAX = 0o777
PROFILES_VOLUME = "warehouse-profiles"
"""The volume of a `profiles` warehouse's profiles.yml (mounted at PROFILES_DIR)."""
RESERVED_VOLUMES = ("work", "tmp", "project", PROFILES_VOLUME)
"""The task pod's own volumes (operator/jobs.py): its work dir, /tmp, the project, a
`profiles` warehouse's profiles.yml."""
RESERVED_MOUNT_PATHS = ("/kascade/work", "/tmp", "/kascade/archive", PROFILES_DIR)
SOURCES = ("configMap", "secret", "persistentVolumeClaim", "emptyDir", "csi")


def _relative_path(path: str, what: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or ".." in parts:
        raise ValueError(f"{what} {path!r} must be relative and must not contain '..'")
    return path


class KeyToPath(CoreModel):
    """One key of a ConfigMap or Secret, and the file it becomes."""

    key: str = Field(max_length=CONFIG_KEY_MAX, pattern=CONFIG_KEY, description="The key.")
    path: str = Field(min_length=1, max_length=PATH_MAX, description="Relative file path; no '..'.")
    mode: int | None = Field(default=None, ge=0, le=MODE_MAX, description="File mode bits.")

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _relative_path(value, "path")


class ConfigMapVolumeSource(CoreModel):
    """A ConfigMap of the namespace as files."""

    name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="The ConfigMap."
    )
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description="Only these keys, at these paths."
    )
    default_mode: int | None = Field(
        default=None, ge=0, le=MODE_MAX, description="Mode bits of the files."
    )
    optional: bool | None = Field(default=None, description="Mount even if it is missing.")


class SecretVolumeSource(CoreModel):
    """A Secret of the namespace as files."""

    secret_name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="The Secret."
    )
    items: list[KeyToPath] | None = Field(
        default=None, max_length=MAX_ITEMS, description="Only these keys, at these paths."
    )
    default_mode: int | None = Field(
        default=None, ge=0, le=MODE_MAX, description="Mode bits of the files."
    )
    optional: bool | None = Field(default=None, description="Mount even if it is missing.")


class PersistentVolumeClaimVolumeSource(CoreModel):
    """A PersistentVolumeClaim of the namespace."""

    claim_name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="The claim."
    )
    read_only: bool | None = Field(default=None, description="Mount it read-only.")


class EmptyDirVolumeSource(CoreModel):
    """A scratch directory that lives as long as the pod."""

    medium: Literal["", "Memory"] | None = Field(
        default=None, description="'' (the node's disk) or Memory (tmpfs)."
    )
    size_limit: Quantity | None = Field(default=None, description="Largest size, e.g. 1Gi.")


class CSIVolumeSource(CoreModel):
    """An inline volume of a CSI driver (e.g. a secrets-store driver)."""

    driver: str = Field(max_length=63, pattern=DNS_SUBDOMAIN, description="The CSI driver's name.")
    read_only: bool | None = Field(default=None, description="Mount it read-only.")
    fs_type: str | None = Field(default=None, max_length=63, description="Filesystem type.")
    volume_attributes: dict[str, str] | None = Field(
        default=None, max_length=MAX_ITEMS, description="Driver-specific attributes."
    )
    node_publish_secret_ref: LocalObjectReference | None = Field(
        default=None, description="Secret passed to the driver."
    )


class Volume(CoreModel):
    """A volume of the task pods: a name and exactly one source."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (exactly_one_rule(SOURCES), f"a volume has exactly one of {', '.join(SOURCES)}"),
            (
                f"!(self.name in {list(RESERVED_VOLUMES)})",
                "volume names work, tmp, project and warehouse-profiles are kascade's own",
            ),
        )
    )

    name: str = Field(max_length=63, pattern=DNS_LABEL, description="Volume name.")
    config_map: ConfigMapVolumeSource | None = Field(default=None, description="A ConfigMap.")
    secret: SecretVolumeSource | None = Field(default=None, description="A Secret.")
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = Field(
        default=None, description="A PersistentVolumeClaim."
    )
    empty_dir: EmptyDirVolumeSource | None = Field(default=None, description="A scratch dir.")
    csi: CSIVolumeSource | None = Field(default=None, description="A CSI inline volume.")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_VOLUMES:
            raise ValueError(
                f"volume name {value!r} is kascade's own ({', '.join(RESERVED_VOLUMES)})"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        set_sources = [
            alias
            for alias, field in zip(
                SOURCES,
                ("config_map", "secret", "persistent_volume_claim", "empty_dir", "csi"),
                strict=True,
            )
            if getattr(self, field) is not None
        ]
        if len(set_sources) != 1:
            raise ValueError(
                f"volume {self.name!r} must have exactly one of {', '.join(SOURCES)}"
                + (f" (has {', '.join(set_sources)})" if set_sources else "")
            )
        return self


class VolumeMount(CoreModel):
    """Where the task container mounts a volume."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                f"!(self.mountPath in {list(RESERVED_MOUNT_PATHS)})",
                f"mountPaths {', '.join(RESERVED_MOUNT_PATHS)} are kascade's own",
            ),
        )
    )

    name: str = Field(max_length=63, pattern=DNS_LABEL, description="The volume's name.")
    mount_path: str = Field(
        min_length=2, max_length=PATH_MAX, pattern=r"^/", description="Absolute path."
    )
    read_only: bool | None = Field(default=None, description="Mount it read-only.")
    sub_path: str | None = Field(
        default=None, max_length=PATH_MAX, description="A path inside the volume; no '..'."
    )

    @field_validator("mount_path")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.rstrip("/") in RESERVED_MOUNT_PATHS:
            raise ValueError(
                f"mountPath {value!r} is kascade's own ({', '.join(RESERVED_MOUNT_PATHS)})"
            )
        return value

    @field_validator("sub_path")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value, "subPath")

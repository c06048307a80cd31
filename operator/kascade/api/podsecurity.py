"""The pod-level core/v1 PodSecurityContext of task pods (the container's is core.py's
SecurityContext), with the shapes and checks the API server applies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kascade.api.core import ID_MAX, AppArmorProfile, CoreModel, SeccompProfile, SELinuxOptions

MAX_GROUPS = 32
MAX_SYSCTLS = 20


class Sysctl(CoreModel):
    """A namespaced kernel parameter set for the pod."""

    name: str = Field(
        max_length=253,
        pattern=r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?([./][a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$",
        description="Parameter name, e.g. net.ipv4.ip_local_port_range.",
    )
    value: str = Field(max_length=1024, description="Parameter value.")


class PodSecurityContext(CoreModel):
    """A core/v1 PodSecurityContext replacing the task pods' restricted default
    (runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault)."""

    run_as_user: int | None = Field(
        default=None, ge=0, le=ID_MAX, description="UID of the pod's processes."
    )
    run_as_group: int | None = Field(
        default=None, ge=0, le=ID_MAX, description="GID of the pod's processes."
    )
    run_as_non_root: bool | None = Field(default=None, description="Refuse to run as UID 0.")
    fs_group: int | None = Field(
        default=None, ge=0, le=ID_MAX, description="Group owning the volumes."
    )
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None, description="When volume ownership is changed."
    )
    supplemental_groups: list[Annotated[int, Field(ge=0, le=ID_MAX)]] | None = Field(
        default=None, max_length=MAX_GROUPS, description="More GIDs of the pod's processes."
    )
    seccomp_profile: SeccompProfile | None = Field(default=None, description="Seccomp profile.")
    app_armor_profile: AppArmorProfile | None = Field(default=None, description="AppArmor profile.")
    se_linux_options: SELinuxOptions | None = Field(default=None, description="SELinux context.")
    sysctls: list[Sysctl] | None = Field(
        default=None, max_length=MAX_SYSCTLS, description="Namespaced sysctls."
    )

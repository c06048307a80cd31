"""The subset of core/v1 types a Flow may carry into its Jobs: env, envFrom, resources, pods.

Each object is modelled with the core/v1 fields a task container may set, their types and
the checks the API server makes when it creates the Job, so that a Flow which would make
an invalid Job is refused when it is applied (by the CRD schema) and when it is read (by
these models), naming the field. Unknown fields are refused, as the API server refuses
them in core/v1 objects.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from kascade.api.base import ApiModel
from kascade.api.markers import cel
from kascade.api.meta import DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX

ENV_NAME = r"^[!-<>-~]+$"
"""Printable ASCII without `=` or spaces: what core/v1 allows in an env name, less the
space, which no shell or exec environment takes in a name."""
_ENV_NAME = re.compile(ENV_NAME)

ID_MAX = 2**31 - 1
"""runAsUser and runAsGroup are int64 in core/v1, but the API server takes only user and
group IDs from 0 to 2^31-1 (and a CRD bound must stay within 2^53-1 anyway)."""
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
"""A key of a ConfigMap or a Secret."""
CONFIG_KEY_MAX = 253
QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$"
"""A resource quantity written as a string, e.g. 500m, 0.5, 1Gi, 2e3 (never negative)."""
_QUANTITY = re.compile(QUANTITY)
ENV_FIELD_PATH = (
    r"^(metadata\.(name|namespace|uid)|spec\.(nodeName|serviceAccountName)"
    r"|status\.(hostIPs?|podIPs?)|metadata\.(labels|annotations)\['[^']+'\])$"
)
"""The pod fields core/v1 can expose as an environment variable (fieldRef.fieldPath)."""
ENV_RESOURCE = r"^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$"
"""The container resources core/v1 can expose as an environment variable."""
ENV_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")


def without_nul(value: str) -> str:
    """A string that holds no NUL byte (no process argument or environment value can)."""
    if "\x00" in value:
        raise ValueError("holds a NUL byte, which no process argument or environment value can")
    return value


NulFreeStr = Annotated[str, AfterValidator(without_nul)]
"""A string that reaches a process (an argument, an environment value): no NUL byte."""


def quantity(value: Any) -> int | str:
    """A core/v1 resource quantity: a non-negative integer or a quantity string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            "must be an integer or a quantity string such as 500m, 0.5 or 1Gi "
            f"(got {type(value).__name__})"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative (got {value})")
        return value
    if not _QUANTITY.fullmatch(value):
        shown = value if len(value) <= 40 else value[:30] + "..."
        raise ValueError(f"{shown!r} is not a quantity: write e.g. 500m, 0.5, 2, 1Gi or 512Mi")
    return str(value)


Quantity = Annotated[
    int | str,
    PlainValidator(quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "pattern": QUANTITY,
        }
    ),
]
"""A resource quantity: a non-negative integer, or a string such as 500m or 1Gi (in the
CRD an int-or-string whose integers are >= 0 and whose strings match QUANTITY)."""


def exactly_one_rule(fields: tuple[str, ...]) -> str:
    """A CEL rule: exactly one of `fields` is set, written with has() and ternaries only.

    The API server refuses a CRD whose rules it estimates too costly, and counts a rule
    under an unbounded list (env has no maxItems) once per object the largest request
    could hold: about a million for valueFrom. This form costs 5 per evaluation (5.2M
    of the 10M a rule may cost, five times in a Flow of the 100M all its rules may);
    a sum of ternaries costs 8 and the filtered list of flow.py more.
    """
    first, rest = fields[0], fields[1:]
    if not rest:
        return f"has(self.{first})"
    none_of_rest = " || ".join(f"has(self.{field})" for field in rest)
    return f"has(self.{first}) ? !({none_of_rest}) : {exactly_one_rule(rest)}"


class CoreModel(ApiModel):
    """A core/v1 object passed into a Job: typed as strictly as the API server reads it
    (no "1" for 1, no "true" for true), unknown fields refused."""

    model_config = ConfigDict(strict=True)


# --- env ------------------------------------------------------------------------------


class SecretKeySelector(CoreModel):
    """A key of a Secret in the Flow's namespace."""

    name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="Name of the Secret."
    )
    key: str = Field(
        max_length=CONFIG_KEY_MAX,
        pattern=CONFIG_KEY,
        description="Key within the Secret whose value the variable takes.",
    )
    optional: bool | None = Field(
        default=None,
        description="Leave the variable unset, instead of failing the pod, when the Secret "
        "or its key does not exist.",
    )


class ConfigMapKeySelector(CoreModel):
    """A key of a ConfigMap in the Flow's namespace."""

    name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="Name of the ConfigMap."
    )
    key: str = Field(
        max_length=CONFIG_KEY_MAX,
        pattern=CONFIG_KEY,
        description="Key within the ConfigMap whose value the variable takes.",
    )
    optional: bool | None = Field(
        default=None,
        description="Leave the variable unset, instead of failing the pod, when the ConfigMap "
        "or its key does not exist.",
    )


class ObjectFieldSelector(CoreModel):
    """A field of the task's pod (the downward API)."""

    api_version: Literal["v1"] | None = Field(
        default=None, description="Version of the pod schema fieldPath is written in: v1."
    )
    field_path: str = Field(
        pattern=ENV_FIELD_PATH,
        description="The pod field: metadata.name, metadata.namespace, metadata.uid, "
        "metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, "
        "spec.serviceAccountName, status.hostIP(s) or status.podIP(s).",
    )


class ResourceFieldSelector(CoreModel):
    """A resource limit or request of the task container."""

    container_name: str | None = Field(
        default=None,
        max_length=DNS_LABEL_MAX,
        pattern=DNS_LABEL,
        description="Container whose resource is read; default the task container.",
    )
    resource: str = Field(
        pattern=ENV_RESOURCE,
        description="limits.cpu, limits.memory, limits.ephemeral-storage, the same under "
        "requests, or limits.hugepages-<size> / requests.hugepages-<size>.",
    )
    divisor: Quantity | None = Field(
        default=None,
        description="The value is divided by this quantity (e.g. 1m, 1Mi); default 1.",
    )


class EnvVarSource(CoreModel):
    """A core/v1 EnvVarSource: where a variable's value comes from. Exactly one of
    secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                exactly_one_rule(ENV_SOURCES),
                f"valueFrom must set exactly one of: {', '.join(ENV_SOURCES)}",
            )
        )
    )

    secret_key_ref: SecretKeySelector | None = Field(
        default=None,
        description="A key of a Secret; the task gets it as a plain environment variable.",
    )
    config_map_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="A key of a ConfigMap."
    )
    field_ref: ObjectFieldSelector | None = Field(
        default=None, description="A field of the task's pod, e.g. metadata.name."
    )
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource limit or request of the task container."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> EnvVarSource:
        refs = (
            self.secret_key_ref,
            self.config_map_key_ref,
            self.field_ref,
            self.resource_field_ref,
        )
        given = [name for name, ref in zip(ENV_SOURCES, refs, strict=True) if ref is not None]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"must set exactly one of: {', '.join(ENV_SOURCES)} ({found})")
        return self


class EnvVar(ApiModel):
    """A core/v1 EnvVar: a literal value or a reference (secretKeyRef, configMapKeyRef, ...)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.valueFrom) || !has(self.value) || size(self.value) == 0",
                "an env variable cannot set both value and valueFrom",
            )
        )
    )

    name: str = Field(
        min_length=1,
        description="Name of the environment variable: printable ASCII without `=` or spaces.",
        json_schema_extra={"pattern": ENV_NAME},
    )
    value: NulFreeStr | None = Field(
        default=None,
        description="Literal value; may use templates such as {{ params.x }} or {{ run.name }}.",
    )
    value_from: EnvVarSource | None = Field(
        default=None,
        description="Where the value comes from instead of `value`: exactly one of "
        "secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef. Secrets arrive in the "
        "task as plain environment variables.",
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

    @model_validator(mode="after")
    def _value_or_value_from(self) -> EnvVar:
        if self.value and self.value_from is not None:
            raise ValueError(f"env {self.name} sets both value and valueFrom: set one of them")
        return self


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


# --- resources and pod metadata -------------------------------------------------------


class ResourceRequirements(ApiModel):
    """A core/v1 ResourceRequirements for the task container."""

    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, e.g. {cpu: 1, memory: 1Gi}."
    )
    requests: dict[str, Quantity] | None = Field(
        default=None, description="Resources reserved for scheduling, e.g. {cpu: 100m}."
    )


class PodMetadata(ApiModel):
    """Labels and annotations copied onto the pod template of every Job of a task."""

    labels: dict[str, str] | None = Field(default=None, description="Labels for the task pods.")
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations for the task pods."
    )


# --- securityContext ------------------------------------------------------------------


ProfileType = Literal["RuntimeDefault", "Unconfined", "Localhost"]
"""The type of a seccomp or AppArmor profile."""


def _profile_rule(what: str) -> tuple[str, str]:
    """localhostProfile is set exactly when the profile type is Localhost (a CEL rule)."""
    return (
        "(self.type == 'Localhost') == has(self.localhostProfile)",
        f"{what}.localhostProfile must be set when type is Localhost, and only then",
    )


def _check_profile(profile_type: str, localhost_profile: str | None) -> None:
    if profile_type == "Localhost" and localhost_profile is None:
        raise ValueError("localhostProfile must be set when type is Localhost")
    if profile_type != "Localhost" and localhost_profile is not None:
        raise ValueError(
            f"localhostProfile can only be set when type is Localhost, not {profile_type}"
        )


class SeccompProfile(CoreModel):
    """The seccomp profile of the task container."""

    model_config = ConfigDict(json_schema_extra=cel(_profile_rule("seccompProfile")))

    type: ProfileType = Field(
        description="RuntimeDefault (the container runtime's profile), Unconfined (none) or "
        "Localhost (a profile file on the node, named by localhostProfile)."
    )
    localhost_profile: str | None = Field(
        default=None,
        min_length=1,
        description="Path of the profile file, relative to the kubelet's seccomp directory; "
        "only (and required) with type Localhost.",
    )

    @model_validator(mode="after")
    def _localhost_profile_with_localhost(self) -> SeccompProfile:
        _check_profile(self.type, self.localhost_profile)
        return self


class AppArmorProfile(CoreModel):
    """The AppArmor profile of the task container."""

    model_config = ConfigDict(json_schema_extra=cel(_profile_rule("appArmorProfile")))

    type: ProfileType = Field(
        description="RuntimeDefault (the container runtime's profile), Unconfined (none) or "
        "Localhost (a profile loaded on the node, named by localhostProfile)."
    )
    localhost_profile: str | None = Field(
        default=None,
        min_length=1,
        max_length=4095,
        description="Name of the profile loaded on the node; only (and required) with type "
        "Localhost.",
    )

    @model_validator(mode="after")
    def _localhost_profile_with_localhost(self) -> AppArmorProfile:
        _check_profile(self.type, self.localhost_profile)
        return self


class Capabilities(CoreModel):
    """Linux capabilities added to or dropped from the container runtime's default set."""

    add: list[str] | None = Field(
        default=None, description="Capabilities to add, e.g. NET_BIND_SERVICE."
    )
    drop: list[str] | None = Field(default=None, description="Capabilities to drop, e.g. ALL.")


class SELinuxOptions(CoreModel):
    """The SELinux context of the task container."""

    level: str | None = Field(default=None, description="SELinux level label.")
    role: str | None = Field(default=None, description="SELinux role label.")
    type: str | None = Field(default=None, description="SELinux type label.")
    user: str | None = Field(default=None, description="SELinux user label.")


class WindowsSecurityContextOptions(CoreModel):
    """Windows-specific settings of the task container (Windows nodes only)."""

    gmsa_credential_spec_name: str | None = Field(
        default=None,
        max_length=DNS_SUBDOMAIN_MAX,
        pattern=DNS_SUBDOMAIN,
        description="Name of the GMSACredentialSpec object to use.",
    )
    gmsa_credential_spec: str | None = Field(
        default=None,
        min_length=1,
        description="Contents of the GMSA credential spec named by gmsaCredentialSpecName.",
    )
    host_process: bool | None = Field(
        default=None, description="Run the container as a Windows HostProcess container."
    )
    run_as_user_name: str | None = Field(
        default=None, min_length=1, description="Windows user name the entrypoint runs as."
    )


class SecurityContext(CoreModel):
    """A core/v1 (container) SecurityContext overriding the restricted default of task pods."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.privileged) || !self.privileged || "
                "!has(self.allowPrivilegeEscalation) || self.allowPrivilegeEscalation",
                "allowPrivilegeEscalation cannot be false when privileged is true",
            )
        )
    )

    allow_privilege_escalation: bool | None = Field(
        default=None,
        description="Whether a process may gain more privileges than its parent "
        "(no_new_privs unset); always true when privileged.",
    )
    app_armor_profile: AppArmorProfile | None = Field(
        default=None, description="AppArmor profile of the container."
    )
    capabilities: Capabilities | None = Field(
        default=None, description="Capabilities to add and drop."
    )
    privileged: bool | None = Field(
        default=None,
        description="Run as privileged: the same as root on the host. Default false.",
    )
    proc_mount: Literal["Default", "Unmasked"] | None = Field(
        default=None,
        description="Default (masked and read-only /proc paths) or Unmasked.",
    )
    read_only_root_filesystem: bool | None = Field(
        default=None, description="Mount the container's root filesystem read-only."
    )
    run_as_group: int | None = Field(
        default=None, ge=0, le=ID_MAX, description="GID the entrypoint runs as."
    )
    run_as_non_root: bool | None = Field(
        default=None,
        description="Refuse to start the container if it would run as UID 0 (root).",
    )
    run_as_user: int | None = Field(
        default=None, ge=0, le=ID_MAX, description="UID the entrypoint runs as."
    )
    se_linux_options: SELinuxOptions | None = Field(
        default=None, description="SELinux context of the container."
    )
    seccomp_profile: SeccompProfile | None = Field(
        default=None, description="Seccomp profile of the container."
    )
    windows_options: WindowsSecurityContextOptions | None = Field(
        default=None, description="Windows-specific settings (Windows nodes only)."
    )

    @model_validator(mode="after")
    def _privileged_escalates(self) -> SecurityContext:
        if self.privileged and self.allow_privilege_escalation is False:
            raise ValueError("allowPrivilegeEscalation cannot be false when privileged is true")
        return self


# --- placement ------------------------------------------------------------------------

LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
"""A label key: an optional DNS-subdomain prefix and `/`, then a name."""
LABEL_KEY_MAX = 317
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MAX = 63
MAX_TOLERATIONS = 50
MAX_NODE_SELECTOR = 50
MAX_PULL_SECRETS = 20


class Toleration(CoreModel):
    """A core/v1 Toleration: the task pods may run on nodes with a matching taint."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
                "|| self.value == ''",
                "a toleration with operator Exists takes no value",
            ),
            (
                "has(self.key) || (has(self.operator) && self.operator == 'Exists')",
                "a toleration without key must have operator Exists (it tolerates every taint)",
            ),
        )
    )

    key: str | None = Field(
        default=None, max_length=LABEL_KEY_MAX, pattern=LABEL_KEY, description="Taint key."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Equal (the default) or Exists."
    )
    value: str | None = Field(
        default=None, max_length=LABEL_VALUE_MAX, pattern=LABEL_VALUE, description="Taint value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint effect matched; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="NoExecute: how long the pod stays after the taint appears.",
    )

    @model_validator(mode="after")
    def _shape(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.key is None and self.operator != "Exists":
            raise ValueError(
                "a toleration without key must have operator Exists (it tolerates every taint)"
            )
        return self


class PullSecret(CoreModel):
    """A Secret of the namespace the kubelet pulls the task image with."""

    name: str = Field(
        max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN, description="Name of the Secret."
    )

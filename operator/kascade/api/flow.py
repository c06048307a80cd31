"""The Flow resource: nodes, schedule, defaults, parameters, hooks, and its status."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from kascade.api.affinity import Affinity
from kascade.api.base import ApiModel, StatusModel
from kascade.api.core import (
    LABEL_KEY,
    LABEL_KEY_MAX,
    LABEL_VALUE,
    LABEL_VALUE_MAX,
    MAX_NODE_SELECTOR,
    MAX_PULL_SECRETS,
    MAX_TOLERATIONS,
    EnvFromSource,
    EnvVar,
    NulFreeStr,
    PodMetadata,
    PullSecret,
    ResourceRequirements,
    SecurityContext,
    Toleration,
    without_nul,
)
from kascade.api.enums import ConcurrencyPolicy, Frequency, ParameterType, RunPhase, TriggerRule
from kascade.api.markers import cel, unique_by_name
from kascade.api.meta import DNS_SUBDOMAIN, GENERATION_MAX, Condition, NamedObjectMeta
from kascade.api.podsecurity import PodSecurityContext
from kascade.api.volumes import MAX_VOLUMES, Volume, VolumeMount
from kascade.api.warehouse import Warehouse

MAX_POD_SPEC_PATCH_FIELDS = 64

NodeSelectorValue = Annotated[
    str, StringConstraints(max_length=LABEL_VALUE_MAX, pattern=LABEL_VALUE, strict=True)
]
NODE_NAME = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"
NODE_NAME_MAX = 63
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
SCRIPT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
MAX_NODES = 500
MAX_HOOKS = 20
MAX_SELECTORS = 200
MAX_ENV = 500
MAX_ENV_FROM = 100
SELECTOR_MAX_LENGTH = 1024
CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
RETRIES_MAX = 100
RETRY_DELAY_SECONDS_MAX = 86_400
"""One day."""
TASK_TIMEOUT_SECONDS_MAX = 604_800
"""Seven days."""
RUN_TIMEOUT_SECONDS_MAX = 2_592_000
"""Thirty days."""
STARTING_DEADLINE_SECONDS_MAX = 2_592_000
MAX_PARALLEL_TASKS_MAX = 10_000
MAX_ACTIVE_RUNS_MAX = 10_000
HISTORY_LIMIT_MAX = 1_000
TASK_COUNT_MAX = 1_000_000
"""Tasks a plan may hold (status counts only; nothing else bounds a big project)."""
CRON_HORIZON_YEARS = 8
"""A cron must fire within this many years (Feb 29 comes at least every 8 years)."""
_CRON_PROBE_START = datetime(2001, 1, 1)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
NodeName = Annotated[str, StringConstraints(pattern=NODE_NAME, max_length=NODE_NAME_MAX)]
Selector = Annotated[str, StringConstraints(min_length=1, max_length=SELECTOR_MAX_LENGTH)]

NODE_KINDS = ("transformation", "connection", "script", "flow")
HOOK_KINDS = ("script", "flow")


def _exactly_one_rule(kinds: tuple[str, ...]) -> JsonDict:
    present = ", ".join(f"has(self.{kind})" for kind in kinds)
    listed = ", ".join(kinds)
    return cel(
        (
            f"[{present}].filter(k, k).size() == 1",
            f"='node ' + self.name + ' must set exactly one of: {listed}'",
        )
    )


class Every(ApiModel):
    """Basic schedule mode, translated to cron: every minute, hour, day, week or month."""

    frequency: Frequency = Field(description="minute, hour, day, week or month.")
    at: str | None = Field(
        default=None,
        pattern=CLOCK_TIME,
        description='Time of day "HH:MM" (24h) for day, week and month; for hour only the '
        "minutes are used. Default 00:00.",
    )
    day_of_week: Weekday | None = Field(
        default=None,
        description="For frequency week: mon, tue, wed, thu, fri, sat or sun. Default mon.",
    )
    day_of_month: StrictInt | None = Field(
        default=None, ge=1, le=31, description="For frequency month: day 1-31. Default 1."
    )


class Schedule(ApiModel):
    """When the Flow runs by itself. Exactly one of cron and every."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.cron) != has(self.every)", "schedule must set exactly one of: cron, every")
        )
    )

    cron: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^\s*\S+(\s+\S+){4}\s*$",
        description='Advanced mode: a five-field cron expression, e.g. "0 2 * * *".',
    )
    every: Every | None = Field(default=None, description="Basic mode, translated to cron.")
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone of the schedule."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.ALLOW,
        description="Allow concurrent runs; Forbid: skip a time while a run is active (counted "
        "as missed); Replace: abort the active run, then start the new one.",
    )
    starting_deadline_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        le=STARTING_DEADLINE_SECONDS_MAX,
        description="A missed time still runs if the operator sees it at most this late; "
        "unset means only the most recent missed time runs, however late.",
    )
    suspend: StrictBool = Field(default=False, description="Stop creating new runs.")

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        try:
            croniter(
                value, _CRON_PROBE_START, max_years_between_matches=CRON_HORIZON_YEARS
            ).get_next(datetime)
        except (CroniterError, ValueError, OverflowError) as err:
            raise ValueError(
                f"cron expression {value!r} never fires (no time matches it in "
                f"{CRON_HORIZON_YEARS} years; e.g. February has no 30th or 31st)"
            ) from err
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError) as err:
            # an unknown name is a ZoneInfoNotFoundError (a KeyError), a folder of the zone
            # database such as `Europe` an IsADirectoryError, a malformed name a ValueError
            raise ValueError(f"unknown IANA time zone {value!r}") from err
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("schedule must set exactly one of: cron, every")
        return self


class ProjectSource(ApiModel):
    """Where the models and scripts of the Flow come from inside the cluster."""

    config_map: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="ConfigMap holding the project, as written by `kascade project push`.",
    )


class Parameter(ApiModel):
    """A typed Flow parameter, used in templates as {{ params.<name> }}."""

    name: str = Field(pattern=IDENTIFIER, max_length=63, description="Parameter name.")
    type: ParameterType = Field(
        default=ParameterType.STRING, description="string, integer, number or boolean."
    )
    default: Any = Field(
        default=None,
        description="Value when a run does not set one; may be a template such as "
        "{{ run.scheduledDate }}. A parameter without a default is required.",
    )
    description: str | None = Field(default=None, description="What the parameter means.")

    @field_validator("default")
    @classmethod
    def _default_without_nul(cls, value: Any) -> Any:
        _reject_nul(value)
        return value


def _values_without_nul(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A mapping whose values (nested too) hold no NUL byte; the error names the key."""
    for name, item in (value or {}).items():
        try:
            _reject_nul(item)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from err
    return value


def _reject_nul(value: Any) -> None:
    """ValueError when a string anywhere in `value` holds a NUL byte. Each list or mapping
    is read once, so YAML aliases that repeat one list many times cost nothing extra."""
    pending = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            without_nul(item)
        elif isinstance(item, list | dict) and id(item) not in seen:
            seen.add(id(item))
            pending.extend(item.values() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                pending.extend(key for key in item if isinstance(key, str))


class TaskSettings(ApiModel):
    """Execution settings of a task; set in defaults, overridable per node."""

    image: str | None = Field(default=None, description="Container image of the task runtime.")
    retries: StrictInt | None = Field(
        default=None,
        ge=0,
        le=RETRIES_MAX,
        description="Extra attempts after a failure. Default 0.",
    )
    retry_delay_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        le=RETRY_DELAY_SECONDS_MAX,
        description="Wait between attempts. Default 30.",
    )
    timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=TASK_TIMEOUT_SECONDS_MAX,
        description="Deadline of one attempt; unset means none.",
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=MAX_ENV,
        description="Environment variables (core/v1 EnvVar list).",
    )
    env_from: list[EnvFromSource] | None = Field(
        default=None,
        max_length=MAX_ENV_FROM,
        description="ConfigMaps and Secrets exposed as environment variables.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory of the task container."
    )
    pod_metadata: PodMetadata | None = Field(
        default=None, description="Labels and annotations for the task pods."
    )
    service_account_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN, description="ServiceAccount the task pods run as."
    )
    security_context: SecurityContext | None = Field(
        default=None,
        description="Container securityContext; replaces the restricted profile default.",
    )
    node_selector: dict[str, NodeSelectorValue] | None = Field(
        default=None,
        max_length=MAX_NODE_SELECTOR,
        description="Labels a node must have to run the task pods (a node's map replaces "
        "the defaults').",
        json_schema_extra=cel(
            (
                f"self.all(k, size(k) <= {LABEL_KEY_MAX} && k.matches('{LABEL_KEY}'))",
                "nodeSelector keys are label keys (prefix/name)",
            )
        ),
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        max_length=MAX_TOLERATIONS,
        description="Taints the task pods tolerate (core/v1 Toleration list).",
    )
    image_pull_secrets: list[PullSecret] | None = Field(
        default=None,
        max_length=MAX_PULL_SECRETS,
        description="Secrets the kubelet pulls the task image with.",
    )

    affinity: Affinity | None = Field(
        default=None, description="Node affinity, pod affinity and anti-affinity (core/v1)."
    )
    volumes: list[Volume] | None = Field(
        default=None,
        max_length=MAX_VOLUMES,
        description="Volumes of the task pods (ConfigMap, Secret, PersistentVolumeClaim, "
        "emptyDir, CSI); merged with the defaults' by name.",
        json_schema_extra=unique_by_name(),
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        max_length=MAX_VOLUMES,
        description="Where the task container mounts the volumes; merged with the defaults' "
        "by mountPath.",
    )
    pod_security_context: PodSecurityContext | None = Field(
        default=None,
        description="Pod securityContext; replaces the restricted default (runAsNonRoot, "
        "runAsUser 65532, seccomp RuntimeDefault).",
    )

    pod_spec_patch: dict[str, Any] | None = Field(
        default=None,
        max_length=MAX_POD_SPEC_PATCH_FIELDS,
        description="A partial core/v1 PodSpec merged into the task pods' spec with "
        "strategic-merge rules (containers by name, env by name, volumeMounts by "
        "mountPath; null removes; $patch: delete/replace), for what the fields above do "
        "not cover, e.g. {containers: [{name: task, ports: [{containerPort: 8080}]}]}. "
        "A node's patch replaces the defaults'; the API server checks the result when it "
        "creates the Job.",
    )

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if len(key) > LABEL_KEY_MAX or not re.match(LABEL_KEY, key):
                raise ValueError(f"nodeSelector key {key!r} is not a label key (prefix/name)")
        return value


class Transformation(ApiModel):
    """dbt resources chosen with dbt's selector language: one task per selected model, seed
    and snapshot, run by dbt, and their tests after them."""

    include: list[Selector] | None = Field(
        default=None,
        max_length=MAX_SELECTORS,
        description="Selectors (union), e.g. tag:staging, +fct_orders, path:models/marts, "
        "resource_type:seed. Unset selects every resource of the project.",
    )
    exclude: list[Selector] | None = Field(
        default=None,
        max_length=MAX_SELECTORS,
        description="Selectors of resources to leave out (a test left out here does not run).",
    )
    tests: StrictBool = Field(
        default=True,
        description="Run the tests of the selected resources (dbt build semantics: one test "
        "task per resource after it, a test on several resources after all of them, and an "
        "error-severity failure stops the resource's descendants). false runs none.",
    )
    allow_empty: StrictBool = Field(
        default=False,
        description="Let the selection be empty (the node then has no tasks); by default "
        "a node that selects nothing is an error.",
    )


class Connection(ApiModel):
    """Ingestion connectors: one task per connector."""

    connectors: list[NodeName] = Field(
        min_length=1,
        max_length=MAX_SELECTORS,
        description="Names of the connectors to run.",
    )


class ScriptRef(ApiModel):
    """A script package of the project, scripts/<name>/__main__.py."""

    name: str = Field(pattern=SCRIPT_NAME, max_length=128, description="Script package name.")
    args: list[NulFreeStr] | None = Field(
        default=None, description="Arguments (sys.argv[1:]); templates allowed."
    )


class ChildFlow(ApiModel):
    """Starts a Run of another Flow; the child records its parent."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253, description="Name of the Flow.")
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Parameters of the child run; templates allowed.",
    )
    wait: StrictBool = Field(
        default=True, description="Wait for the child run to finish and take its outcome."
    )

    @field_validator("parameters")
    @classmethod
    def _parameters_without_nul(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _values_without_nul(value)


MAX_VARS = 200
"""dbt vars a Flow may set."""


class Node(TaskSettings):
    """One step of the Flow. Exactly one of transformation, connection, script, flow."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_rule(NODE_KINDS))

    name: str = Field(
        pattern=NODE_NAME, max_length=NODE_NAME_MAX, description="Node name, unique in the Flow."
    )
    description: str | None = Field(default=None, description="What the node does.")
    transformation: Transformation | None = Field(
        default=None, description="SQL models chosen by selectors."
    )
    connection: Connection | None = Field(default=None, description="Ingestion connectors.")
    script: ScriptRef | None = Field(default=None, description="A Python script package.")
    flow: ChildFlow | None = Field(default=None, description="A child Flow.")
    depends_on: list[NodeName] | None = Field(
        default=None,
        max_length=MAX_NODES,
        description="Nodes whose tasks must all finish before any task of this node starts.",
    )
    trigger: TriggerRule = Field(
        default=TriggerRule.ALL_SUCCESS,
        description="When a task starts once its upstream tasks are done: allSuccess, "
        "allDone, oneFailed, allFailed or noneFailed.",
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Node:
        _require_exactly_one(self, NODE_KINDS)
        return self

    @property
    def kind(self) -> str:
        """Which of transformation, connection, script or flow this node is."""
        return next(kind for kind in NODE_KINDS if getattr(self, kind) is not None)


class HookNode(TaskSettings):
    """A lifecycle hook: a script or a child flow run when the Run ends."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_rule(HOOK_KINDS))

    name: str = Field(
        pattern=NODE_NAME, max_length=NODE_NAME_MAX, description="Hook name, unique in the Flow."
    )
    description: str | None = Field(default=None, description="What the hook does.")
    script: ScriptRef | None = Field(default=None, description="A Python script package.")
    flow: ChildFlow | None = Field(default=None, description="A child Flow.")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> HookNode:
        _require_exactly_one(self, HOOK_KINDS)
        return self

    @property
    def kind(self) -> str:
        """Whether this hook is a script or a flow."""
        return "script" if self.script is not None else "flow"


def _require_exactly_one(node: Node | HookNode, kinds: tuple[str, ...]) -> None:
    present = [kind for kind in kinds if getattr(node, kind) is not None]
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        raise ValueError(
            f"node {node.name} must set exactly one of: {', '.join(kinds)} (found: {found})"
        )


def _hook_list(event: str) -> Any:
    return Field(
        default=None,
        max_length=MAX_HOOKS,
        description=f"Hooks run {event}.",
        json_schema_extra=unique_by_name(),
    )


class Hooks(ApiModel):
    """Lifecycle hooks; they run while the Run is SUCCEEDING or FAILING."""

    on_success: list[HookNode] | None = _hook_list("when every task succeeded (SUCCEEDING)")
    on_failure: list[HookNode] | None = _hook_list("when a task failed (FAILING)")
    on_finish: list[HookNode] | None = _hook_list("after success or failure, not after an abort")

    def by_event(self) -> dict[str, list[HookNode]]:
        """The hooks of each event that has any, keyed by the wire name of the event."""
        events = {
            "onSuccess": self.on_success,
            "onFailure": self.on_failure,
            "onFinish": self.on_finish,
        }
        return {event: hooks for event, hooks in events.items() if hooks}


_HOOKS_DISJOINT_FROM_NODES = cel(
    (
        "!has(self.hooks) || self.nodes.all(n, "
        + " && ".join(
            f"(!has(self.hooks.{e}) || !self.hooks.{e}.exists(h, h.name == n.name))"
            for e in ("onSuccess", "onFailure", "onFinish")
        )
        + ")",
        "hook names must differ from node names",
    )
)


class FlowSpec(ApiModel):
    """The pipeline definition: nodes, schedule, defaults, parameters and hooks."""

    model_config = ConfigDict(json_schema_extra=_HOOKS_DISJOINT_FROM_NODES)

    description: str | None = Field(default=None, description="What the Flow does.")
    schedule: Schedule | None = Field(
        default=None, description="Cron schedule; absent means the Flow runs only on demand."
    )
    project: ProjectSource | None = Field(
        default=None, description="Where models and scripts come from in the cluster."
    )
    parameters: list[Parameter] | None = Field(
        default=None,
        max_length=100,
        description="Typed parameters of a run.",
        json_schema_extra=unique_by_name(),
    )
    defaults: TaskSettings | None = Field(
        default=None, description="Settings every task inherits; a node may override them."
    )
    warehouse: Warehouse | None = Field(
        default=None,
        description="Where the dbt tasks build and scripts find their tables; absent means "
        "the operator's default (a DuckDB file of each task pod's own, unless configured).",
    )
    vars: dict[str, Any] | None = Field(
        default=None,
        max_length=MAX_VARS,
        description="dbt vars for every dbt task (`--vars`), over those of dbt_project.yml; "
        "string values may use templates, e.g. {as_of: '{{ params.as_of }}'}.",
    )
    max_parallel_tasks: StrictInt = Field(
        default=8,
        ge=1,
        le=MAX_PARALLEL_TASKS_MAX,
        description="Most tasks running at the same time.",
    )
    max_active_runs: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_ACTIVE_RUNS_MAX,
        description="Most runs of this Flow active at once; more wait in QUEUED, oldest first.",
    )
    fail_fast: StrictBool = Field(
        default=False,
        description="On the first terminal task failure, stop running tasks and start no more.",
    )
    timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=RUN_TIMEOUT_SECONDS_MAX,
        description="Whole-run deadline; when it passes the run is TIMED_OUT.",
    )
    successful_runs_history_limit: StrictInt = Field(
        default=10,
        ge=0,
        le=HISTORY_LIMIT_MAX,
        description="Succeeded runs kept; older ones are deleted.",
    )
    failed_runs_history_limit: StrictInt = Field(
        default=10,
        ge=0,
        le=HISTORY_LIMIT_MAX,
        description="Failed, aborted and timed-out runs kept.",
    )
    nodes: list[Node] = Field(
        min_length=1,
        max_length=MAX_NODES,
        description="The steps of the Flow.",
        json_schema_extra=unique_by_name(),
    )
    hooks: Hooks | None = Field(default=None, description="Lifecycle hooks.")

    @field_validator("vars")
    @classmethod
    def _vars_without_nul(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _values_without_nul(value)

    @model_validator(mode="after")
    def _names_unique(self) -> FlowSpec:
        seen: dict[str, str] = {}
        for where, name in self._named_entries():
            if name in seen:
                raise ValueError(f"duplicate name {name!r} in {seen[name]} and {where}")
            seen[name] = where
        params = [param.name for param in self.parameters or []]
        duplicates = sorted({name for name in params if params.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate parameter name(s): {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _mounts_name_volumes(self) -> FlowSpec:
        """Every volume mount of a task (its own or the defaults') names a volume it has."""
        defaults = self.defaults or TaskSettings()
        entries: list[tuple[str, TaskSettings]] = [
            (f"{where} ({step.name})", step) for where, step in self.steps()
        ]
        entries.append(("defaults", defaults))
        for where, settings in entries:
            volumes = {v.name for v in (defaults.volumes or []) + (settings.volumes or [])}
            for mount in (defaults.volume_mounts or []) + (settings.volume_mounts or []):
                if mount.name not in volumes:
                    raise ValueError(
                        f"{where}.volumeMounts: no volume named {mount.name!r} "
                        f"(the mount at {mount.mount_path})"
                    )
        return self

    def _named_entries(self) -> list[tuple[str, str]]:
        return [(where, step.name) for where, step in self.steps()]

    def steps(self) -> list[tuple[str, Node | HookNode]]:
        """Every node and hook with its place in the spec: `nodes[2]`, `hooks.onFailure[0]`."""
        steps: list[tuple[str, Node | HookNode]] = [
            (f"nodes[{i}]", node) for i, node in enumerate(self.nodes)
        ]
        if self.hooks:
            for event, hooks in self.hooks.by_event().items():
                steps += [(f"hooks.{event}[{i}]", hook) for i, hook in enumerate(hooks)]
        return steps


class RunSummary(StatusModel):
    """The name, phase and times of a run, as shown on its Flow."""

    name: str = Field(description="Run name.")
    phase: RunPhase | None = Field(default=None, description="Run phase.")
    start_time: datetime | None = Field(default=None, description="When the run started.")
    completion_time: datetime | None = Field(default=None, description="When the run ended.")


class FlowStatus(StatusModel):
    """What the operator observed of the Flow: validity, schedule and the latest runs."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        le=GENERATION_MAX,
        description="The .metadata.generation last processed.",
    )
    conditions: list[Condition] | None = Field(
        default=None, description="Valid (spec and project check out) and Ready."
    )
    schedule: str | None = Field(
        default=None, description="The cron expression in effect (basic mode translated)."
    )
    task_count: int | None = Field(
        default=None, ge=0, le=TASK_COUNT_MAX, description="Tasks in the Flow's plan."
    )
    last_schedule_time: datetime | None = Field(
        default=None, description="The last time a run was scheduled."
    )
    schedule_checkpoint: datetime | None = Field(
        default=None,
        description="The latest scheduled instant the operator has dealt with (run or "
        "skipped); instants up to it never run again.",
    )
    next_schedule_time: datetime | None = Field(
        default=None, description="The next time a run will be scheduled."
    )
    last_run: RunSummary | None = Field(default=None, description="The most recent run.")
    active_runs: list[str] | None = Field(default=None, description="Runs not yet finished.")


class Flow(ApiModel):
    """A kascade Flow object as stored in the API server or a manifest file."""

    api_version: str = Field(default="kascade.io/v1alpha1", description="kascade.io/v1alpha1")
    kind: str = Field(default="Flow", description="Flow")
    metadata: NamedObjectMeta = Field(
        description="Standard object metadata; the name is a DNS-1123 subdomain."
    )
    spec: FlowSpec = Field(description="The Flow definition.")
    status: FlowStatus | None = Field(default=None, description="Observed state.")

"""Deterministic bad input for the campaign: a good Flow mutated one field at a time, and
bad Run specs. Each case names the field path a refusal (or an Invalid condition) must
name, e.g. ``spec.nodes[0].retries``. No randomness but a seeded sample."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kascade.api import Flow
from tests.integration.test_operator import GROUP, VERSION

SEED = 20260722
FLOW_CASES = 300
PROJECT_CONFIG_MAP = "campaign-project"
RUN_FLOW = "target"
Path = tuple[str | int, ...]


class _Delete:
    """Marks a mutation that removes the key."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()

ONE_OF = {"transformation", "connection", "script", "flow", "cron", "every"}
"""Keys of which an object must set exactly one: a node's kind, a schedule's mode."""
ENUM_PATHS = {"trigger", "concurrencyPolicy", "type", "frequency"}
PATTERN_PATHS = {"name", "cron", "configMap", "serviceAccountName", "timezone", "at"}
# Values every integer field is tried with: the wrong types, then the out-of-range ones.
INT_WRONG_TYPES: tuple[Any, ...] = ("3", [3], {"value": 3}, 1.5, True)
INT_OUT_OF_RANGE: tuple[Any, ...] = (-1, -(2**31), 2**31, 2**53, 1e30)
LIST_WRONG_TYPES: tuple[Any, ...] = ("x", {"key": "x"}, 5)
TEMPLATES = ("{{ 1/0 }}", "{{ undefined.x }}", "{{", "{% for %}")


def base_flow(name: str = "base") -> dict[str, Any]:
    """A good Flow that sets most fields, so that there is something to break."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "description": "the campaign's good flow",
            "project": {"configMap": PROJECT_CONFIG_MAP},
            "schedule": {
                "cron": "0 3 1 1 *",
                "timezone": "UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 60,
                "suspend": True,
            },
            "parameters": [
                {"name": "day", "type": "string", "default": "{{ run.scheduledDate }}"},
                {"name": "n", "type": "integer", "default": 3},
            ],
            "defaults": {
                "retries": 1,
                "retryDelaySeconds": 5,
                "timeoutSeconds": 600,
                "env": [
                    {"name": "DAY", "value": "{{ params.day }}"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "resources": {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": "100m"}},
                "podMetadata": {"labels": {"team": "data"}, "annotations": {"note": "x"}},
                "securityContext": {"runAsNonRoot": True},
                "serviceAccountName": "runner",
            },
            "maxParallelTasks": 4,
            "maxActiveRuns": 2,
            "failFast": False,
            "timeoutSeconds": 3600,
            "successfulRunsHistoryLimit": 3,
            "failedRunsHistoryLimit": 3,
            "nodes": [
                {
                    "name": "load",
                    "script": {"name": "step", "args": ["{{ run.name }}", "--day"]},
                    "retries": 2,
                    "retryDelaySeconds": 0,
                    "timeoutSeconds": 60,
                    "trigger": "allSuccess",
                },
                {
                    "name": "models",
                    "transformation": {"include": ["a+"], "exclude": ["c"]},
                    "dependsOn": ["load"],
                },
                {
                    "name": "child",
                    "flow": {"name": "other", "parameters": {"x": "{{ params.n }}"}, "wait": True},
                    "dependsOn": ["models"],
                },
            ],
            "hooks": {"onFailure": [{"name": "alert", "script": {"name": "step"}}]},
        },
    }


def field_path(path: Path) -> str:
    """("spec", "nodes", 0, "retries") -> "spec.nodes[0].retries"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_NAMED_ITEM = re.compile(r"\] \([^)]*\)")


def names_field(message: str, field: str) -> bool:
    """Whether an error message names the field path; list items may carry their name
    (`spec.nodes[0] (load).retries`), and a quoted or bracketed path counts too."""
    plain = _NAMED_ITEM.sub("]", message)
    return field in plain


@dataclass(frozen=True)
class FlowCase:
    """One mutation of the good Flow."""

    kind: str
    path: Path
    value: Any
    field: str
    note: str = ""

    def manifest(self, name: str) -> dict[str, Any]:
        body = base_flow(name)
        _set(body, self.path, self.value)
        return body

    def describe(self) -> str:
        shown = repr(self.value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return (
            f"{self.kind} {field_path(self.path)} = {shown}{f' ({self.note})' if self.note else ''}"
        )


def _set(body: dict[str, Any], path: Path, value: Any) -> None:
    parent: Any = body
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if value is DELETE:
        del parent[last]
    else:
        parent[last] = copy.deepcopy(value)


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, (*path, index))


def _generic(path: Path, value: Any) -> Iterator[FlowCase]:
    """Mutations any field of its JSON type takes: wrong types, ranges, lengths, patterns,
    enums, unknown keys and missing keys."""
    where = field_path(path)
    last = path[-1]
    if isinstance(value, bool):
        bool_wrong_types: tuple[Any, ...] = ("true", 1, [True], {"value": True})
        for wrong in bool_wrong_types:
            yield FlowCase("wrong-type", path, wrong, where)
    elif isinstance(value, int):
        for wrong in INT_WRONG_TYPES:
            yield FlowCase("wrong-type", path, wrong, where)
        for out in INT_OUT_OF_RANGE:
            yield FlowCase("out-of-range", path, out, where)
    elif isinstance(value, str):
        wrong_types: tuple[Any, ...] = (5, [value], {"value": value}, False)
        for wrong in wrong_types:
            yield FlowCase("wrong-type", path, wrong, where)
        yield FlowCase("overlong", path, "a" * 300, where)
        yield FlowCase("empty", path, "", where)
        if last in ENUM_PATHS:
            for unknown in ("sometimes", value.upper() if value != value.upper() else "x"):
                yield FlowCase("unknown-enum", path, unknown, where)
        if last in PATTERN_PATHS or isinstance(last, int):
            for bad in ("Bad Name!", "-x-", "a\x00b"):
                yield FlowCase("bad-pattern", path, bad, where)
    elif isinstance(value, list):
        for wrong in LIST_WRONG_TYPES:
            yield FlowCase("wrong-type", path, wrong, where)
        yield FlowCase("empty-list", path, [], where)
        yield FlowCase("wrong-item-type", path, [5], f"{where}[0]")
    elif isinstance(value, dict):
        object_wrong_types: tuple[Any, ...] = ([value], "x", 5)
        for wrong in object_wrong_types:
            yield FlowCase("wrong-type", path, wrong, where)
        yield FlowCase("unknown-key", path, {**value, "bogus": 1}, f"{where}.bogus")
        for key in value:
            # without its one kind (or schedule mode) the object breaks a rule of its own
            whole = key in ONE_OF and (isinstance(last, int) or last == "schedule")
            yield FlowCase(
                "missing-key", (*path, key), DELETE, where if whole else f"{where}.{key}"
            )


def _targeted() -> Iterator[FlowCase]:
    """Cases the generic walk does not make: node kinds, core/v1 shapes, crons, time
    zones, templates, big and duplicate content."""
    node = ("spec", "nodes", 0)
    hook = ("spec", "hooks", "onFailure", 0)
    defaults = ("spec", "defaults")
    schedule = ("spec", "schedule")
    script = {"name": "step"}

    def case(
        kind: str, path: Path, value: Any, field: str | None = None, note: str = ""
    ) -> FlowCase:
        return FlowCase(kind, path, value, field or field_path(path), note)

    # exactly one kind per node and hook
    yield case("node-kinds", (*node, "flow"), {"name": "other"}, field_path(node), "both")
    yield case("node-kinds", (*node, "script"), DELETE, field_path(node), "none")
    yield case("node-kinds", (*node, "transformation"), {}, field_path(node), "both")
    yield case("node-kinds", (*hook, "flow"), {"name": "other"}, field_path(hook), "both")
    yield case("node-kinds", (*hook, "script"), DELETE, field_path(hook), "none")
    yield case(
        "node-kinds",
        ("spec", "nodes", 1, "connection"),
        {"connectors": ["c1"]},
        "spec.nodes[1]",
        "both",
    )
    # names and references
    yield case("duplicate", ("spec", "nodes", 1, "name"), "load", "spec.nodes[1]")
    yield case("duplicate", (*hook, "name"), "load", "spec", "hook named like a node")
    yield case("duplicate", ("spec", "parameters", 1, "name"), "day", "spec.parameters[1]")
    yield case(
        "bad-pattern",
        ("spec", "nodes", 1, "dependsOn"),
        ["Not A Node"],
        "spec.nodes[1].dependsOn[0]",
    )
    yield case("bad-pattern", (*node, "name"), "x" * 64, note="64 characters")
    yield case("bad-pattern", (*node, "script", "name"), "s" * 129, note="129 characters")
    yield case("bad-pattern", ("spec", "nodes", 2, "flow", "name"), "Other_Flow")
    # schedule
    for cron in ("* * *", "61 * * * *", "0 0 30 2 *", "x y z w v", "0 3 1 1 * *"):
        yield case("bad-cron", (*schedule, "cron"), cron)
    for zone in ("Mars/Olympus", "Europe", "../etc/passwd"):
        yield case("bad-timezone", (*schedule, "timezone"), zone)
    yield case(
        "schedule-modes", (*schedule, "every"), {"frequency": "day"}, field_path(schedule), "both"
    )
    yield case("schedule-modes", (*schedule, "cron"), DELETE, field_path(schedule), "none")
    # env, valueFrom, envFrom
    env = (*defaults, "env")
    yield case("env-shape", env, [{"value": "x"}], "spec.defaults.env[0].name", "no name")
    yield case("env-shape", env, [{"name": "A=B", "value": "x"}], "spec.defaults.env[0].name")
    yield case("env-shape", env, [{"name": "A B", "value": "x"}], "spec.defaults.env[0].name")
    yield case("env-shape", env, [{"name": "A", "value": 5}], "spec.defaults.env[0].value")
    yield case("env-shape", env, [{"name": "A", "value": "a\x00b"}], "spec.defaults.env[0].value")
    yield case(
        "env-shape", env, [{"name": "A", "valueFrom": "secret"}], "spec.defaults.env[0].valueFrom"
    )
    yield case(
        "env-shape", env, [{"name": "A", "valueFrom": ["secret"]}], "spec.defaults.env[0].valueFrom"
    )
    yield case(
        "env-shape", env, [{"name": "A", "value": "x", "bogus": 1}], "spec.defaults.env[0].bogus"
    )
    yield case("env-shape", env, {"A": "x"}, "spec.defaults.env")
    yield case(
        "env-shape", (*env, 1, "valueFrom"), {"secretKeyRef": "s"}, note="core/v1 shape inside"
    )
    yield case("env-shape", (*env, 1, "valueFrom"), {}, note="empty source")
    env_from = (*defaults, "envFrom")
    yield case(
        "envFrom-shape",
        env_from,
        [{"configMapRef": "settings"}],
        "spec.defaults.envFrom[0].configMapRef",
    )
    yield case(
        "envFrom-shape",
        env_from,
        [{"configMapRef": {}}],
        "spec.defaults.envFrom[0].configMapRef.name",
    )
    yield case(
        "envFrom-shape",
        env_from,
        [{"configMapRef": {"name": ""}}],
        "spec.defaults.envFrom[0].configMapRef.name",
    )
    yield case(
        "envFrom-shape",
        env_from,
        [{"secretRef": {"name": "s", "bogus": 1}}],
        "spec.defaults.envFrom[0].secretRef.bogus",
    )
    yield case("envFrom-shape", env_from, [{"prefix": 5}], "spec.defaults.envFrom[0].prefix")
    yield case("envFrom-shape", env_from, "settings", "spec.defaults.envFrom")
    # securityContext and resources
    security = (*defaults, "securityContext")
    for value in ("privileged", ["runAsNonRoot"], 5, True):
        yield case("securityContext-shape", security, value)
    yield case(
        "securityContext-shape", security, {"runAsUser": "root"}, note="core/v1 shape inside"
    )
    resources = (*defaults, "resources")
    yield case("resources-shape", resources, {"limits": "1"}, "spec.defaults.resources.limits")
    yield case(
        "resources-shape", resources, {"limits": {"cpu": []}}, "spec.defaults.resources.limits.cpu"
    )
    yield case(
        "resources-shape",
        resources,
        {"limits": {"cpu": {"a": 1}}},
        "spec.defaults.resources.limits.cpu",
    )
    yield case("resources-shape", resources, {"requests": [1]}, "spec.defaults.resources.requests")
    yield case("resources-shape", resources, {"bogus": {}}, "spec.defaults.resources.bogus")
    yield case(
        "resources-shape",
        resources,
        {"limits": {"cpu": True}},
        "spec.defaults.resources.limits.cpu",
    )
    yield case("resources-shape", resources, [], "spec.defaults.resources")
    # podMetadata
    pod = (*defaults, "podMetadata")
    yield case("podMetadata-shape", pod, {"labels": {"a": 5}}, "spec.defaults.podMetadata.labels.a")
    yield case("podMetadata-shape", pod, {"labels": ["a"]}, "spec.defaults.podMetadata.labels")
    yield case(
        "podMetadata-shape",
        pod,
        {"annotations": {"a": {"b": "c"}}},
        "spec.defaults.podMetadata.annotations.a",
    )
    # templates that do not render
    for template in TEMPLATES:
        yield case("template", (*node, "script", "args", 0), template)
        yield case("template", (*env, 0, "value"), template)
        yield case("template", ("spec", "nodes", 2, "flow", "parameters", "x"), template)
        yield case("template", ("spec", "parameters", 0, "default"), template)
    # NUL bytes and big content
    yield case("nul", (*node, "script", "args", 1), "a\x00b")
    yield case("nul", ("spec", "parameters", 1, "default"), "a\x00b")
    yield case("overlong", ("spec", "description"), "d" * 70_000, note="70 kB")
    yield case("overlong", (*node, "script", "args", 1), "a" * 70_000, note="70 kB")
    yield case(
        "too-many",
        ("spec", "nodes", 1, "dependsOn"),
        [f"n{i}" for i in range(501)],
        "spec.nodes[1].dependsOn",
    )
    yield case("out-of-range", ("spec", "nodes", 0, "retries"), 2**64, note="beyond int64")
    yield case("out-of-range", ("spec", "maxParallelTasks"), 0)
    yield case("out-of-range", (*schedule, "startingDeadlineSeconds"), 2**63 - 1)
    yield case("missing-key", ("spec", "nodes"), DELETE)
    yield case("unknown-key", ("spec", "nodes", 0, "sql"), {"select": 1})
    yield case("unknown-key", ("spec", "hooks", "onSucces"), [{"name": "h", "script": script}])


def flow_cases(count: int = FLOW_CASES) -> list[FlowCase]:
    """Every targeted case and a seeded sample of the generic ones, `count` in all; each
    case makes a distinct manifest."""
    base = base_flow()
    generic = [
        case for path, value in _leaves(base["spec"], ("spec",)) for case in _generic(path, value)
    ]
    targeted = list(_targeted())
    chosen: list[FlowCase] = []
    seen: set[str] = set()
    rng = random.Random(SEED)
    rng.shuffle(generic)
    for case in [*targeted, *generic]:
        key = repr((case.path, case.value))
        if key in seen or len(chosen) >= count:
            continue
        seen.add(key)
        chosen.append(case)
    return chosen


def oracle(body: dict[str, Any]) -> bool:
    """The project's own model: whether `kascade.api.Flow` accepts the manifest."""
    try:
        Flow.model_validate(body)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
    return True


@dataclass(frozen=True)
class RunCase:
    """One bad Run spec and the field a refusal must name."""

    label: str
    spec: dict[str, Any]
    field: str

    def manifest(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {"name": name},
            "spec": copy.deepcopy(self.spec),
        }


def target_flow() -> dict[str, Any]:
    """The Flow the bad Runs point at: typed parameters, one short script node."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Flow",
        "metadata": {"name": RUN_FLOW},
        "spec": {
            "project": {"configMap": PROJECT_CONFIG_MAP},
            # every bad run is kept for the check (the default keeps the last 10 failed)
            "failedRunsHistoryLimit": 1000,
            "successfulRunsHistoryLimit": 1000,
            "parameters": [
                {"name": "day", "type": "string", "default": "2026-01-01"},
                {"name": "n", "type": "integer", "default": 3},
                {"name": "on", "type": "boolean", "default": True},
            ],
            "nodes": [{"name": "only", "script": {"name": "step", "args": ["{{ params.n }}"]}}],
        },
    }


def run_cases() -> list[RunCase]:
    """About fifty bad Run specs."""
    ref = {"flowRef": {"name": RUN_FLOW}}

    def with_(label: str, field: str, **spec: Any) -> RunCase:
        return RunCase(label, {**ref, **spec}, field)

    cases = [
        with_("scheduledTime list", "spec.scheduledTime", scheduledTime=[]),
        with_("scheduledTime number", "spec.scheduledTime", scheduledTime=5),
        with_("scheduledTime huge", "spec.scheduledTime", scheduledTime=2**53),
        with_("scheduledTime words", "spec.scheduledTime", scheduledTime="not-a-date"),
        with_("scheduledTime month 13", "spec.scheduledTime", scheduledTime="2026-13-45T00:00:00Z"),
        with_("scheduledTime object", "spec.scheduledTime", scheduledTime={"at": "now"}),
        with_("scheduledTime empty", "spec.scheduledTime", scheduledTime=""),
        with_("parameters list", "spec.parameters", parameters=[1, 2]),
        with_("parameters string", "spec.parameters", parameters="n=3"),
        with_("parameters number", "spec.parameters", parameters=5),
        with_("parameter int as words", "spec.parameters", parameters={"n": "three"}),
        with_("parameter int as float", "spec.parameters", parameters={"n": 1.5}),
        with_("parameter int 1e30", "spec.parameters", parameters={"n": 1e30}),
        with_("parameter int 2**64", "spec.parameters", parameters={"n": 2**64}),
        with_("parameter int as list", "spec.parameters", parameters={"n": [3]}),
        with_("parameter int as object", "spec.parameters", parameters={"n": {"v": 3}}),
        with_("parameter bool as words", "spec.parameters", parameters={"on": "maybe"}),
        with_("parameter bool as number", "spec.parameters", parameters={"on": 2}),
        with_("parameter string as object", "spec.parameters", parameters={"day": {"a": 1}}),
        with_("parameter string as list", "spec.parameters", parameters={"day": ["x"]}),
        with_("parameter unknown", "spec.parameters", parameters={"nope": 1}),
        with_("parameter NUL", "spec.parameters", parameters={"day": "a\x00b"}),
        RunCase("unknown flow", {"flowRef": {"name": "ghost-flow"}}, "spec.flowRef.name"),
        RunCase("flow name pattern", {"flowRef": {"name": "Bad Name"}}, "spec.flowRef.name"),
        RunCase("flow name empty", {"flowRef": {"name": ""}}, "spec.flowRef.name"),
        RunCase("flow name number", {"flowRef": {"name": 5}}, "spec.flowRef.name"),
        RunCase("flow name overlong", {"flowRef": {"name": "f" * 300}}, "spec.flowRef.name"),
        RunCase("flowRef string", {"flowRef": RUN_FLOW}, "spec.flowRef"),
        RunCase("flowRef empty", {"flowRef": {}}, "spec.flowRef.name"),
        RunCase("flowRef missing", {}, "spec.flowRef"),
        RunCase(
            "flowRef unknown key",
            {"flowRef": {"name": RUN_FLOW, "namespace": "x"}},
            "spec.flowRef.namespace",
        ),
        with_("unknown spec key", "spec.bogus", bogus=1),
        with_("type unknown", "spec.type", type="BOGUS"),
        with_("type lowercase", "spec.type", type="manual"),
        with_("type number", "spec.type", type=5),
        with_(
            "subflow without parent run",
            "spec.parent.run",
            type="SUBFLOW",
            parent={"run": "ghost-run", "task": "t"},
        ),
        with_(
            "subflow parent run pattern",
            "spec.parent.run",
            type="SUBFLOW",
            parent={"run": "Bad Run", "task": "t"},
        ),
        with_(
            "subflow parent task empty",
            "spec.parent.task",
            type="SUBFLOW",
            parent={"run": "ghost-run", "task": ""},
        ),
        with_("subflow without parent", "spec", type="SUBFLOW"),
        with_("rerun all of a missing run", "spec.rerunOf", type="RERUN_ALL", rerunOf="ghost-run"),
        with_(
            "rerun failed of a missing run",
            "spec.rerunOf",
            type="RERUN_FAILED",
            rerunOf="ghost-run",
        ),
        with_(
            "rerun task of a missing run",
            "spec.rerunOf",
            type="RERUN_TASK",
            rerunOf="ghost-run",
            rerunTask="only",
        ),
        with_("rerunOf pattern", "spec.rerunOf", type="RERUN_ALL", rerunOf="Ghost Run"),
        with_("rerunOf on a manual run", "spec", rerunOf="ghost-run"),
        with_(
            "rerunTask empty",
            "spec.rerunTask",
            type="RERUN_TASK",
            rerunOf="ghost-run",
            rerunTask="",
        ),
        with_("downstream without rerun", "spec", downstream=True),
        with_("downstream words", "spec.downstream", downstream="yes"),
        with_("abort words", "spec.abort", abort="yes"),
        with_("abort number", "spec.abort", abort=1),
    ]
    return cases

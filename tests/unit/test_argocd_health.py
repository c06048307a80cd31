"""The Argo CD health checks of docs/argocd.md, run the way Argo CD runs them.

The Lua is taken from the argocd-cm ConfigMap shown in the doc (which must hold
docs/argocd/health-*.lua byte for byte), so what a user copies is what is tested. Argo CD
runs a custom health check in gopher-lua (Lua 5.1) with the base and table libraries only
and the resource in the global `obj`; the script returns a table with `status` and
`message`. Every check here runs on Lua 5.1 and 5.4 in a sandbox that offers no more.
The objects come from the operator's own code (the engine's decisions, the Run status
writer, the Flow status writer, the pydantic models, the example flow and project), so a
renamed status field or condition breaks these tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import lupa.lua51
import lupa.lua54
import pytest
import yaml

from kascade.api import Flow, FlowStatus, Run, RunPhase, RunStatus
from kascade.contract.archive import ARCHIVE_KEY, pack
from kascade.engine.naming import scheduled_run_name
from kascade.engine.runstate import Action, Limits, RunState, SetRunPhase
from kascade.engine.schedules import cron_expression, tick
from kascade.host.records import RunRecord, sync_record, task_record
from kascade.operator.context import facts_of_run
from kascade.operator.facts import rfc3339
from kascade.operator.flows import FlowStatusWriter
from kascade.operator.kube import Kube
from kascade.operator.projects import ProjectCache
from kascade.operator.status import invalid_condition, run_status
from tests.unit.decisions import T0, Sim, plan_of, task

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "argocd.md"
LUA_FILES = {
    "Flow": ROOT / "docs/argocd/health-flow.lua",
    "Run": ROOT / "docs/argocd/health-run.lua",
}
MARKER = "<!-- tested: argocd-cm -->"
SHOP = ROOT / "examples" / "shop"
NAMESPACE = "shop"
FLOW = "shop-daily"
HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What Argo CD opens for a custom health check (gopher-lua's base and table libraries),
# less the loaders: no string, math, io, os, require, load, dofile or loadfile.
ARGOCD_GLOBALS = frozenset(
    {
        "_G",
        "_VERSION",
        "assert",
        "error",
        "getmetatable",
        "ipairs",
        "next",
        "pairs",
        "pcall",
        "rawequal",
        "rawget",
        "rawset",
        "select",
        "setmetatable",
        "table",
        "tonumber",
        "tostring",
        "type",
        "unpack",
        "xpcall",
    }
)
RUNTIMES = {"lua5.1": lupa.lua51, "lua5.4": lupa.lua54}


# --- the scripts, from the doc ------------------------------------------------------------


def argocd_cm() -> dict[str, Any]:
    """The argocd-cm ConfigMap of the doc: the YAML block right after the marker."""
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its marker {MARKER}"
    block = re.search(r"```yaml\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert block is not None, f"no YAML block after {MARKER} in {DOC}"
    return cast(dict[str, Any], yaml.safe_load(block.group(1)))


def script(kind: str) -> str:
    return cast(str, argocd_cm()["data"][f"resource.customizations.health.kascade.io_{kind}"])


# --- how Argo CD runs them ----------------------------------------------------------------


def sandbox(runtime: ModuleType) -> Any:
    """A Lua state with what Argo CD gives a custom health check and nothing more."""
    lua = runtime.LuaRuntime(register_eval=False, register_builtins=False)
    # Without gopher-lua's string library strings have no methods: ("x"):upper() fails.
    lua.execute('getmetatable("").__index = nil')
    for name in [name for name in lua.globals() if name not in ARGOCD_GLOBALS]:
        lua.globals()[name] = None
    return lua


def to_lua(lua: Any, value: Any) -> Any:
    """A JSON value as Argo CD hands it to Lua: objects and arrays become tables (arrays
    keyed 1..n), null fields are absent."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(lua, item)
        return table
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON value: {value!r}")


def health_of(runtime: ModuleType, source: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run a health check on an object; what Argo CD accepts of its answer."""
    lua = sandbox(runtime)
    lua.globals()["obj"] = to_lua(lua, obj)
    answer = lua.execute(source)
    assert runtime.lua_type(answer) == "table", f"the script returned {answer!r}, not a table"
    result = {str(key): value for key, value in answer.items()}
    assert set(result) <= {"status", "message"}, result
    assert result.get("status") in HEALTH, result
    assert isinstance(result.get("message", ""), str), result
    return cast(dict[str, str], result)


@pytest.fixture(params=sorted(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> ModuleType:
    return RUNTIMES[request.param]


def test_the_doc_shows_the_lua_files_verbatim():
    for kind, path in LUA_FILES.items():
        assert script(kind) == path.read_text(), f"docs/argocd.md and {path.name} differ"


@pytest.mark.parametrize(
    "source",
    [
        'return {status = string.format("%s", "Healthy")}',
        "return {status = math.floor(1) and 'Healthy'}",
        "return {status = ('healthy'):upper()}",
        "os.time() return {status = 'Healthy'}",
        "io.write('x') return {status = 'Healthy'}",
        "require('os') return {status = 'Healthy'}",
        "dofile('/etc/hostname') return {status = 'Healthy'}",
        "loadfile('/etc/hostname') return {status = 'Healthy'}",
    ],
)
def test_the_sandbox_refuses_what_argocd_does_not_offer(runtime, source):
    with pytest.raises(runtime.LuaError):
        health_of(runtime, source, {"metadata": {"name": "x"}})


def test_arrays_arrive_keyed_from_one(runtime):
    source = "return {status = 'Healthy', message = obj.items[1] .. obj.items[#obj.items]}"
    assert health_of(runtime, source, {"items": ["a", "b", "c"]})["message"] == "ac"


# --- Runs: the engine decides, the operator writes the status -----------------------------

PLAN = plan_of(
    task("load"),
    task("stage", "load"),
    task("report"),
    task("announce", hook="onSuccess"),
    task("alert", hook="onFailure"),
)
SCHEDULED_RUN = scheduled_run_name(FLOW, int(T0.timestamp()))


@dataclass
class Recorded(Sim):
    """A run driven by the decision function; keeps its record as the host loop does."""

    record: RunRecord | None = None
    seen: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.record = RunRecord(
            id=SCHEDULED_RUN,
            flow=FLOW,
            created_at=self.now,
            tasks=[task_record(t, {}) for t in (*self.plan.tasks, *self.plan.hooks)],
        )

    def step(self) -> list[Action]:
        assert self.record is not None
        actions = self.decide()
        assert self.state is not None
        changes = [a for a in actions if isinstance(a, SetRunPhase)]
        sync_record(self.record, self.state, self.now, changes, self.seen, set())
        return actions


def run_object(
    sim: Recorded | None,
    name: str = SCHEDULED_RUN,
    created: datetime = T0,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Run as Argo CD reads it from the API server (status as the worker writes it)."""
    body: dict[str, Any] = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Run",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "generation": 1,
            "creationTimestamp": rfc3339(created),
        },
        "spec": {"flowRef": {"name": FLOW}, "type": "ORCHESTRATED"},
    }
    if sim is not None:
        assert sim.state is not None
        assert sim.record is not None
        written = run_status(sim.record, None, conditions, sim.now)
        body["status"] = RunStatus.model_validate(written)
    return Run.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)


def started() -> Recorded:
    sim = Recorded(PLAN)
    sim.step()
    sim.advance(30)
    sim.finish("load")
    sim.step()
    return sim


def runs(name: str = SCHEDULED_RUN, created: datetime = T0) -> Iterator[tuple[str, Any]]:
    """A Run in every phase, each reached the way the operator gets there."""

    def snapshot(sim: Recorded | None) -> tuple[str, dict[str, Any]]:
        obj = run_object(sim, name, created)
        return (obj.get("status") or {}).get("phase", "no status"), obj

    yield snapshot(None)
    later = RunState.initial(PLAN, scheduled_time=T0 + timedelta(hours=1))
    scheduled = Recorded(PLAN, state=later)
    scheduled.step()
    yield snapshot(scheduled)
    queued = Recorded(PLAN)
    queued.admit(False)
    queued.step()
    yield snapshot(queued)
    running = started()
    yield snapshot(running)
    running.advance(60)
    running.finish("stage")
    running.finish("report")
    running.step()
    yield snapshot(running)
    running.advance(5)
    running.finish("announce")
    running.step()
    yield snapshot(running)
    failing = Recorded(PLAN)
    failing.step()
    failing.advance(30)
    failing.finish("load", exit_code=1)
    failing.step()
    yield snapshot(failing)
    failing.advance(30)
    failing.finish("report")
    failing.step()
    failing.finish("alert")
    failing.step()
    yield snapshot(failing)
    aborting = started()
    aborting.abort()
    kills = aborting.step()
    yield snapshot(aborting)
    aborting.advance(2)
    aborting.kill(kills)
    aborting.step()
    yield snapshot(aborting)
    late = Recorded(PLAN, limits=Limits(timeout_seconds=60))
    late.step()
    late.advance(120)
    late.step()
    yield snapshot(late)


RUN_HEALTH = {
    "no status": ("Progressing", "Waiting for the operator to pick up the run"),
    "SCHEDULED": ("Progressing", "SCHEDULED: waits until 2026-11-01 03:00:00+00:00"),
    "QUEUED": ("Progressing", "QUEUED: waiting for admission"),
    "RUNNING": ("Progressing", "RUNNING (1/3 tasks done): tasks are started in dependency order"),
    "SUCCEEDING": ("Progressing", "SUCCEEDING (3/3 tasks done): every task finished; hooks run"),
    "SUCCEEDED": ("Healthy", "SUCCEEDED (3/3 tasks done, took 1m35s): every task succeeded"),
    "FAILING": ("Progressing", "FAILING (2/3 tasks done, 1 failed): task `load` failed"),
    "FAILED": ("Degraded", "FAILED (3/3 tasks done, 1 failed, took 1m00s): task `load` failed"),
    "ABORTING": ("Progressing", "ABORTING (1/3 tasks done): running tasks are being stopped"),
    "ABORTED": ("Degraded", "ABORTED (3/3 tasks done, took 32s): every task has stopped"),
    "TIMED_OUT": (
        "Degraded",
        "TIMED_OUT (3/3 tasks done, 2 failed, took 2m00s): the run deadline of 60s passed",
    ),
}


def test_the_runs_cover_every_phase():
    phases = [phase for phase, _ in runs()]
    assert phases == ["no status", *(phase.value for phase in RunPhase)]
    assert list(RUN_HEALTH) == phases


@pytest.mark.parametrize(("phase", "obj"), list(runs()), ids=[phase for phase, _ in runs()])
def test_run_health_follows_the_phase(runtime, phase, obj):
    status, message = RUN_HEALTH[phase]
    assert health_of(runtime, script("Run"), obj) == {"status": status, "message": message}


def test_a_run_that_cannot_start_is_degraded_with_the_reason(runtime):
    problem = "parameter `as_of`: expected an integer, got 'yesterday'"
    sim = Recorded(plan_of(), state=RunState(phase=None, tasks={}, start_error=problem))
    sim.step()
    obj = run_object(sim, conditions=[invalid_condition(problem, sim.now)])
    assert obj["status"]["conditions"][0]["reason"] == "InvalidRun"
    health = health_of(runtime, script("Run"), obj)
    assert health == {"status": "Degraded", "message": f"FAILED: {problem}"}


def test_a_run_aborted_before_it_started_is_degraded(runtime):
    sim = Recorded(PLAN, state=RunState.initial(PLAN, scheduled_time=T0 + timedelta(hours=1)))
    sim.step()
    sim.abort()
    sim.step()
    health = health_of(runtime, script("Run"), run_object(sim))
    expected = "ABORTED (3/3 tasks done): aborted before it started"
    assert health == {"status": "Degraded", "message": expected}


def test_a_phase_the_check_does_not_know_is_unknown(runtime):
    obj = run_object(started())
    obj["status"]["phase"] = "PAUSED"
    health = health_of(runtime, script("Run"), obj)
    assert health["status"] == "Unknown"
    assert "PAUSED" in health["message"]


# --- Flows: the example flow, with the status the Flow status writer gives it -------------


class FakeKube:
    """The API calls of the Flow status writer, answered from memory."""

    def __init__(self, flow: dict[str, Any], config_maps: dict[str, bytes]) -> None:
        self.flow = flow
        self.config_maps = config_maps
        self.patches: list[dict[str, Any]] = []

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.flow if (plural, name) == ("flows", self.flow["metadata"]["name"]) else None

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        self.patches.append(status)
        return True

    async def config_map_binary(self, namespace: str, name: str, key: str) -> bytes | None:
        assert key == ARCHIVE_KEY
        return self.config_maps.get(name)

    async def event(
        self, involved: dict[str, Any], kind: str, reason: str, message: str, warning: bool = False
    ) -> None:
        return None

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        raise AssertionError(f"no run is beyond the history limits, yet {name} was deleted")


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies the operator's status patches."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def example_flow() -> dict[str, Any]:
    """examples/shop/flow.yaml as the API server stores it."""
    body = cast(dict[str, Any], yaml.safe_load((SHOP / "flow.yaml").read_text()))
    assert body["metadata"]["name"] == FLOW
    created = rfc3339(T0 - timedelta(days=30))
    body["metadata"].update(namespace=NAMESPACE, generation=1, creationTimestamp=created)
    return body


def with_status(
    body: dict[str, Any],
    state_dir: Path,
    run_objects: Sequence[dict[str, Any]] = (),
    project: bool = True,
    validated: bool = True,
) -> dict[str, Any]:
    """The Flow with the status the scheduler and the Flow status writer give it."""
    kube = FakeKube(body, {"shop-project": pack(SHOP)} if project else {})
    facts = [facts_of_run(run) for run in run_objects]
    api = cast(Kube, kube)

    async def write() -> None:
        writer = FlowStatusWriter(api, ProjectCache(api, state_dir), lambda _: facts)
        schedule = Flow.model_validate({**body, "status": None}).spec.schedule
        if schedule is not None:
            decision = tick(schedule, None, T0 - timedelta(days=30), T0, [])
            fields = {
                "schedule": cron_expression(schedule),
                "nextScheduleTime": rfc3339(decision.next_time),
                "scheduleCheckpoint": rfc3339(decision.checkpoint),
            }
            await writer.write_schedule(NAMESPACE, FLOW, fields)
        if validated:
            writer.touch(NAMESPACE, FLOW)
            await writer.pending[(NAMESPACE, FLOW)]

    asyncio.run(write())
    status: dict[str, Any] = {}
    for patch in kube.patches:
        status = merge_patch(status, patch)
    flow = Flow.model_validate({**body, "status": FlowStatus.model_validate(status)})
    return flow.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.fixture(autouse=True)
def no_debounce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kascade.operator.flows.DEBOUNCE_SECONDS", 0)


def finished(phase: str, day: int) -> dict[str, Any]:
    """A finished scheduled run of the example flow, `day` days after T0."""
    at = T0 + timedelta(days=day)
    name = scheduled_run_name(FLOW, int(at.timestamp()))
    return dict(runs(name, at))[phase]


def test_a_flow_without_status_waits_for_the_operator(runtime):
    obj = Flow.model_validate(example_flow()).model_dump(by_alias=True, exclude_none=True)
    health = health_of(runtime, script("Flow"), obj)
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the operator to validate the Flow",
    }


def test_a_flow_with_only_its_schedule_written_waits_for_validation(runtime, tmp_path):
    obj = with_status(example_flow(), tmp_path, validated=False)
    assert obj["status"]["nextScheduleTime"]
    assert "conditions" not in obj["status"]
    assert health_of(runtime, script("Flow"), obj)["status"] == "Progressing"


def test_a_valid_flow_is_healthy_and_says_what_comes_next(runtime, tmp_path):
    last = finished("SUCCEEDED", 1)
    obj = with_status(example_flow(), tmp_path, [last])
    status = obj["status"]
    assert status["taskCount"] > 0
    expected = (
        f"{status['taskCount']} tasks; next run {status['nextScheduleTime']}; "
        f"last run {last['metadata']['name']} SUCCEEDED"
    )
    assert health_of(runtime, script("Flow"), obj) == {"status": "Healthy", "message": expected}


def test_a_failed_last_run_leaves_the_flow_healthy(runtime, tmp_path):
    failed = finished("FAILED", 2)
    obj = with_status(example_flow(), tmp_path, [finished("SUCCEEDED", 1), failed])
    health = health_of(runtime, script("Flow"), obj)
    assert health["status"] == "Healthy"
    assert health["message"].endswith(f"last run {failed['metadata']['name']} FAILED")


def test_active_runs_are_counted(runtime, tmp_path):
    running = dict(runs())["RUNNING"]
    obj = with_status(example_flow(), tmp_path, [running])
    health = health_of(runtime, script("Flow"), obj)
    assert health["status"] == "Healthy"
    assert f"1 active run; last run {running['metadata']['name']} RUNNING" in health["message"]


def test_a_flow_that_does_not_plan_is_degraded_with_the_problem(runtime, tmp_path):
    body = example_flow()
    body["spec"]["nodes"].append(
        {"name": "export", "script": {"name": "notify"}, "dependsOn": ["publish"]}
    )
    obj = with_status(body, tmp_path)
    (valid,) = obj["status"]["conditions"]
    assert (valid["type"], valid["status"], valid["reason"]) == ("Valid", "False", "Invalid")
    health = health_of(runtime, script("Flow"), obj)
    assert health == {"status": "Degraded", "message": valid["message"]}
    assert "publish" in health["message"]


def test_a_flow_whose_project_is_missing_is_degraded(runtime, tmp_path):
    obj = with_status(example_flow(), tmp_path, project=False)
    health = health_of(runtime, script("Flow"), obj)
    assert health["status"] == "Degraded"
    assert "project ConfigMap `shop-project`" in health["message"]
    assert "not found" in health["message"]


def test_a_suspended_flow_is_healthy_and_says_it_is_suspended(runtime, tmp_path):
    body = example_flow()
    body["spec"]["schedule"]["suspend"] = True
    last = finished("SUCCEEDED", 1)
    obj = with_status(body, tmp_path, [last])
    assert obj["status"]["nextScheduleTime"]  # written while suspended, but no run comes
    health = health_of(runtime, script("Flow"), obj)
    tasks = obj["status"]["taskCount"]
    assert health == {
        "status": "Healthy",
        "message": f"Schedule suspended; {tasks} tasks; "
        f"last run {last['metadata']['name']} SUCCEEDED",
    }


def test_an_invalid_suspended_flow_is_degraded(runtime, tmp_path):
    body = example_flow()
    body["spec"]["schedule"]["suspend"] = True
    obj = with_status(body, tmp_path, project=False)
    assert health_of(runtime, script("Flow"), obj)["status"] == "Degraded"


def test_a_flow_without_schedule_runs_on_demand(runtime, tmp_path):
    body = example_flow()
    del body["spec"]["schedule"]
    obj = with_status(body, tmp_path)
    health = health_of(runtime, script("Flow"), obj)
    tasks = obj["status"]["taskCount"]
    assert health == {"status": "Healthy", "message": f"{tasks} tasks; runs on demand"}


def test_an_edited_flow_waits_until_the_operator_checked_the_edit(runtime, tmp_path):
    body = example_flow()
    obj = with_status(body, tmp_path, project=False)
    obj["metadata"]["generation"] = 2  # edited after the operator wrote the Degraded status
    health = health_of(runtime, script("Flow"), obj)
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the operator to validate generation 2",
    }

"""B. Bad input that only shows at run time: a template that raises, a Flow that starts
itself, and two Flows that start each other. Each run ends FAILED within 60 s with a
message that says why; recursion stays bounded (at most 10 Runs, never a growing count).

The three runs start together (one namespace, one operator) so the tier waits at most
60 s for all of them; a watcher stops the operator if Runs multiply past the bound."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.campaign.figures import FIGURES
from tests.campaign.generators import PROJECT_CONFIG_MAP
from tests.campaign.support import (
    Api,
    brief,
    phase,
    push_project,
    run_manifest,
    running_operator,
    scratch_namespace,
)
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import GROUP, TERMINAL, VERSION

END_SECONDS = 60
MAX_RUNS = 10
STOP_AT = 25
"""Runs at which the watcher stops the operator: growth is shown, the cluster spared."""
RECURSION_WORDS = re.compile(r"recursi|cycle", re.IGNORECASE)


def flow(name: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"project": {"configMap": PROJECT_CONFIG_MAP}, "nodes": nodes},
    }


FLOWS = [
    flow("divide", [{"name": "calc", "script": {"name": "step", "args": ["{{ 1/0 }}"]}}]),
    flow("selfie", [{"name": "again", "flow": {"name": "selfie"}}]),
    flow("ping", [{"name": "call", "flow": {"name": "pong"}}]),
    flow("pong", [{"name": "call", "flow": {"name": "ping"}}]),
]
RUNS = {"divide": "divide-1", "selfie": "selfie-1", "ping": "ping-1"}
FAMILY = {"selfie": {"selfie"}, "ping": {"ping", "pong"}}


@dataclass
class Scene:
    api: Api
    namespace: str
    operator: OperatorProcess
    started: float
    max_runs: dict[str, int] = field(default_factory=dict)
    stopped_for_growth: str | None = None

    def remaining(self) -> float:
        return max(0.0, self.started + END_SECONDS - time.monotonic())

    def runs(self) -> list[dict[str, Any]]:
        return self.api.items(self.namespace, "runs")

    def run(self, name: str) -> dict[str, Any] | None:
        return self.api.get(self.namespace, "runs", name)

    def wait_end(self, name: str) -> dict[str, Any] | None:
        body = self.run(name)
        while phase(body) not in TERMINAL and self.remaining() > 0:
            time.sleep(0.3)
            body = self.run(name)
        return body

    def tasks(self) -> list[dict[str, Any]]:
        return self.api.items(self.namespace, "tasks")


def _count_runs(scene: Scene, stop: threading.Event) -> None:
    """Track the most Runs of each recursive family; stop the operator past STOP_AT."""
    while not stop.is_set():
        try:
            runs = scene.runs()
        except Exception:  # a hiccup: count on the next round
            stop.wait(0.5)
            continue
        for family, flows in FAMILY.items():
            count = sum(1 for r in runs if r["spec"]["flowRef"]["name"] in flows)
            scene.max_runs[family] = max(scene.max_runs.get(family, 0), count)
            if count >= STOP_AT and scene.stopped_for_growth is None:
                scene.stopped_for_growth = family
                scene.operator.stop()
        stop.wait(0.4)


@pytest.fixture(scope="module")
def scene(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    workdir = tmp_path_factory.mktemp("runtime")
    with scratch_namespace(cluster, "runtime") as namespace:
        push_project(cluster, namespace, workdir, PROJECT_CONFIG_MAP)
        with running_operator(cluster, namespace, workdir / "operator") as operator:
            api = Api(cluster)
            for body in FLOWS:
                assert api.create(namespace, "flows", body) is None
            scene = Scene(api, namespace, operator, time.monotonic())
            for flow_name, run in RUNS.items():
                assert api.create(namespace, "runs", run_manifest(run, flow_name)) is None
            stop = threading.Event()
            counter = threading.Thread(target=_count_runs, args=(scene, stop), daemon=True)
            counter.start()
            try:
                yield scene
            finally:
                stop.set()
                counter.join(timeout=10)
                for family, most in scene.max_runs.items():
                    FIGURES.maximum("max_recursive_runs", most)
                    FIGURES.note(f"recursion {family}: at most {most} Runs seen")


def failed_tasks(scene: Scene, flows: set[str]) -> list[dict[str, Any]]:
    runs = {r["metadata"]["name"]: r["spec"]["flowRef"]["name"] for r in scene.runs()}
    return [
        t
        for t in scene.tasks()
        if runs.get(t["spec"]["runRef"]["name"]) in flows
        and (t.get("status") or {}).get("phase") == "FAILED"
    ]


def _ended(body: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if phase(body) not in TERMINAL:
        FIGURES.add("hangs")
    assert phase(body) in TERMINAL, f"run {name} did not end within {END_SECONDS}s: {brief(body)}"
    assert body is not None
    return body


def test_a_template_that_raises_fails_the_task_and_the_run(scene: Scene) -> None:
    flow_body = scene.api.get(scene.namespace, "flows", "divide")
    assert flow_body is not None
    conditions = (flow_body.get("status") or {}).get("conditions") or []
    valid = next((c for c in conditions if c.get("type") == "Valid"), None)
    if valid is not None and valid.get("status") == "False":
        assert "spec.nodes[0]" in str(valid.get("message")), valid
    body = _ended(scene.wait_end(RUNS["divide"]), RUNS["divide"])
    assert body["status"]["phase"] == "FAILED", brief(body)
    assert body["status"].get("reason"), brief(body)
    FIGURES.add("runs_ended_with_reasons")
    tasks = [t for t in scene.tasks() if t["spec"]["runRef"]["name"] == RUNS["divide"]]
    for task in tasks:
        status = task.get("status") or {}
        assert status.get("phase") == "FAILED", status
        assert "1/0" in str(status.get("message")) or "division" in str(status.get("message")), (
            status
        )


@pytest.mark.parametrize(("family", "names"), [("selfie", ["selfie"]), ("ping", ["ping", "pong"])])
def test_recursive_flows_fail_naming_the_chain_with_bounded_runs(
    scene: Scene, family: str, names: list[str]
) -> None:
    body = scene.wait_end(RUNS[family])
    most = scene.max_runs.get(family, 0)
    assert scene.stopped_for_growth != family, (
        f"Runs of {names} kept multiplying: {most} Runs when the operator was stopped; "
        f"the run: {brief(body)}"
    )
    body = _ended(body, RUNS[family])
    assert body["status"]["phase"] == "FAILED", brief(body)
    FIGURES.add("runs_ended_with_reasons")
    assert most <= MAX_RUNS, f"{most} Runs of {names} existed at once (bound {MAX_RUNS})"
    messages = [
        str((t.get("status") or {}).get("message")) for t in failed_tasks(scene, set(names))
    ]
    naming = [m for m in messages if all(n in m for n in names) and RECURSION_WORDS.search(m)]
    FIGURES.note(f"recursion {names}: failed tasks say {(naming or messages)[:2]}")
    assert naming, (
        f"no failed task names the chain {names} with 'recursion' or 'cycle'; "
        f"failed tasks say: {messages[:5]}"
    )


@pytest.mark.parametrize(("family", "names"), [("selfie", ["selfie"]), ("ping", ["ping", "pong"])])
def test_a_static_flow_cycle_carries_a_warning(scene: Scene, family: str, names: list[str]) -> None:
    """Loose: the Flow's conditions or an Event (reason containing Cycle) name the flows."""
    found: list[str] = []
    for name in names:
        body = scene.api.get(scene.namespace, "flows", name) or {}
        for condition in (body.get("status") or {}).get("conditions") or []:
            found.append(
                f"condition {condition.get('type')}={condition.get('status')}: "
                f"{condition.get('message')}"
            )
        for event in scene.api.events_of(scene.namespace, name):
            found.append(f"event {event.reason}: {event.message}")
    warned = [
        text
        for text in found
        if all(n in text for n in names) and (RECURSION_WORDS.search(text) or "Cycle" in text)
    ]
    FIGURES.note(f"static cycle {names}: {found[:4]}")
    assert warned, f"no warning about the cycle of {names}; the Flows show: {found}"

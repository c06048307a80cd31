"""D. The kube-apiserver restarted once while a run of 20 tasks is active: the run
finishes with correct counts and no duplicate Jobs, and the operator is working again
within 30 s of the API server being back. It restarts a shared component, so the
campaign runs it last (marker restarts_apiserver)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.campaign.apiserver import heal, restart_apiserver
from tests.campaign.figures import FIGURES
from tests.campaign.support import Api, RunAudit, RunWatcher, brief, layered_nodes, run_manifest
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import FAIL_LABEL, RUN_FOR, TERMINAL, finish, setup_flow
from tests.integration.waiting import wait_for

TASKS = 20
RECOVERY_SECONDS = 30
UNREACHABLE = "unreachable"


@pytest.mark.restarts_apiserver
def test_a_run_survives_an_apiserver_restart_and_the_operator_recovers(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        layered_nodes(TASKS, 2, set(), FAIL_LABEL),
        name="steady",
        maxParallelTasks=5,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "3s"}}},
    )
    api = Api(cluster)
    run = "steady-1"
    watcher = RunWatcher(api, namespace, run, plan_size=TASKS).start()
    try:
        assert api.create(namespace, "runs", run_manifest(run, "steady")) is None
        wait_for(
            lambda: len(api.run_jobs(namespace, run)),
            lambda jobs: jobs >= 5,
            timeout=60,
            what="the first five Jobs",
        )
        restart = restart_apiserver(cluster)
        back = time.monotonic()
        FIGURES.add("apiserver_restarts")
        FIGURES.set("apiserver_downtime_seconds", round(restart.downtime, 1))
        FIGURES.note(
            f"apiserver restart: pid {restart.old_pid} -> {restart.new_pid}, down "
            f"{restart.downtime:.1f}s; started again by kwokctl afterwards: {restart.healed}"
        )
        api = Api(cluster)  # new connections to the new server
        at_back = wait_for(
            lambda: _snapshot(api, namespace, run),
            lambda now: now[0] != UNREACHABLE,
            timeout=10,
            what=f"run {run} to be readable again",
        )
        recovered = wait_for(
            lambda: _snapshot(api, namespace, run),
            lambda now: now[0] != UNREACHABLE and (now != at_back or now[0] in TERMINAL),
            timeout=RECOVERY_SECONDS,
            what=f"the operator to move run {run} on after the API server came back "
            f"(operator alive: {operator.alive})",
            interval=0.3,
        )
        FIGURES.set("operator_recovery_seconds", round(time.monotonic() - back, 1))
        assert recovered is not None
        body = finish(cluster, namespace, run, timeout=90)
    finally:
        watcher.stop()
        watcher.count_figures()
        late = heal(cluster)  # a component that lost its lease late
        if late:
            FIGURES.note(f"after the run, kwokctl started again: {late}")
    audit = RunAudit(
        run=body,
        tasks=api.run_tasks(namespace, run),
        jobs=api.run_jobs(namespace, run),
        plan_size=TASKS,
        expected_attempts={f"t{i:02d}": 1 for i in range(TASKS)},
    ).check()
    audit.count_figures()
    assert operator.alive, f"the operator died:\n{operator.log()[-3000:]}"
    assert body["status"]["phase"] == "SUCCEEDED", brief(body)
    assert not audit.problems, "\n".join(audit.problems[:40])
    bad = [f"rv {s.resource_version} {s.phase}: {s.counts}" for s in watcher.violations]
    assert not bad, "task counts that do not add up:\n" + "\n".join(bad[:20])


def _snapshot(api: Api, namespace: str, run: str) -> tuple[Any, ...]:
    """What the operator changes as a run moves: the Run's phase and progress, the Jobs."""
    try:
        body = api.get(namespace, "runs", run)
        jobs = len(api.run_jobs(namespace, run))
    except Exception as err:  # the API server may still be settling
        return (UNREACHABLE, type(err).__name__)
    status = (body or {}).get("status") or {}
    return (status.get("phase"), status.get("progress"), jobs)

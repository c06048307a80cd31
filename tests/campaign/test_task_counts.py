"""E. A run with retries and failures, watched with the Kubernetes watch API: at every
version of the Run (so after every phase change) status.taskCounts adds up to the
number of tasks."""

from __future__ import annotations

from pathlib import Path

from tests.campaign.support import Api, RunWatcher, brief, layered_nodes, run_manifest
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import FAIL_LABEL, RUN_FOR, TERMINAL, finish, setup_flow
from tests.integration.waiting import wait_for

TASKS = 12


def test_task_counts_add_up_at_every_version_of_a_run(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    failing = {"t01", "t06", "t10"}
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        layered_nodes(TASKS, 3, failing, FAIL_LABEL),
        name="counted",
        maxParallelTasks=4,
        defaults={
            "retries": 1,
            "retryDelaySeconds": 1,
            "podMetadata": {"annotations": {RUN_FOR: "1s"}},
        },
    )
    api = Api(cluster)
    run = "counted-1"
    watcher = RunWatcher(api, namespace, run, plan_size=TASKS).start()
    try:
        assert api.create(namespace, "runs", run_manifest(run, "counted")) is None
        body = finish(cluster, namespace, run, timeout=60)
        wait_for(
            lambda: [s.phase for s in watcher.samples],
            lambda phases: bool(phases) and phases[-1] in TERMINAL,
            timeout=15,
            what="the watcher to see the run end",
        )
    finally:
        watcher.stop()
        watcher.count_figures()
    changes = [(s.phase, s.counts) for s in watcher.phase_changes]
    assert body["status"]["phase"] == "FAILED", brief(body)
    assert len(changes) >= 3, f"too few phase changes seen to check: {changes}"
    counted = [s for s in watcher.samples if s.counts is not None]
    assert counted, f"no version of the run had taskCounts: {changes}"
    bad = [
        f"rv {s.resource_version} {s.phase}: {s.counts} = {sum(s.counts.values())}, "
        f"totalTasks {s.total}"
        for s in watcher.violations
        if s.counts is not None
    ]
    assert not bad, (
        f"{len(bad)} of {len(counted)} versions have task counts that do not add up to "
        f"{TASKS}:\n" + "\n".join(bad[:30])
    )

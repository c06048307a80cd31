"""C. The operator killed (SIGKILL) 5-8 times at seeded random moments during a run of
50 tasks, restarted each time: no Job twice for one attempt, no task lost, every
attempt's history complete, task counts that add up."""

from __future__ import annotations

import random
import time
from functools import partial
from pathlib import Path
from typing import Any

from tests.campaign.figures import FIGURES
from tests.campaign.support import Api, RunAudit, RunWatcher, brief, layered_nodes, run_manifest
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import FAIL_LABEL, RUN_FOR, finish, setup_flow
from tests.integration.waiting import wait_for

SEED = 5150
TASKS = 50
LAYERS = 5
FAILING = 5


def test_an_operator_killed_again_and_again_loses_and_duplicates_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    names = [f"t{i:02d}" for i in range(TASKS)]
    failing = set(rng.sample(names, FAILING))  # every attempt fails: retries 1 -> 2 attempts
    setup_flow(
        cluster,
        namespace,
        tmp_path,
        layered_nodes(TASKS, LAYERS, failing, FAIL_LABEL),
        name="many",
        maxParallelTasks=10,
        defaults={
            "retries": 1,
            "retryDelaySeconds": 0,
            "podMetadata": {"annotations": {RUN_FOR: "3s"}},
        },
    )
    api = Api(cluster)
    run = "many-1"
    watcher = RunWatcher(api, namespace, run, plan_size=TASKS).start()
    assert api.create(namespace, "runs", run_manifest(run, "many")) is None
    expected = {name: 2 if name in failing else 1 for name in names}
    total_jobs = sum(expected.values())
    kills = rng.randint(5, 8)
    # kill once the run has made this many Jobs (spread over the run), plus a jitter
    thresholds = sorted(rng.sample(range(2, total_jobs - 4), kills))
    done = 0
    try:
        for threshold in thresholds:
            progress = wait_for(
                lambda: (len(api.run_jobs(namespace, run)), api.get(namespace, "runs", run)),
                partial(_reached, threshold),
                timeout=90,
                what=f"{threshold} Jobs of run {run} before kill {done + 1}",
                interval=0.2,
            )
            if _ended(progress[1]):
                break
            time.sleep(rng.uniform(0.0, 1.0))  # a random moment, not a wait for a state
            operator.kill()
            done += 1
            operator.start()
        body = finish(cluster, namespace, run, timeout=120)
    finally:
        FIGURES.add("kills", done)
        watcher.stop()
        watcher.count_figures()
    audit = RunAudit(
        run=body,
        tasks=api.run_tasks(namespace, run),
        jobs=api.run_jobs(namespace, run),
        plan_size=TASKS,
        expected_attempts=expected,
    ).check()
    audit.count_figures()
    FIGURES.note(f"kill loop: {done} kills at Job counts {thresholds[:done]}, run {brief(body)}")
    assert done >= 5, f"the run ended after {done} kills (thresholds {thresholds})"
    assert body["status"]["phase"] == "FAILED", brief(body)  # the failing tasks fail it
    assert not audit.problems, "\n".join(audit.problems[:40])


def _reached(threshold: int, seen: tuple[int, dict[str, Any] | None]) -> bool:
    return seen[0] >= threshold or _ended(seen[1])


def _ended(body: dict[str, Any] | None) -> bool:
    status = (body or {}).get("status") or {}
    assert isinstance(status, dict)
    return status.get("phase") in {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}

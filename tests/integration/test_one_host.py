"""One host loop, two adapters: the same flow run locally (`kascade run --local`) and on
the cluster (the operator's local executor, real processes) shows the same task phases,
messages and attempts, the same run history and progress, and reruns that reuse the same
tasks with the same words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import finish, kascade, setup_flow, tasks, trigger
from tests.integration.waiting import wait_for
from tests.projects import manifest, write_project

FILES = {
    "models/a.sql": "select 1 as id",
    "scripts/ok/__main__.py": "print('fine')",
    "scripts/fails/__main__.py": "import sys\nprint('boom')\nsys.exit(3)",
}
NODES = [
    {"name": "load", "script": {"name": "ok"}},
    {
        "name": "flaky",
        "script": {"name": "fails"},
        "retries": 1,
        "retryDelaySeconds": 1,
        "dependsOn": ["load"],
    },
    {"name": "after", "script": {"name": "ok"}, "dependsOn": ["flaky"]},
    {"name": "side", "transformation": {}},
]
HOOKS = {"onFailure": [{"name": "alert", "script": {"name": "ok"}}]}


def local(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def shown_task(task: dict[str, Any]) -> dict[str, Any]:
    """What a user sees of a task, whichever host ran it."""
    return {
        "phase": task["phase"],
        "reason": task.get("reason"),
        "message": task.get("message"),
        "attempts": [
            (a["number"], a.get("exitCode"), a.get("reason"), a.get("message"))
            for a in task.get("attempts") or []
        ],
    }


def shown_history(history: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(h["phase"], h["reason"], h["message"]) for h in history]


def cluster_view(cluster: Cluster, namespace: str, run: str) -> dict[str, Any]:
    status = finish(cluster, namespace, run, timeout=120)["status"]
    own = {i: t for i, t in tasks(cluster, namespace).items() if t["spec"]["runRef"]["name"] == run}
    return {
        "phase": status["phase"],
        "message": status["message"],
        "history": shown_history(status["history"]),
        "progress": status["progress"],
        "tasks": {i: shown_task(t.get("status") or {}) for i, t in sorted(own.items())},
    }


def local_view(record: dict[str, Any], progress: str) -> dict[str, Any]:
    return {
        "phase": record["phase"],
        "message": record["message"],
        "history": shown_history(record["history"]),
        "progress": progress,
        "tasks": {t["id"]: shown_task(t) for t in sorted(record["tasks"], key=lambda t: t["id"])},
    }


def named(view: dict[str, Any], runs: dict[str, str]) -> str:
    """The view as text with run names replaced by their roles."""
    text = json.dumps(view, sort_keys=True)
    for name, role in runs.items():
        text = text.replace(name, role)
    return text


def test_the_same_flow_shows_the_same_on_both_hosts(
    cluster: Cluster, namespace: str, tmp_path: Path
):
    project = write_project(tmp_path / "local", FILES)
    (project / "flow.yaml").write_text(
        yaml.safe_dump(manifest(NODES, name="f", hooks=HOOKS)), encoding="utf-8"
    )
    state = tmp_path / "state"

    def run_here(*args: str) -> dict[str, Any]:
        done = local(*args, "--state-dir", str(state), "-o", "json", cwd=tmp_path)
        assert done.returncode == 1, done.stderr  # the flow fails on purpose
        return json.loads(done.stdout)

    def progress_here(run_id: str) -> str:
        listed = local("runs", "--local", "--state-dir", str(state), "-o", "json", cwd=tmp_path)
        return next(r["tasks"] for r in json.loads(listed.stdout) if r["id"] == run_id)

    first = run_here("run", str(project / "flow.yaml"), "--local")
    rerun = run_here("rerun", first["id"], "--local", "--failed")
    again = run_here("rerun", rerun["id"], "--local", "--failed")
    here = [local_view(r, progress_here(r["id"])) for r in (first, rerun, again)]

    operator = OperatorProcess(cluster, namespace, tmp_path / "op", executor="local")
    (tmp_path / "op").mkdir()
    operator.start()
    try:
        setup_flow(cluster, namespace, tmp_path / "cluster", NODES, files=FILES, hooks=HOOKS)
        original = trigger(cluster, namespace)
        there = [cluster_view(cluster, namespace, original)]
        names = [original]
        for previous in (original, None):
            asked = kascade(cluster, "rerun", previous or names[-1], "--failed", "-n", namespace)
            assert asked.returncode == 0, asked.stderr
            names.append(asked.stdout.strip())
            there.append(cluster_view(cluster, namespace, names[-1]))
        wait_for(
            lambda: finish(cluster, namespace, original)["status"].get("reruns") or [],
            lambda reruns: reruns == [names[1]],
            timeout=30,
            what="the original to list its rerun",
        )
    finally:
        operator.stop()

    roles_here = {first["id"]: "<first>", rerun["id"]: "<rerun>", again["id"]: "<again>"}
    roles_there = dict(zip(names, ("<first>", "<rerun>", "<again>"), strict=True))
    for mine, theirs in zip(here, there, strict=True):
        assert named(mine, roles_here) == named(theirs, roles_there)
    # What the comparison covers, spelled out for the first run:
    flaky = here[0]["tasks"]["flaky"]
    assert flaky["phase"] == "FAILED"
    assert flaky["message"].startswith("attempt 2 failed (exit code 3): boom")
    assert [a[2] for a in flaky["attempts"]] == ["Error", "Error"]
    assert here[0]["tasks"]["after"]["message"] == "upstream failed: flaky"
    assert here[0]["progress"] == "4/4"  # every finished task counts, failed ones too
    assert here[0]["message"] == "task `flaky` failed"
    # A rerun of a rerun names the run that made each reused result.
    assert here[2]["tasks"]["load"]["message"] == f"result of run {first['id']}"

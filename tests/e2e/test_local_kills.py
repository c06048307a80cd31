"""Local runs survive kills: no task process outlives its runner, SIGTERM aborts
cleanly, a run whose runner died is ended by the next command on its state dir, a rerun
of an unfinished run is refused, and two runs on one state dir both work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_runs import (
    SCRIPTS,
    kascade,
    pid_alive,
    read_pid,
    record_of,
    script,
    tasks_of,
    wait_for,
    write_flow_project,
)
from tests.projects import write_project

# spawner PID_FILE CHILD_PID_FILE: starts a child that sleeps, writes both pids, sleeps.
SPAWNER = {
    "scripts/spawner/__main__.py": """
        import os
        import subprocess
        import sys
        import time

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        for path, pid in ((sys.argv[2], child.pid), (sys.argv[1], os.getpid())):
            with open(path + ".tmp", "w") as handle:
                handle.write(str(pid))
            os.replace(path + ".tmp", path)
        time.sleep(120)
    """,
}


def start_run(tmp_path: Path, flow_file: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "kascade", "run", str(flow_file), "--local"]
    command += ["--state-dir", str(tmp_path / "state"), "-o", "json"]
    return subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_pid(process: subprocess.Popen[str], pid_file: Path) -> int:
    def started() -> tuple[bool, Any]:
        if process.poll() is not None:
            pytest.fail(f"kascade ended early with {process.returncode}: {process.stderr}")
        pid = read_pid(pid_file)
        return (pid is not None, pid)

    return int(wait_for(started, f"a task to write {pid_file.name}"))


def gone(pid: int, what: str) -> None:
    def ended() -> tuple[bool, str]:
        alive = pid_alive(pid) and not _zombie(pid)
        return (not alive, f"pid {pid} {'alive' if alive else 'gone'}")

    wait_for(ended, f"{what} (pid {pid}) to be gone", timeout=15)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def stored(tmp_path: Path, run_id: str) -> dict[str, Any]:
    path = tmp_path / "state" / "runs" / run_id / "run.json"
    return json.loads(path.read_text(encoding="utf-8"))


def only_run(tmp_path: Path) -> str:
    (folder,) = (tmp_path / "state" / "runs").iterdir()
    return folder.name


@pytest.fixture
def spawner_flow(tmp_path: Path) -> tuple[Path, Path, Path]:
    project = tmp_path / "project"
    write_project(project, SPAWNER)
    pids = tmp_path / "pids"
    pids.mkdir()
    task, child = pids / "task.pid", pids / "child.pid"
    flow_file = write_flow_project(
        project,
        [
            script("spawner", "spawn", str(task), str(child)),
            script("echo", "after", dependsOn=["spawn"]),
        ],
    )
    yield flow_file, task, child
    for pid_file in (task, child):
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_runner_leaves_no_task_process_and_the_next_command_ends_the_run(
    tmp_path, spawner_flow
):
    flow_file, task_pid_file, child_pid_file = spawner_flow
    runner = start_run(tmp_path, flow_file)
    try:
        task_pid = wait_for_pid(runner, task_pid_file)
        child_pid = int(read_pid(child_pid_file) or 0)
        runner.kill()
        runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    gone(task_pid, "the task process of the killed runner")
    gone(child_pid, "the task's own child process")
    run_id = only_run(tmp_path)
    assert stored(tmp_path, run_id)["phase"] == "RUNNING"  # nobody has looked yet

    listed = kascade(
        "runs", "--local", "--state-dir", tmp_path / "state", "-o", "json", cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["phase"] == "ABORTED"
    assert f"run {run_id}: its runner (pid {runner.pid}) ended without finishing" in listed.stderr
    record = stored(tmp_path, run_id)
    assert (record["phase"], record["reason"]) == ("ABORTED", "RunnerLost")
    tasks = tasks_of(record)
    assert tasks["spawn"]["phase"] == "ABORTED"
    assert tasks["spawn"]["attempts"][0]["reason"] == "RunnerLost"
    assert tasks["after"]["phase"] == "ABORTED"


def test_sigterm_aborts_the_run_cleanly_and_exits_143(tmp_path, spawner_flow):
    flow_file, task_pid_file, child_pid_file = spawner_flow
    runner = start_run(tmp_path, flow_file)
    try:
        task_pid = wait_for_pid(runner, task_pid_file)
        child_pid = int(read_pid(child_pid_file) or 0)
        runner.send_signal(signal.SIGTERM)
        stdout, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 143, stderr
    assert "Traceback" not in stderr
    record = record_of(stdout, stderr, runner.returncode)
    assert record["phase"] == "ABORTED"
    assert tasks_of(record)["spawn"]["attempts"][0]["reason"] == "Aborted"
    gone(task_pid, "the aborted task")
    gone(child_pid, "the aborted task's child")


def test_a_rerun_of_an_unfinished_run_is_refused_like_on_a_cluster(tmp_path, spawner_flow):
    flow_file, task_pid_file, _ = spawner_flow
    runner = start_run(tmp_path, flow_file)
    try:
        wait_for_pid(runner, task_pid_file)
        run_id = only_run(tmp_path)
        refused = kascade(
            "rerun", run_id, "--local", "--failed", "--state-dir", tmp_path / "state", cwd=tmp_path
        )
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"error: run `{run_id}` is RUNNING; only a finished run can be rerun "
            "(wait for it to end, or abort it first)"
        )
        assert len(list((tmp_path / "state" / "runs").iterdir())) == 1  # nothing was started
        assert stored(tmp_path, run_id)["reruns"] == []
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=60)


def test_two_runs_on_one_state_dir_both_work(tmp_path):
    project = tmp_path / "project"
    write_project(project, SCRIPTS)
    flows = []
    for name in ("first", "second"):
        # Both sleep a moment (so they overlap), then build the models into the state
        # dir's one embedded warehouse (DuckDB: one writer at a time; tasks wait their turn).
        flow_file = write_flow_project(
            project,
            [
                script("sleeper", "nap", str(tmp_path / f"{name}.pid"), "1"),
                {"name": "models", "transformation": {}, "dependsOn": ["nap"]},
            ],
        )
        renamed = project / f"{name}.yaml"
        renamed.write_text(flow_file.read_text().replace("name: e2e", f"name: {name}"))
        flows.append(renamed)
    runners = [start_run(tmp_path, flow) for flow in flows]
    results = [runner.communicate(timeout=120) for runner in runners]
    for runner, (stdout, stderr) in zip(runners, results, strict=True):
        assert runner.returncode == 0, stderr
        assert record_of(stdout, stderr)["phase"] == "SUCCEEDED"
    listed = kascade(
        "runs", "--local", "--state-dir", tmp_path / "state", "-o", "json", cwd=tmp_path
    )
    assert sorted(r["flow"] for r in json.loads(listed.stdout)) == ["first", "second"]
    assert all(r["phase"] == "SUCCEEDED" for r in json.loads(listed.stdout))

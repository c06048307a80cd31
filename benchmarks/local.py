"""Benchmark: the local runner's own cost per task (issue 4).

A flow of 500 trivial script tasks (a chain of layers, 10 wide) runs with
maxParallelTasks=1, so wall time = the tasks' own process time + the runner's overhead.
The tasks' own process time is measured apart, by starting the same task process
(`python -m kascade.runtime script noop`) 50 times in a row without the runner.
Goal: under 30 ms of overhead per task. Also prints the wall time with 8 in parallel.
Run: `make bench`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TASKS = 500
WIDTH = 10
BASELINE_SAMPLES = 50


def write_project(root: Path, parallel: int) -> Path:
    (root / "scripts" / "noop").mkdir(parents=True, exist_ok=True)
    (root / "scripts" / "noop" / "__main__.py").write_text("pass\n", encoding="utf-8")
    nodes = []
    for index in range(TASKS):
        layer = index // WIDTH
        node = {"name": f"t{index:03d}", "script": {"name": "noop"}}
        if layer:
            node["dependsOn"] = [f"t{(layer - 1) * WIDTH + (index % WIDTH):03d}"]
        nodes.append(node)
    flow = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "bench"},
        "spec": {"maxParallelTasks": parallel, "nodes": nodes},
    }
    path = root / f"flow-{parallel}.yaml"
    path.write_text(yaml.safe_dump(flow), encoding="utf-8")
    return path


def task_process_seconds(project: Path) -> list[float]:
    env = {**os.environ, "KASCADE_PROJECT": str(project)}
    samples = []
    for _ in range(BASELINE_SAMPLES):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kascade.runtime", "script", "noop"],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
        samples.append(time.perf_counter() - started)
    return samples


def run_flow(flow: Path, state: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kascade",
            "run",
            str(flow),
            "--local",
            "--state-dir",
            str(state),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{result.stderr[-2000:]}")
    return wall


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sequential = write_project(root, 1)
        parallel = write_project(root, 8)
        samples = task_process_seconds(root)
        own = statistics.median(samples)
        wall_1 = run_flow(sequential, root / "state-1")
        wall_8 = run_flow(parallel, root / "state-8")
    overhead = (wall_1 - TASKS * own) / TASKS
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} cores; {TASKS} script tasks")
    print(
        f"task process alone (median of {BASELINE_SAMPLES}): {own * 1000:.1f} ms "
        f"(p90 {statistics.quantiles(samples, n=10)[-1] * 1000:.1f} ms)"
    )
    print(f"maxParallelTasks=1: wall {wall_1:.1f} s = {wall_1 / TASKS * 1000:.1f} ms per task")
    print(f"runner overhead per task: {overhead * 1000:.1f} ms (goal < 30 ms)")
    print(f"maxParallelTasks=8: wall {wall_8:.1f} s = {wall_8 / TASKS * 1000:.1f} ms per task")


if __name__ == "__main__":
    main()

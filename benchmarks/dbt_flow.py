"""Benchmark: one task per model against one `dbt build`, side by side.

Goal (issue 12): a flow of 200 models, one task per model and maxParallelTasks equal to
dbt's threads, takes at most 1.25x the wall time of `dbt build` on the same project.
The project is generated (seeded): 200 models in three layers, each selecting from up
to three earlier models, a third of them tables, the rest views, on the embedded DuckDB.

Prints the wall time of, each on a fresh warehouse:
- `dbt build --threads N` (a fresh process, as a user types it; dbt's partial parse warm);
- `kascade run flow.yaml --local` with maxParallelTasks N: the dbt tasks share a warm dbt
  worker (the default);
- the same with KASCADE_DBT_WORKER=0 on the first PER_PROCESS models only (every task
  starts dbt in a process of its own, taking turns on the DuckDB file: minutes for 200),
  shown as seconds per task;
- the start of a task pod on the cluster, where every task unpacks the pushed project into
  a fresh folder: POD_TASKS model tasks run as a pod runs them (`python -m kascade.runtime`
  on a fresh unpack), with the dbt parse state `kascade project push` stores and without.
Run: `make bench-dbt` (BENCH_MODELS and BENCH_THREADS change the size and parallelism).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

MODELS = int(os.environ.get("BENCH_MODELS", "200"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
PER_PROCESS = int(os.environ.get("BENCH_PER_PROCESS", "20"))
POD_TASKS = int(os.environ.get("BENCH_POD_TASKS", "5"))
BIN = Path(sys.executable).parent
LAYERS = ("staging", "intermediate", "marts")


def generate(root: Path, size: int, seed: int = 12) -> None:
    """The project and a flow that runs every model of it, one task each."""
    rng = random.Random(seed)
    (root / "dbt_project.yml").write_text(
        "name: bench\nprofile: bench\nmodels:\n  bench:\n"
        + "".join(f"    {layer}:\n      +tags: [{layer}]\n" for layer in LAYERS),
        encoding="utf-8",
    )
    names: list[str] = []
    for index in range(size):
        layer = LAYERS[min(index * len(LAYERS) // size, len(LAYERS) - 1)]
        name = f"m{index:04d}"
        folder = root / "models" / layer
        folder.mkdir(parents=True, exist_ok=True)
        upstream = rng.sample(names, k=min(len(names), rng.randint(0, 3))) if names else []
        selects = [f"select id from {{{{ ref('{up}') }}}}" for up in upstream]
        body = "\nunion all\n".join(selects) if selects else f"select {index} as id"
        materialized = "table" if index % 3 == 0 else "view"
        (folder / f"{name}.sql").write_text(
            f"{{{{ config(materialized='{materialized}') }}}}\n{body}\n", encoding="utf-8"
        )
        names.append(name)
    flow = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "bench"},
        "spec": {"maxParallelTasks": THREADS, "nodes": [{"name": "all", "transformation": {}}]},
    }
    (root / "flow.yaml").write_text(yaml.safe_dump(flow), encoding="utf-8")


def dbt_build(root: Path, warehouse: Path) -> float:
    profiles = root / ".profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(
        "bench:\n  target: d\n  outputs:\n"
        f"    d: {{type: duckdb, path: '{warehouse}', schema: main, threads: {THREADS}}}\n",
        encoding="utf-8",
    )
    command = [
        str(BIN / "dbt"),
        "build",
        "--profiles-dir",
        str(profiles),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "-q",
    ]
    subprocess.run([str(BIN / "dbt"), "parse", *command[2:]], cwd=root, check=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=root, check=True)
    return time.perf_counter() - started


def kascade_run(root: Path, state: Path, warm: bool) -> float:
    env = dict(os.environ)
    env["KASCADE_DBT_WORKER"] = "1" if warm else "0"
    command = [
        str(BIN / "kascade"),
        "run",
        "flow.yaml",
        "--local",
        "--state-dir",
        str(state),
        "-o",
        "json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kascade run failed:\n{done.stderr[-3000:]}")
    return elapsed


def pod_tasks(root: Path, work: Path, with_state: bool) -> float:
    """Seconds per model task run as a pod runs it: the pushed archive unpacked into a
    fresh folder, then `python -m kascade.runtime model NAME`."""
    from kascade.contract.archive import pack
    from kascade.runtime.dbtparsestate import pack_with_parse_state

    warehouse = f"duckdb:///{work}/warehouse.duckdb"
    packed = pack_with_parse_state(root, warehouse)[0] if with_state else pack(root)
    archive = work / "project.tar.gz"
    work.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(packed)
    total = 0.0
    for index in range(POD_TASKS):
        project = work / f"project-{index}"
        env = {
            **os.environ,
            "KASCADE_PROJECT_ARCHIVE": str(archive),
            "KASCADE_PROJECT": str(project),
            "KASCADE_WAREHOUSE": warehouse,
            "KASCADE_OUTPUTS": str(work / "outputs.json"),
        }
        command = [str(BIN / "python"), "-m", "kascade.runtime", "model", f"m{index:04d}"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        total += time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the pod-style task failed:\n{done.stderr[-3000:]}")
    return total / POD_TASKS


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        generate(root, MODELS)
        build = dbt_build(root, Path(tmp) / "dbt.duckdb")
        warm = kascade_run(root, Path(tmp) / "state-warm", warm=True)
        small = Path(tmp) / "small"
        small.mkdir()
        generate(small, PER_PROCESS)
        cold = kascade_run(small, Path(tmp) / "state-cold", warm=False)
        pod_cold = pod_tasks(root, Path(tmp) / "pods-without", with_state=False)
        pod_warm = pod_tasks(root, Path(tmp) / "pods-with", with_state=True)
    print(f"{MODELS} models, {THREADS} threads / maxParallelTasks, DuckDB, 2-core machine")
    print(f"  dbt build                                {build:7.1f} s")
    print(f"  kascade run, warm dbt worker (default)   {warm:7.1f} s   x{warm / build:.2f}")
    print("  goal: kascade run <= 1.25 x dbt build")
    print(
        f"  for contrast, a dbt process per task (KASCADE_DBT_WORKER=0): {PER_PROCESS} models "
        f"in {cold:.1f} s, {cold / PER_PROCESS:.2f} s per task"
    )
    print(f"  a task pod's dbt task on the {MODELS}-model project (mean of {POD_TASKS}):")
    print(f"    without the pushed dbt parse state     {pod_cold:7.2f} s")
    ratio = pod_warm / pod_cold
    print(f"    with it (kascade project push)         {pod_warm:7.2f} s   x{ratio:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: load and plan generated projects of 1,000 and 10,000 models, and the same
selection listed by `dbt ls`, side by side.

Goals (issues 2 and 12): 10,000 models planned in under a second, growing close to
linearly; planning at least 3x faster than `dbt ls` at 1,000 models.
Prints, per size: project load time (read + static ref scan), plan time (selection, DAG,
expansion), their sum, and the peak Python heap of load + plan; then, at 1,000 models,
`kascade plan` and `dbt ls` as the commands a user types (fresh processes, wall time),
dbt cold (no target/) and warm (its partial parse in target/). Run: `make bench`.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from kascade.api import Flow
from kascade.engine.plan import build_plan
from kascade.engine.project import load_project

LAYERS = ("staging", "intermediate", "marts")
SIZES = (1_000, 10_000)
REPEATS = 3


def generate(root: Path, size: int, seed: int = 7) -> Flow:
    """A layered dbt-style project: each model refs 1-3 models of earlier layers."""
    rng = random.Random(seed)
    (root / "dbt_project.yml").write_text(
        "name: bench\nprofile: bench\nmodels:\n  bench:\n"
        + "".join(f"    {layer}:\n      +tags: [{layer}]\n" for layer in LAYERS),
        encoding="utf-8",
    )
    names: list[str] = []
    per_layer = size // len(LAYERS)
    for index in range(size):
        layer = LAYERS[min(index // per_layer, len(LAYERS) - 1)]
        name = f"{layer[:3]}_{index:05d}"
        folder = root / "models" / layer / f"group_{index % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if layer == "staging" or not names:
            body = f"select * from {{{{ source('raw', 't{index}') }}}}"
        else:
            refs = rng.sample(names, k=min(len(names), rng.randint(1, 3)))
            body = "select *\nfrom " + "\njoin ".join(
                f"{{{{ ref('{r}') }}}} using (id)" for r in refs
            )
        materialized = "{{ config(materialized='table') }}\n" if index % 7 == 0 else ""
        (folder / f"{name}.sql").write_text(f"{materialized}{body}\n", encoding="utf-8")
        names.append(name)
    tables = "".join(f"      - name: t{index}\n" for index in range(per_layer + 1))
    (root / "models" / "staging" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: raw\n    tables:\n{tables}", encoding="utf-8"
    )
    (root / "scripts" / "load").mkdir(parents=True)
    (root / "scripts" / "load" / "__main__.py").write_text("print('load')\n", encoding="utf-8")
    return Flow.model_validate(
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "bench"},
            "spec": {
                "nodes": [
                    {"name": "load", "script": {"name": "load"}},
                    {
                        "name": "staging",
                        "transformation": {"include": ["tag:staging"]},
                        "dependsOn": ["load"],
                    },
                    {"name": "intermediate", "transformation": {"include": ["tag:intermediate"]}},
                    {
                        "name": "marts",
                        "transformation": {
                            "include": ["tag:marts"],
                            "exclude": ["config.materialized:table"],
                        },
                    },
                    {
                        "name": "tables",
                        "transformation": {"include": ["marts,config.materialized:table"]},
                    },
                ]
            },
        }
    )


def measure(root: Path, flow: Flow) -> tuple[float, float, int]:
    started = time.perf_counter()
    project = load_project(root)
    loaded = time.perf_counter()
    plan = build_plan(flow, project)
    planned = time.perf_counter()
    assert len(plan.tasks) == len(project.models) + 1, "every model is planned once"
    return loaded - started, planned - loaded, len(plan.tasks)


def peak_heap(root: Path, flow: Flow) -> int:
    tracemalloc.start()
    build_plan(flow, load_project(root))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


PROFILE = "bench:\n  target: d\n  outputs:\n    d: {type: duckdb, path: ':memory:'}\n"
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> float:
    """Wall time of a command that must succeed."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def side_by_side(root: Path, flow: Flow, size: int) -> None:
    """`kascade plan` and `dbt ls` of the marts selection, each a fresh process."""
    import yaml

    (root / "flow.yaml").write_text(yaml.safe_dump(flow.to_wire()), encoding="utf-8")
    profiles = root / ".profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(PROFILE, encoding="utf-8")
    kascade = [str(BIN / "kascade"), "plan", "flow.yaml", "-o", "json"]
    dbt = [
        str(BIN / "dbt"),
        "ls",
        "--resource-type",
        "model",
        "--select",
        "tag:marts",
        "--profiles-dir",
        str(profiles),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "-q",
    ]
    ours = min(timed(kascade, root) for _ in range(REPEATS))
    shutil.rmtree(root / "target", ignore_errors=True)
    cold = timed(dbt, root)
    warm = min(timed(dbt, root) for _ in range(REPEATS))
    print(f"\nside by side at {size} models (wall time of the command, best of {REPEATS}):")
    print(f"  kascade plan (all nodes)    {ours:7.2f} s")
    print(f"  dbt ls, cold (no target/)   {cold:7.2f} s   x{cold / ours:.1f} kascade's time")
    print(f"  dbt ls, warm (partial parse) {warm:6.2f} s   x{warm / ours:.1f} kascade's time")


def main() -> None:
    print(f"python {sys.version.split()[0]}; best of {REPEATS} runs")
    print(f"{'models':>8} {'tasks':>7} {'load s':>8} {'plan s':>8} {'total s':>8} {'peak MiB':>9}")
    totals: dict[int, float] = {}
    for size in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            flow = generate(root, size)
            runs = [measure(root, flow) for _ in range(REPEATS)]
            load = min(r[0] for r in runs)
            plan = min(r[1] for r in runs)
            total = min(r[0] + r[1] for r in runs)
            totals[size] = total
            peak = peak_heap(root, flow) / 2**20
            print(f"{size:>8} {runs[0][2]:>7} {load:>8.3f} {plan:>8.3f} {total:>8.3f} {peak:>9.1f}")
            spread = statistics.pstdev(r[0] + r[1] for r in runs)
            print(f"{'':>8} {'':>7} (total spread over runs: {spread:.3f} s)")
            if size == SIZES[0] and os.environ.get("BENCH_SKIP_DBT") is None:
                side_by_side(root, flow, size)
    small, large = SIZES
    ratio = totals[large] / totals[small]
    print(f"growth {small} -> {large} models: x{ratio:.1f} time for x{large // small} models")


if __name__ == "__main__":
    main()

"""Benchmark: the operator on the local kwok cluster with the `jobs` executor (issue 5).

A flow of 1,000 model tasks in 10 layers of 100 (each model refs 1-3 models of the layer
above), maxParallelTasks 100. A watch on Jobs timestamps, on this machine's clock, each
Job's creation and completion; from them:
  - Jobs created per second, sustained (first to last creation),
  - latency from "dependencies done" (the last upstream Job seen Complete) to "Job
    created", p50 and p95,
  - total time against the critical-path ideal (10 layers x the median time a Job takes
    from creation to completion on kwok),
and, from /proc, the operator's CPU seconds and peak RSS.
Goals: >= 20 Jobs/s, p95 <= 250 ms, peak RSS <= 200 MB. Run: `make bench-cluster`.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml
from kubernetes import client

from clusterkit import KASCADE, KUBECONFIG, ROOT, RawWatch, api_client, kubectl, push_project

LAYERS, WIDTH = 10, 100
TIMEOUT_SECONDS = 900


def project(root: Path) -> None:
    rng = random.Random(11)
    for layer in range(LAYERS):
        folder = root / "models" / f"layer{layer:02d}"
        folder.mkdir(parents=True)
        for index in range(WIDTH):
            if layer == 0:
                sql = "select 1 as id"
            else:
                ups = rng.sample(range(WIDTH), rng.randint(1, 3))
                sql = "select * from " + " union all select * from ".join(
                    f"{{{{ ref('m{layer - 1:02d}_{u:03d}') }}}}" for u in ups
                )
            (folder / f"m{layer:02d}_{index:03d}.sql").write_text(sql + "\n")


class JobWatch:
    """Job creation and completion times, as seen by a watch (this machine's clock)."""

    def __init__(self, namespace: str) -> None:
        self.created: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self.task_of: dict[str, str] = {}
        self.batch = client.BatchV1Api(api_client())
        self.watch = RawWatch(self.batch.list_namespaced_job, self._record, namespace)

    def start(self) -> None:
        self.watch.start()

    @property
    def stop(self) -> threading.Event:
        return self.watch.stop

    def _record(self, job: dict) -> None:
        now = time.monotonic()
        meta = job.get("metadata", {})
        name = meta.get("name", "")
        self.created.setdefault(name, now)
        self.task_of[name] = (meta.get("annotations") or {}).get("kascade.io/task-id", "")
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Complete" and condition.get("status") == "True":
                self.completed.setdefault(name, now)


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def baseline(namespace: str) -> tuple[float, float]:
    """The cluster alone: the same 1,000 Jobs in 10 waves of 100, each wave created (32 at
    a time) once the previous one completed. Returns (Jobs/s, median Job time)."""
    from concurrent.futures import ThreadPoolExecutor

    watcher = JobWatch(namespace)
    watcher.start()
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "task", "image": "busybox"}],
                }
            },
        },
    }

    def create(name: str) -> None:
        response = watcher.batch.create_namespaced_job(
            namespace, {**body, "metadata": {"name": name}}, _preload_content=False
        )
        response.read()  # the whole answer, so the connection is clean for reuse
        response.release_conn()

    with ThreadPoolExecutor(32) as pool:
        for layer in range(LAYERS):
            names = [f"b{layer:02d}-{i:03d}" for i in range(WIDTH)]
            list(pool.map(create, names))
            while not all(n in watcher.completed for n in names):
                time.sleep(0.05)
    watcher.stop.set()
    created = sorted(watcher.created.values())
    last_done = max(watcher.completed.values())
    durations = [watcher.completed[j] - watcher.created[j] for j in watcher.completed]
    return len(created) / (last_done - created[0]), statistics.median(durations)


def main() -> None:
    subprocess.run([ROOT / "hack/cluster/up.sh"], check=True, capture_output=True)
    kubectl("apply", "-f", str(ROOT / "crds"))
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    workdir = Path(tempfile.mkdtemp())
    project(workdir / "project")
    kubeconfig = ["--kubeconfig", str(KUBECONFIG)]
    push_project(workdir / "project", "bench", namespace)
    flow = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "bench"},
        "spec": {
            "project": {"configMap": "bench"},
            "maxParallelTasks": WIDTH,
            "nodes": [{"name": "models", "transformation": {}}],
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(flow))
    log = open(workdir / "operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [*KASCADE, "operator", "-n", namespace, *kubeconfig, "--state-dir", str(workdir / "st")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    watcher = JobWatch(namespace)
    watcher.start()
    time.sleep(3)  # let the operator list and index the namespace before the run
    started = time.monotonic()
    run = subprocess.run(
        [*KASCADE, "trigger", "bench", "-n", namespace, *kubeconfig],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deadline = started + TIMEOUT_SECONDS
    phase = ""
    while time.monotonic() < deadline:
        phase = kubectl("get", "run", run, "-n", namespace, "-o", "jsonpath={.status.phase}")
        if phase in ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"):
            break
        time.sleep(1)
    total = time.monotonic() - started
    cpu, peak = proc_stats(operator.pid)
    operator.terminate()
    operator.wait(timeout=30)
    watcher.stop.set()
    tasks = yaml.safe_load(kubectl("get", "tasks", "-n", namespace, "-o", "yaml"))["items"]
    deps = {t["spec"]["id"]: t["spec"].get("dependsOn") or [] for t in tasks}
    job_of = {task: job for job, task in watcher.task_of.items()}
    latencies = []
    for task, ups in deps.items():
        if not ups or task not in job_of:
            continue
        done = max(watcher.completed.get(job_of[u], float("nan")) for u in ups)
        latencies.append((watcher.created[job_of[task]] - done) * 1000)
    created = sorted(watcher.created.values())
    rate = (len(created) - 1) / (created[-1] - created[0]) if len(created) > 1 else 0.0
    durations = [watcher.completed[j] - watcher.created[j] for j in watcher.completed]
    ideal = LAYERS * statistics.median(durations)
    quantiles = statistics.quantiles(latencies, n=20)
    kubectl("delete", "namespace", namespace, "--wait=false")
    ceiling_ns = f"{namespace}-base"
    kubectl("create", "namespace", ceiling_ns)
    ceiling, ceiling_time = baseline(ceiling_ns)
    kubectl("delete", "namespace", ceiling_ns, "--wait=false")
    print(f"run {run}: {phase} in {total:.1f} s; {len(created)} Jobs for {len(tasks)} tasks")
    print(f"Jobs created per second (first to last): {rate:.1f} (goal >= 20)")
    print(
        f"dependencies done -> Job created: p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {quantiles[18]:.0f} ms (goal <= 250 ms)"
    )
    print(
        f"total {total:.1f} s vs critical-path ideal {ideal:.1f} s "
        f"({LAYERS} layers x median Job time {statistics.median(durations):.2f} s)"
    )
    print(f"operator: {cpu:.1f} CPU seconds, peak RSS {peak:.0f} MiB (goal <= 200 MiB)")
    print(
        f"the cluster alone (same 1,000 Jobs in 10 waves, no operator): {ceiling:.1f} Jobs/s "
        f"end to end, median Job time {ceiling_time:.2f} s"
    )


if __name__ == "__main__":
    main()

"""The example on the real node (`make bench-real-node`): the operator's jobs executor,
every task a pod of the runtime image on kascade-node-0, dbt writing to the test
PostgreSQL server; beside it, `dbt build --threads 4` of the same project on the same
server (the peer: what a user runs without kascade).

Prints, per task attempt: Job created → the task's first log line (scheduling, sandbox,
container start, Python and kascade start, project unpacked: "pod start to task start"),
the task's own time (first to last log line), and the attempt as the operator recorded
it; then the run against `dbt build`. Needs `make runtime-image cluster-up postgres-up`.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml

from clusterkit import KASCADE, KUBECONFIG, ROOT, kubectl

NODE_HOST = "10.88.0.1"  # hack/node/node.env NODE_HOST_IP
PG_STATE = ROOT / ".cluster" / "postgres"
SHOP = ROOT / "examples" / "shop"


def when(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds cut to microseconds)."""
    stamp = stamp.replace("Z", "+00:00")
    if "." in stamp:
        head, rest = stamp.split(".", 1)
        digits = rest[: len(rest) - 6]
        stamp = f"{head}.{digits[:6]:0<6}{rest[len(rest) - 6 :]}"
    return datetime.fromisoformat(stamp).timestamp()


def database(password: str, port: int, name: str, drop: bool = False) -> None:
    with psycopg.connect(
        host="127.0.0.1", port=port, user="kascade", password=password, dbname="postgres",
        autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(f'drop database if exists "{name}" with (force)')
        if not drop:
            admin.execute(f'create database "{name}"')


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return f"median {median:5.2f} s   p90 {p90:5.2f} s   max {ordered[-1]:5.2f} s"


def run_on_the_node(password: str, port: int, workdir: Path) -> tuple[float, list[dict[str, Any]]]:
    kubectl("apply", "-f", str(ROOT / "crds"))
    for _ in range(60):  # a CRD just created may have no status yet: wait fails at once
        try:
            kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            break
        except subprocess.CalledProcessError:
            time.sleep(1)
    namespace = f"bench-real-{uuid.uuid4().hex[:5]}"
    db = namespace.replace("-", "_")
    database(password, port, db)
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "warehouse"},
              "stringData": {"password": password}}  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(secret))
    url = f"postgresql://kascade@{NODE_HOST}:{port}/{db}"
    subprocess.run(
        [*KASCADE, "project", "push", str(SHOP), "--name", "shop-project", "-n", namespace,
         "--warehouse", url, "--kubeconfig", str(KUBECONFIG)],
        check=True, capture_output=True,
    )  # fmt: skip
    flow = yaml.safe_load((SHOP / "flow.yaml").read_text())
    flow["spec"]["warehouse"] = {
        "type": "postgres", "host": NODE_HOST, "port": port, "database": db, "user": "kascade",
        "passwordSecretRef": {"name": "warehouse", "key": "password"},
    }  # fmt: skip
    flow["spec"]["defaults"]["nodeSelector"] = {"kascade.dev/node": "real"}
    flow["spec"]["defaults"]["tolerations"] = [
        {"key": "kascade.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
    ]
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(flow))
    log = open(workdir / "operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [*KASCADE, "operator", "-n", namespace, "--kubeconfig", str(KUBECONFIG),
         "--state-dir", str(workdir / "state")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(3)
        began = time.monotonic()
        triggered = subprocess.run(
            [*KASCADE, "trigger", "shop-daily", "-n", namespace, "--wait",
             "--kubeconfig", str(KUBECONFIG)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - began
        if triggered.returncode != 0:
            sys.exit(f"the run failed:\n{triggered.stderr[-3000:]}")
        tasks = json.loads(kubectl("get", "tasks", "-n", namespace, "-o", "json"))["items"]
        attempts = []
        for task in tasks:
            for attempt in task["status"].get("attempts") or []:
                pod_name = kubectl(
                    "get", "pods", "-n", namespace, "-l", f"job-name={attempt['jobName']}",
                    "-o", "jsonpath={.items[0].metadata.name}",
                )  # fmt: skip
                stamped = kubectl("logs", "-n", namespace, pod_name, "--timestamps").splitlines()
                lines = [line.split(" ", 1)[0] for line in stamped if line.strip()]
                if not lines:
                    continue
                attempts.append(
                    {
                        "task": task["spec"]["id"],
                        "startup": when(lines[0]) - when(attempt["startTime"]),
                        "work": when(lines[-1]) - when(lines[0]),
                        "attempt": when(attempt["endTime"]) - when(attempt["startTime"]),
                    }
                )
        return wall, attempts
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        log.close()
        kubectl("delete", "namespace", namespace, "--wait=false")
        database(password, port, db, drop=True)


def dbt_build(password: str, port: int, workdir: Path) -> tuple[float, list[float]]:
    db = f"bench_dbt_{uuid.uuid4().hex[:5]}"
    database(password, port, db)
    project = workdir / "shop"
    shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    profiles = workdir / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: 127.0.0.1\n      port: {port}\n      user: kascade\n"
        "      password: \"{{ env_var('PGPASSWORD') }}\"\n"
        f"      dbname: {db}\n      schema: public\n      threads: 4\n"
    )
    try:
        began = time.monotonic()
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "dbt"), "build", "--profiles-dir", str(profiles)],
            cwd=project, check=True, capture_output=True,
            env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin", "HOME": str(workdir)},
        )  # fmt: skip
        wall = time.monotonic() - began
        results = json.loads((project / "target" / "run_results.json").read_text())
        return wall, [result["execution_time"] for result in results["results"]]
    finally:
        database(password, port, db, drop=True)


def main() -> None:
    password = (PG_STATE / "password").read_text().strip()
    port = int((PG_STATE / "port").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        wall, attempts = run_on_the_node(password, port, workdir)
        dbt_wall, dbt_times = dbt_build(password, port, workdir)
    print(f"example on the real node: {len(attempts)} attempts, each a pod (maxParallelTasks 4)")
    print(f"  Job created -> task's first log line   {summary([a['startup'] for a in attempts])}")
    print(f"  task's own time (first to last line)  {summary([a['work'] for a in attempts])}")
    print(f"  attempt as recorded (Job to end)      {summary([a['attempt'] for a in attempts])}")
    print(f"  run, trigger to SUCCEEDED             {wall:6.1f} s")
    print(f"dbt build --threads 4, same project and server: {len(dbt_times)} nodes")
    print(f"  per node (dbt's execution_time)       {summary(dbt_times)}")
    print(f"  whole build                           {dbt_wall:6.1f} s")


if __name__ == "__main__":
    main()

"""Benchmark: 200 Flows scheduled every minute, on the local kwok cluster (issue 6).

Each Flow has one script task; the operator (jobs executor) runs for five minutes. A raw
watch on Runs records, on this machine's clock, when each scheduled Run appears; lag is
that time minus the Run's spec.scheduledTime. Prints lag p50/p99, how many Runs appeared
against how many instants passed, and duplicates (a Flow with two Runs for one instant),
which must be 0. Goal: p99 lag <= 1 s. Run: `make bench-schedules`.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import yaml
from kubernetes import client

from clusterkit import KASCADE, KUBECONFIG, ROOT, RawWatch, api_client, kubectl, push_project

FLOWS = 200
MINUTES = 5
GROUP, VERSION = "kascade.io", "v1alpha1"


class RunWatch:
    """When each scheduled Run first appears (this machine's clock)."""

    def __init__(self, namespace: str) -> None:
        self.seen: dict[str, tuple[float, str, str]] = {}
        custom = client.CustomObjectsApi(api_client())
        self.watch = RawWatch(
            custom.list_namespaced_custom_object, self._record, GROUP, VERSION, namespace, "runs"
        )

    def _record(self, run: dict) -> None:
        now = time.time()
        spec = run.get("spec") or {}
        name = run["metadata"]["name"]
        if spec.get("type") == "ORCHESTRATED" and name not in self.seen:
            self.seen[name] = (now, spec["flowRef"]["name"], spec["scheduledTime"])


def main() -> None:
    subprocess.run([ROOT / "hack/cluster/up.sh"], check=True, capture_output=True)
    kubectl("apply", "-f", str(ROOT / "crds"))
    namespace = f"sched-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    workdir = Path(tempfile.mkdtemp())
    (workdir / "project/scripts/step").mkdir(parents=True)
    (workdir / "project/scripts/step/__main__.py").write_text("print('step')\n")
    kubeconfig = ["--kubeconfig", str(KUBECONFIG)]
    push_project(workdir / "project", "p", namespace)
    flows = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Flow",
            "metadata": {"name": f"f{i:03d}"},
            "spec": {
                "project": {"configMap": "p"},
                "schedule": {"cron": "* * * * *"},
                "successfulRunsHistoryLimit": 2,
                "failedRunsHistoryLimit": 2,
                "nodes": [{"name": "s", "script": {"name": "step"}}],
            },
        }
        for i in range(FLOWS)
    ]
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(flows))
    watcher = RunWatch(namespace)
    watcher.watch.start()
    log = open(workdir / "operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [*KASCADE, "operator", "-n", namespace, *kubeconfig, "--state-dir", str(workdir / "st")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started = time.time()
    # measure the instants strictly after the operator started, for MINUTES minutes
    first = (int(started) // 60 + 1) * 60 + 60  # leave the first minute for start-up
    last = first + 60 * (MINUTES - 1)
    while time.time() < last + 30:
        time.sleep(1)
    operator.terminate()
    operator.wait(timeout=30)
    watcher.watch.stop.set()
    lags, per_instant = [], Counter()
    for seen, flow, when in watcher.seen.values():
        instant = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        if first <= instant <= last:
            lags.append(seen - instant)
            per_instant[(flow, instant)] += 1
    expected = FLOWS * MINUTES
    duplicates = sum(count - 1 for count in per_instant.values() if count > 1)
    kubectl("delete", "namespace", namespace, "--wait=false")
    quantiles = statistics.quantiles(lags, n=100) if len(lags) > 1 else [0.0] * 99
    print(
        f"{FLOWS} Flows every minute for {MINUTES} minutes: {len(per_instant)} of {expected} "
        f"instants got a Run; duplicates {duplicates} (must be 0)"
    )
    print(
        f"schedule lag (Run seen - scheduled time): p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"p99 {quantiles[98] * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms (goal p99 <= 1 s)"
    )


if __name__ == "__main__":
    main()

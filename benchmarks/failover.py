"""Benchmark: failover between two operator replicas with kopf peering (issue 7).

Two `kascade operator --peering` processes watch one namespace on the local kwok cluster;
the one started first leads. For each way the leader can go, the time from its end to the
standby's first Job for a run that was waiting on it:
  - graceful: SIGTERM (a rolling restart, a node drain): the leader withdraws its
    peering record on the way out;
  - crash: SIGKILL (OOM kill, node loss): the record stays until its lifetime expires
    (`--peering-lifetime`, 60 s by default; measured at 60 and at 15).
Each case is measured three times; the script prints the median and the range.
Run: `make bench-failover` (needs the cluster: `make cluster-up`).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from clusterkit import KASCADE, KUBECONFIG, ROOT, kubectl, push_project

REPEATS = 3
PEERING = "kascade"
FLOW = {
    "apiVersion": "kascade.io/v1alpha1",
    "kind": "Flow",
    "metadata": {"name": "f"},
    "spec": {
        "project": {"configMap": "f-project"},
        "nodes": [{"name": "step", "script": {"name": "step"}}],
        "defaults": {"podMetadata": {"annotations": {"kascade.io/kwok-run-for": "1s"}}},
    },
}


class Replica:
    """One operator process and its log."""

    def __init__(self, namespace: str, workdir: Path, lifetime: int) -> None:
        workdir.mkdir(parents=True)
        self.log_path = workdir / "operator.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in end()
        self.process = subprocess.Popen(
            [
                *KASCADE,
                "operator",
                "-n",
                namespace,
                "--kubeconfig",
                str(KUBECONFIG),
                "--state-dir",
                str(workdir / "state"),
                "--peering",
                PEERING,
                "--peering-lifetime",
                str(lifetime),
            ],
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, mark: str, timeout: float) -> float:
        """Poll the log for `mark`; the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while mark not in self.log():
            if time.monotonic() > deadline:
                raise SystemExit(f"no {mark!r} within {timeout}s:\n{self.log()[-2000:]}")
            time.sleep(0.05)
        return time.monotonic()

    def end(self, sig: signal.Signals) -> float:
        """Send a signal to the process group; the monotonic time it was sent."""
        sent = time.monotonic()
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)
        self.log_file.close()
        return sent


def one_failover(namespace: str, workdir: Path, sig: signal.Signals, lifetime: int) -> float:
    leader = Replica(namespace, workdir / "leader", lifetime)
    leader.wait_for("event=leading", 60)
    standby = Replica(namespace, workdir / "standby", lifetime)
    standby.wait_for("event=started executor", 60)
    time.sleep(2)  # let the standby see the leader's record and pause
    ended = leader.end(sig)
    run = kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        "-o",
        "name",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "kascade.io/v1alpha1",
                "kind": "Run",
                "metadata": {"generateName": "f-"},
                "spec": {"flowRef": {"name": "f"}},
            }
        ),
    )
    started = standby.wait_for("event=started job=", lifetime + 60)
    standby.end(signal.SIGTERM)
    kubectl("delete", "-n", namespace, run.strip(), "--wait=false")
    return started - ended


def main() -> None:
    namespace = f"bench-failover-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project"
            (project / "scripts" / "step").mkdir(parents=True)
            (project / "scripts" / "step" / "__main__.py").write_text("print('step')\n")
            push_project(project, "f-project", namespace)
            peering = {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": PEERING, "namespace": namespace},
            }
            kubectl("apply", "-f", "-", stdin=yaml.safe_dump(peering))
            kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(FLOW))
            cases = [
                ("graceful (SIGTERM), lifetime 60 s", signal.SIGTERM, 60),
                ("crash (SIGKILL), lifetime 60 s", signal.SIGKILL, 60),
                ("crash (SIGKILL), lifetime 15 s", signal.SIGKILL, 15),
            ]
            print(f"failover: leader ends -> standby creates the first Job ({REPEATS} each)")
            for label, sig, lifetime in cases:
                times = []
                for repeat in range(REPEATS):
                    workdir = Path(tmp) / f"{sig.name}-{lifetime}-{repeat}"
                    times.append(one_failover(namespace, workdir, sig, lifetime))
                print(
                    f"  {label:36s} median {statistics.median(times):6.1f} s "
                    f"(min {min(times):.1f}, max {max(times):.1f})"
                )
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    main()

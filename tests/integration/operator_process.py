"""The operator as a real process for tests: start, kill -9, start again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from tests.integration.cluster import ROOT, Cluster

READY_MARK = "event=started"


class OperatorProcess:
    """`kascade operator` watching one namespace, its output in a log file. `kubeconfig`
    overrides the cluster's admin kubeconfig (e.g. a service account's token)."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        workdir: Path,
        executor: str = "jobs",
        extra: tuple[str, ...] = (),
        kubeconfig: Path | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.workdir = workdir
        self.executor = executor
        self.extra = extra
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.log_path = workdir / "operator.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        mark = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kascade",
                "operator",
                "-n",
                self.namespace,
                "--executor",
                self.executor,
                "--kubeconfig",
                str(self.kubeconfig),
                "--state-dir",
                str(self.workdir / "state"),
                *self.extra,
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while READY_MARK not in self.log()[mark:]:
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited at start:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the operator did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """Kill -9: no chance to clean up, as in a crash."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if (self.log_path.exists())
            else ""
        )

    def tracebacks(self) -> list[str]:
        """Each traceback the operator logged, with the lines that follow it."""
        lines = self.log().splitlines()
        return [
            "\n".join(lines[index : index + 25])
            for index, line in enumerate(lines)
            if "Traceback" in line
        ]

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

"""Restarting the shared kube-apiserver of the kwok cluster. hack/cluster/up.sh runs it
with `kwokctl --runtime binary`: one process per component, started in its own session,
its pid in .cluster/kwok/clusters/<name>/pids/<component>.pid.

The API server is killed (-9) and, once its port is free, started again with the same
command line, working directory and environment, its new pid written where kwokctl
looks for it. (`kwokctl start cluster` alone cannot do it at once: a killed process stays
a zombie for a few seconds here, and kwokctl takes a zombie for a running process.)
kube-controller-manager and kube-scheduler exit when they lose their leader lease during
the outage; `heal` starts whatever component is not running with `kwokctl start cluster`,
which starts only those. A restart that fails falls back to `kwokctl start cluster` too,
so the shared cluster is never left down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.cluster import ROOT, Cluster, bin_dir
from tests.integration.waiting import wait_for

KWOK_WORKDIR = ROOT / ".cluster" / "kwok"
NAME = os.environ.get("KASCADE_CLUSTER_NAME", "kascade")
COMPONENT = "kube-apiserver"
READY_SECONDS = 90


@dataclass
class Restart:
    old_pid: int
    new_pid: int
    downtime: float
    """Seconds from the kill until /readyz answered ok again."""
    healed: list[str] = field(default_factory=list)
    """Components `kwokctl start cluster` had to start again afterwards."""


def cluster_dir() -> Path:
    return KWOK_WORKDIR / "clusters" / NAME


def pid_file(component: str = COMPONENT) -> Path:
    return cluster_dir() / "pids" / f"{component}.pid"


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, Z...), None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")


def ready(cluster: Cluster) -> bool:
    try:
        probe = cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def dead_components() -> list[str]:
    """Components whose recorded process is not running."""
    dead = []
    for path in sorted((cluster_dir() / "pids").glob("*.pid")):
        text = path.read_text().strip()
        if not text.isdigit() or not alive(int(text)):
            dead.append(path.stem)
    return dead


def heal(cluster: Cluster) -> list[str]:
    """Start the components that are not running (kwokctl starts only those); the ones
    started."""
    dead = dead_components()
    if dead or not ready(cluster):
        result = subprocess.run(
            [str(bin_dir() / "kwokctl"), "--name", NAME, "start", "cluster"],
            env={**os.environ, "KWOK_WORKDIR": str(KWOK_WORKDIR)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"kwokctl start cluster failed:\n{result.stderr[-2000:]}"
        wait_for(lambda: ready(cluster), bool, timeout=READY_SECONDS, what="/readyz after heal")
    return dead


def restart_apiserver(cluster: Cluster) -> Restart:
    """Kill -9 the kube-apiserver and start it again; back when /readyz says ok."""
    old = int(pid_file().read_text().strip())
    command = [
        part.decode() for part in Path(f"/proc/{old}/cmdline").read_bytes().split(b"\0") if part
    ]
    if not command or not command[0].endswith(COMPONENT):
        raise AssertionError(f"pid {old} is not {COMPONENT}: {command}")
    port = next(
        (int(arg.split("=", 1)[1]) for arg in command if arg.startswith("--secure-port=")), 6443
    )
    workdir = os.readlink(f"/proc/{old}/cwd")
    environment = dict(
        entry.decode().split("=", 1)
        for entry in Path(f"/proc/{old}/environ").read_bytes().split(b"\0")
        if b"=" in entry
    )
    started = time.monotonic()
    process: subprocess.Popen[bytes] | None = None
    try:
        os.kill(old, signal.SIGKILL)
        wait_for(
            lambda: (process_state(old), port_free(port)),
            lambda seen: seen[0] in (None, "Z") and seen[1],
            timeout=30,
            what=f"{COMPONENT} (pid {old}) to die and free port {port}",
            interval=0.05,
        )
        process = _start(command, workdir, environment)
        wait_for(
            lambda: ready(cluster) or process.poll() is not None,
            bool,
            timeout=READY_SECONDS,
            what=f"the restarted {COMPONENT} to be ready",
            interval=0.2,
        )
        if process.poll() is not None:
            raise AssertionError(
                f"the restarted {COMPONENT} exited {process.returncode}; see "
                f"{cluster_dir() / 'logs' / (COMPONENT + '.log')}"
            )
    finally:
        if not ready(cluster):  # never leave the shared cluster down
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            heal(cluster)
    downtime = time.monotonic() - started
    new = int(pid_file().read_text().strip())
    return Restart(old, new, downtime, heal(cluster))


def _start(
    command: list[str], workdir: str, environment: dict[str, str]
) -> subprocess.Popen[bytes]:
    log = cluster_dir() / "logs" / f"{COMPONENT}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file().write_text(str(process.pid))
    return process

"""What the cluster benchmarks share: kubectl and `kascade` on the local cluster, and a raw
watch that hands each object to a callback as plain JSON (decoding into client models would
cost the benchmark more CPU than what it measures)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"


def kubectl(*args: str, stdin: str | None = None) -> str:
    """Run the built kubectl against the local cluster; its stdout."""
    bin_dir = subprocess.run(
        [ROOT / "hack/cluster/build.sh", "--print-bin-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return subprocess.run(
        [f"{bin_dir}/kubectl", "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


KASCADE = [sys.executable, "-m", "kascade"]


def push_project(project: Path, name: str, namespace: str) -> None:
    """`kascade project push`: the project into ConfigMap `name` of the namespace."""
    subprocess.run(
        [*KASCADE, "project", "push", str(project), "--name", name, "-n", namespace,
         "--kubeconfig", str(KUBECONFIG)],
        check=True,
        capture_output=True,
    )  # fmt: skip


def api_client() -> client.ApiClient:
    return config.new_client_from_config(str(KUBECONFIG))


class RawWatch(threading.Thread):
    """Watch a list call in a thread, calling `seen(object)` for every event."""

    def __init__(
        self, list_call: Callable[..., Any], seen: Callable[[dict[str, Any]], None], *args: Any
    ) -> None:
        super().__init__(daemon=True)
        self.list_call = list_call
        self.seen = seen
        self.args = args
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            response = self.list_call(
                *self.args, watch=True, timeout_seconds=30, _preload_content=False
            )
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.seen(json.loads(line)["object"])
                if self.stop.is_set():
                    break
            response.release_conn()

"""The local control plane as tests see it: kubectl and the Python client on one kubeconfig."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / "hack" / "cluster"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"


def bin_dir() -> Path:
    """Where hack/cluster/build.sh keeps the binaries of the pinned versions."""
    out = subprocess.run(
        [CLUSTER_DIR / "build.sh", "--print-bin-dir"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


@dataclass
class Cluster:
    """A running cluster: run kubectl against it, or use the typed API clients."""

    kubeconfig: Path
    kubectl_path: Path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client())

    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client())

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client())

"""The local control plane as tests see it: kubectl and the Python client on one kubeconfig."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / "hack" / "cluster"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"


def _build_dir(flag: str) -> Path:
    out = subprocess.run(
        [CLUSTER_DIR / "build.sh", flag], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def bin_dir() -> Path:
    """Where hack/cluster/build.sh keeps the binaries of the pinned versions."""
    return _build_dir("--print-bin-dir")


def crd_dir() -> Path:
    """Where hack/cluster/build.sh keeps the prometheus-operator CRDs of the pinned version."""
    return _build_dir("--print-crd-dir")


def promtool() -> Path:
    """promtool (Debian package `prometheus`, installed by `make tools`); its absence fails
    the test with the reason."""
    found = shutil.which("promtool")
    if found is None:
        raise AssertionError(
            "promtool is not installed; metrics, alert rules and dashboard queries cannot be "
            "checked without it (`make tools`: apt-get install prometheus)"
        )
    return Path(found)


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

    def apply_crds(self, directory: Path) -> None:
        """Apply the CRDs of `directory` and wait until all are Established. A CRD just
        created may have no status yet, which makes `kubectl wait` fail at once rather
        than wait: try again until the deadline."""
        self.kubectl("apply", "-f", str(directory))
        deadline = time.monotonic() + 60
        while True:
            waited = self.kubectl(
                "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s", check=False
            )
            if waited.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the CRDs were not Established:\n{waited.stderr}")
            time.sleep(0.5)

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client())

    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client())

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client())

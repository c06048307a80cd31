"""The Helm chart as tests drive it: helm (built by hack/cluster/build.sh) on the test
cluster, rendered manifests as Python objects, promtool, and service-account kubeconfigs."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.integration.cluster import ROOT, Cluster

CHART = ROOT / "charts" / "kascade"
PROMTOOL_DATA = Path(__file__).parent / "promtool"


def run(args: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@dataclass
class Helm:
    """helm with its own config/cache/data folders, against the test cluster."""

    binary: Path
    kubeconfig: Path
    home: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.kubeconfig),
        }
        result = run([str(self.binary), *args], timeout=300, env=env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr}"
            )
        return result

    def values_file(self, values: dict[str, Any], name: str = "values.yaml") -> Path:
        path = self.home / name
        path.write_text(yaml.safe_dump(values), encoding="utf-8")
        return path

    def template_text(
        self, values: dict[str, Any], release: str = "kascade", namespace: str = "kascade"
    ) -> str:
        path = self.values_file(values, f"values-{release}.yaml")
        return self("template", release, str(CHART), "-n", namespace, "-f", str(path)).stdout

    def template(
        self, values: dict[str, Any], release: str = "kascade", namespace: str = "kascade"
    ) -> list[dict[str, Any]]:
        """The rendered objects (empty documents dropped)."""
        text = self.template_text(values, release, namespace)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def install(
        self, release: str, namespace: str, values: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        path = self.values_file(values, f"values-{release}.yaml")
        return self("install", release, str(CHART), "-n", namespace, "-f", str(path), check=check)


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container_args(objects: list[dict[str, Any]]) -> list[str]:
    deployment = only(objects, "Deployment")
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the service account (a fresh token), with the
    server and CA of the cluster's admin kubeconfig."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    server = dict(admin["clusters"][0]["cluster"])
    if "certificate-authority" in server:
        ca = Path(server.pop("certificate-authority"))
        if not ca.is_absolute():
            ca = cluster.kubeconfig.parent / ca
        server["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": server}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "test", "user": user, "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path

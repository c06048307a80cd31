"""The real node as end-to-end tests see it: the local cluster (hack/cluster/up.sh) with
its kubelet node kascade-node-0 (hack/node/up.sh: containerd, runc, a CNI bridge), the
runtime image built without Docker (hack/image/build.sh) imported there, and the test
PostgreSQL server listening on the node's bridge address. Anything missing fails the
test with the reason; nothing is skipped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.integration.cluster import CLUSTER_DIR, KUBECONFIG, ROOT, Cluster, bin_dir

NODE_NAME = "kascade-node-0"
# The machine as pods on the node's bridge see it (hack/node/node.env NODE_HOST_IP).
NODE_HOST = "10.88.0.1"
PLACEMENT: dict[str, Any] = {
    "nodeSelector": {"kascade.dev/node": "real"},
    "tolerations": [{"key": "kascade.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}],
}
_TAIL = 40


def _script(path: Path, timeout: float) -> None:
    try:
        done = subprocess.run(
            [str(path)], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise AssertionError(f"{path.relative_to(ROOT)} could not run: {err}") from err
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-_TAIL:]
        raise AssertionError(
            f"{path.relative_to(ROOT)} exited {done.returncode}:\n" + "\n".join(tail)
        )


def runtime_image() -> str:
    """The tag hack/image/build.sh gives the runtime image (the operator's default image)."""
    printed = subprocess.run(
        [str(ROOT / "hack" / "image" / "build.sh"), "--print-tag"],
        capture_output=True,
        text=True,
        check=True,
    )
    return printed.stdout.strip()


def is_up() -> bool:
    """Whether a cluster answers on the kubeconfig `make cluster-up` writes."""
    if not KUBECONFIG.is_file():
        return False
    probe = subprocess.run(
        [str(bin_dir() / "kubectl"), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def tear_down() -> None:
    _script(CLUSTER_DIR / "down.sh", timeout=300)


def bring_up() -> Cluster:
    """The cluster with its real node, and PostgreSQL listening where pods reach it."""
    _script(CLUSTER_DIR / "up.sh", timeout=90 * 60)
    _script(ROOT / "hack" / "postgres" / "up.sh", timeout=300)
    cluster = Cluster(kubeconfig=KUBECONFIG, kubectl_path=bin_dir() / "kubectl")
    cluster.apply_crds(ROOT / "crds")
    node = json.loads(cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    images = {
        name for image in node["status"].get("images", []) for name in image.get("names") or []
    }
    image = runtime_image()
    assert any(name.endswith(image) for name in images), (
        f"the runtime image {image} is not on node {NODE_NAME} (make runtime-image, then "
        f"hack/node/up.sh imports it); the node has {sorted(images)}"
    )
    return cluster


@contextmanager
def restricted_namespace(cluster: Cluster, name: str) -> Iterator[str]:
    """A fresh namespace whose Pod Security admission enforces the `restricted` profile."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    namespace = f"e2e-{slug}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    cluster.kubectl(
        "wait", "--for=create", "serviceaccount/default", "-n", namespace, "--timeout=60s"
    )
    try:
        yield namespace
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def kascade(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args, "--kubeconfig", str(KUBECONFIG)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def on_the_node(flow: dict[str, Any]) -> dict[str, Any]:
    """The Flow with its task pods placed on the real node (spec.defaults)."""
    defaults = flow["spec"].setdefault("defaults", {})
    defaults.update(PLACEMENT)
    return flow


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def objects(cluster: Cluster, namespace: str, kinds: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", kinds, "-n", namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def pods_of(cluster: Cluster, namespace: str, job: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    """The task container's terminated state (AssertionError when it has none)."""
    (status,) = pod["status"]["containerStatuses"]
    state: dict[str, Any] | None = status["state"].get("terminated")
    assert state is not None, f"pod {pod['metadata']['name']} has not ended: {status['state']}"
    return state

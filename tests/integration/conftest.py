"""Session fixtures for the integration tier: a real control plane, brought up once.

The cluster is started by hack/cluster/up.sh (which builds the binaries first when they
are not cached). If that fails, every integration test fails with the reason; nothing is
skipped. A cluster this session started is deleted at the end (set KASCADE_KEEP_CLUSTER=1
to keep it); one that was already up (`make cluster-up`) is left running.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import CLUSTER_DIR, KUBECONFIG, ROOT, Cluster, bin_dir
from tests.integration.operator_process import OperatorProcess

_TAIL = 40


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def _run(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_DIR / script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def _already_up() -> bool:
    if not KUBECONFIG.is_file():
        return False
    try:
        kubectl = bin_dir() / "kubectl"
    except (OSError, subprocess.CalledProcessError):
        return False
    probe = (
        subprocess.run(
            [str(kubectl), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if kubectl.exists()
        else None
    )
    return probe is not None and probe.returncode == 0


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    was_up = _already_up()
    try:
        started = _run("up.sh", timeout=90 * 60)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(
            f"the local Kubernetes control plane could not be started: {err}", pytrace=False
        )
    if started.returncode != 0:
        output = (started.stdout + started.stderr).strip().splitlines()[-_TAIL:]
        pytest.fail(
            "the local Kubernetes control plane could not be started (hack/cluster/up.sh "
            f"exited {started.returncode}); integration tests need Go and the Go module "
            "proxy to build it:\n" + "\n".join(output),
            pytrace=False,
        )
    handle = Cluster(kubeconfig=KUBECONFIG, kubectl_path=bin_dir() / "kubectl")
    handle.apply_crds(ROOT / "crds")
    yield handle
    if not was_up and not os.environ.get("KASCADE_KEEP_CLUSTER"):
        _run("down.sh", timeout=300)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A running `kascade operator` (jobs executor) watching the test's namespace."""
    process = OperatorProcess(cluster, namespace, tmp_path)
    process.start()
    yield process
    process.stop()
    errors = process.tracebacks()
    assert not errors, "the operator logged errors:\n" + "\n\n".join(errors[:3])

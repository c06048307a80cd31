"""Task pods on the real node (kubelet, containerd, runc; tests/e2e/real_node.py): the
operator's `jobs` executor runs the example, every task a real container of the runtime
image built without Docker running `kascade task exec` → dbt → PostgreSQL, in namespaces
whose Pod Security admission enforces `restricted`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import watch

from tests.campaign.support import running_operator
from tests.e2e.real_node import (
    NODE_HOST,
    NODE_NAME,
    apply,
    bring_up,
    is_up,
    kascade,
    objects,
    on_the_node,
    pods_of,
    restricted_namespace,
    tear_down,
    terminated,
)
from tests.e2e.test_dbt_build_parity import copy_shop
from tests.e2e.test_postgres_warehouse import assert_what_dbt_build_leaves
from tests.integration.cluster import Cluster
from tests.postgres import USER, Postgres, running_server
from tests.projects import write_project

FLOW_HEADER = "apiVersion: kascade.io/v1alpha1\nkind: Flow\n"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The cluster with its real node; one this module started is deleted afterwards
    (KASCADE_KEEP_CLUSTER=1 keeps it), one that was up (`make cluster-up`) stays."""
    was_up = is_up()
    yield bring_up()
    if not was_up and not os.environ.get("KASCADE_KEEP_CLUSTER"):
        tear_down()


@pytest.fixture(scope="module")
def server(cluster: Cluster) -> Postgres:
    return running_server()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    with restricted_namespace(cluster, request.node.name) as name:
        yield name


def pod_url(server: Postgres, database: str) -> str:
    return f"postgresql://{USER}@{NODE_HOST}:{server.port}/{database}"


def warehouse(server: Postgres, database: str) -> dict[str, Any]:
    return {
        "type": "postgres",
        "host": NODE_HOST,
        "port": server.port,
        "database": database,
        "user": USER,
        "passwordSecretRef": {"name": "warehouse", "key": "password"},
    }


def push(
    cluster: Cluster, namespace: str, project: Path, url: str, server: Postgres | None = None
) -> None:
    """The project in a ConfigMap (with dbt's parse state for `url`), and the warehouse
    password in the Secret `warehouse` when the flow uses the server."""
    if server is not None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "warehouse"},
            "stringData": {"password": server.password},
        }
        apply(cluster, namespace, secret)
    pushed = kascade(
        "project", "push", str(project), "--name", "project", "-n", namespace, "--warehouse", url
    )
    assert pushed.returncode == 0, pushed.stderr


def trigger(flow: str, namespace: str, wait: bool = True) -> subprocess.CompletedProcess[str]:
    return kascade("trigger", flow, "-n", namespace, *(["--wait"] if wait else []))


def tasks_by_id(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    return {task["spec"]["id"]: task for task in objects(cluster, namespace, "tasks")}


def test_the_example_runs_in_real_pods_and_leaves_what_dbt_build_leaves(
    cluster: Cluster, server: Postgres, namespace: str, tmp_path: Path
) -> None:
    with server.database() as database:
        project = copy_shop(tmp_path / "shop")
        push(cluster, namespace, project, pod_url(server, database), server)
        flow = on_the_node(yaml.safe_load((project / "flow.yaml").read_text()))
        flow["spec"]["project"] = {"configMap": "project"}
        flow["spec"]["warehouse"] = warehouse(server, database)
        apply(cluster, namespace, flow)
        with running_operator(cluster, namespace, tmp_path / "operator") as process:
            ran = trigger("shop-daily", namespace)
            assert ran.returncode == 0, ran.stderr[-3000:]
            run = ran.stdout.strip()
            status = kascade("status", run, "-n", namespace)
            logs = kascade("logs", run, "-n", namespace)
        tasks = tasks_by_id(cluster, namespace)

        # every task that ran is a real container on the real node, ended by its own exit
        phases = {task_id: task["status"]["phase"] for task_id, task in tasks.items()}
        assert phases.pop("alert") == "SKIPPED"  # the onFailure hook
        assert set(phases.values()) == {"SUCCEEDED"}, phases
        ran_tasks = [tasks[task_id] for task_id in phases]
        for task in ran_tasks:
            attempts = task["status"]["attempts"]
            assert len(attempts) == 1, (task["spec"]["id"], attempts)
            (attempt,) = attempts
            (pod,) = pods_of(cluster, namespace, attempt["jobName"])
            assert pod["spec"]["nodeName"] == NODE_NAME
            state = terminated(pod)
            assert state["containerID"].startswith("containerd://")
            assert state["exitCode"] == 0
            # outputs travel through the real termination message
            if task["status"].get("outputs"):
                assert json.loads(state["message"]) == task["status"]["outputs"]
        assert tasks["raw_orders"]["status"]["outputs"]["rows"] == 30

        # the password reaches pods only from the Secret
        job = cluster.kubectl("get", "job", attempt["jobName"], "-n", namespace, "-o", "json")
        env = json.loads(job.stdout)["spec"]["template"]["spec"]["containers"][0]["env"]
        (password_env,) = [var for var in env if var["name"] == "PGPASSWORD"]
        assert password_env["valueFrom"]["secretKeyRef"] == {"name": "warehouse", "key": "password"}

        # what `dbt build` of the same project leaves on the same server
        assert_what_dbt_build_leaves(server, database, tmp_path)

        # the password is in no record, Event, log or output
        assert "OK created" in logs.stdout or "OK inserted" in logs.stdout, logs.stdout[-2000:]
        shown = ran.stdout + ran.stderr + status.stdout + logs.stdout + logs.stderr
        shown += process.log()
        for kinds in ("configmaps", "flows", "runs", "tasks", "jobs", "pods", "events"):
            shown += json.dumps(objects(cluster, namespace, kinds))
        assert server.password not in shown


def test_a_failing_model_ends_its_container_with_the_databases_message(
    cluster: Cluster, server: Postgres, namespace: str, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "project",
        {
            "models/fine.sql": "select 1 as x",
            "models/broken.sql": (
                "{{ config(materialized='table') }}\nselect 1 / (x - 1) as y from {{ ref('fine') }}"
            ),
        },
    )
    flow = on_the_node(
        yaml.safe_load(
            FLOW_HEADER + "metadata: {name: broken}\nspec:\n  project: {configMap: project}\n"
            "  nodes:\n    - name: all\n      transformation: {}\n"
        )
    )
    with server.database() as database:
        push(cluster, namespace, project, pod_url(server, database), server)
        flow["spec"]["warehouse"] = warehouse(server, database)
        apply(cluster, namespace, flow)
        with running_operator(cluster, namespace, tmp_path / "operator"):
            ran = trigger("broken", namespace)
    assert ran.returncode != 0
    broken = tasks_by_id(cluster, namespace)["broken"]
    assert broken["status"]["phase"] == "FAILED"
    (attempt,) = broken["status"]["attempts"]
    assert attempt["exitCode"] == 1
    assert "division by zero" in broken["status"]["message"], broken["status"]
    (pod,) = pods_of(cluster, namespace, attempt["jobName"])
    assert terminated(pod)["exitCode"] == 1


SCRIPTS = {
    "scripts/produce/__main__.py": (
        "import json, os\n"
        "with open(os.environ['KASCADE_OUTPUTS'], 'w') as out:\n"
        "    json.dump({'rows': 7, 'host': os.uname().nodename}, out)\n"
    ),
    "scripts/consume/__main__.py": (
        "import json, os, sys\n"
        "with open(os.environ['KASCADE_OUTPUTS'], 'w') as out:\n"
        "    json.dump({'seen': int(sys.argv[1]) * 2}, out)\n"
    ),
    "scripts/flaky/__main__.py": "import sys\nprint('failing on purpose')\nsys.exit(3)\n",
}


def test_outputs_pass_between_pods_and_a_retry_is_a_new_pod(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project", SCRIPTS)
    push(cluster, namespace, project, "duckdb:////kascade/work/warehouse.duckdb")
    flow = on_the_node(
        yaml.safe_load(
            FLOW_HEADER + "metadata: {name: passing}\nspec:\n  project: {configMap: project}\n"
            "  nodes:\n"
            "    - {name: produce, script: {name: produce}}\n"
            "    - name: consume\n      dependsOn: [produce]\n"
            "      script: {name: consume, args: ['{{ tasks.produce.outputs.rows }}']}\n"
            "    - name: flaky\n      retries: 1\n      retryDelaySeconds: 0\n"
            "      script: {name: flaky}\n"
        )
    )
    apply(cluster, namespace, flow)
    with running_operator(cluster, namespace, tmp_path / "operator"):
        ran = trigger("passing", namespace)
    assert ran.returncode != 0  # flaky fails twice
    tasks = tasks_by_id(cluster, namespace)
    produced = tasks["produce"]["status"]["outputs"]
    assert produced["rows"] == 7
    (pod,) = pods_of(cluster, namespace, tasks["produce"]["status"]["attempts"][0]["jobName"])
    assert produced["host"] == pod["metadata"]["name"]  # written inside that very pod
    assert tasks["consume"]["status"]["outputs"] == {"seen": 14}

    attempts = tasks["flaky"]["status"]["attempts"]
    assert [a["exitCode"] for a in attempts] == [3, 3]
    pods = [pods_of(cluster, namespace, a["jobName"]) for a in attempts]
    assert all(len(found) == 1 for found in pods)
    first, second = (found[0] for found in pods)
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert terminated(first)["containerID"] != terminated(second)["containerID"]


class PodWatcher:
    """Every state the API server reports of a namespace's pods, until stopped."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.core = cluster.core()
        self.namespace = namespace
        self.seen: list[tuple[float, str, dict[str, Any]]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self.core.list_namespaced_pod, self.namespace, timeout_seconds=300
            ):
                pod = event["object"].to_dict()
                self.seen.append((time.monotonic(), event["type"], pod))
        except Exception:  # the stream ends with an error when the test stops watching
            return

    def __enter__(self) -> PodWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def exit_codes(self) -> list[tuple[float, int]]:
        codes = []
        for at, _, pod in self.seen:
            for status in (pod.get("status") or {}).get("container_statuses") or []:
                ended = (status.get("state") or {}).get("terminated")
                if ended:
                    codes.append((at, ended["exit_code"]))
        return codes


def test_abort_stops_the_containers_with_sigterm(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "project",
        {
            "scripts/sleeper/__main__.py": (
                "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n"
            )
        },
    )
    push(cluster, namespace, project, "duckdb:////kascade/work/warehouse.duckdb")
    flow = on_the_node(
        yaml.safe_load(
            FLOW_HEADER + "metadata: {name: sleepy}\nspec:\n  project: {configMap: project}\n"
            "  nodes:\n    - {name: sleeper, script: {name: sleeper}}\n"
        )
    )
    apply(cluster, namespace, flow)
    with (
        running_operator(cluster, namespace, tmp_path / "operator"),
        PodWatcher(cluster, namespace) as pods,
    ):
        started = trigger("sleepy", namespace, wait=False)
        assert started.returncode == 0, started.stderr
        run = started.stdout.strip()
        deadline = time.monotonic() + 120
        while (
            "sleeping"
            not in cluster.kubectl(
                "logs", "-n", namespace, "-l", "kascade.io/task=sleeper", check=False
            ).stdout
        ):
            assert time.monotonic() < deadline, "the sleeper never started"
            time.sleep(0.5)
        aborted_at = time.monotonic()
        aborted = kascade("abort", run, "-n", namespace)
        assert aborted.returncode == 0, aborted.stderr
        deadline = time.monotonic() + 60
        while not pods.exit_codes():
            assert time.monotonic() < deadline, "the container did not end after the abort"
            time.sleep(0.2)
        phase = ""
        while phase != "ABORTED":
            assert time.monotonic() < deadline, f"the run is {phase}, not ABORTED"
            shown = kascade("status", run, "-n", namespace, "-o", "json")
            phase = json.loads(shown.stdout)["run"]["status"].get("phase", "")
            time.sleep(0.5)
    (at, code), *_ = pods.exit_codes()
    assert code == 143
    assert at - aborted_at < 30  # within the default grace period
    assert not objects(cluster, namespace, "jobs")


def test_restricted_namespaces_refuse_what_task_pods_are_not(
    cluster: Cluster, namespace: str
) -> None:
    """The namespaces these tests run in do enforce the profile: a pod without its
    settings is refused there, so task pods being admitted means something."""
    refused = cluster.kubectl(
        "run", "plain", "-n", namespace, f"--image={NODE_NAME}/none", "--restart=Never", check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_a_profiles_yml_from_a_secret_is_the_warehouse_of_real_pods(
    cluster: Cluster, server: Postgres, namespace: str, tmp_path: Path
) -> None:
    """spec.warehouse type profiles: a whole dbt profiles.yml in a Secret (here with the
    password written in it, as users of other adapters do), mounted by every task pod."""
    project = write_project(
        tmp_path / "project",
        {
            "models/one.sql": "{{ config(materialized='table') }}\nselect 41 + 1 as answer",
            "models/two.sql": "select answer * 2 as double from {{ ref('one') }}",
        },
    )
    with server.database() as database:
        profiles = {
            "analytics": {
                "target": "prod",
                "outputs": {
                    "prod": {
                        "type": "postgres", "host": NODE_HOST, "port": server.port,
                        "user": USER, "password": server.password, "dbname": database,
                        "schema": "marts", "threads": 4,
                    }
                },
            }
        }  # fmt: skip
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "dbt-profiles"},
            "stringData": {"profiles.yml": yaml.safe_dump(profiles)},
        }
        apply(cluster, namespace, secret)
        push(cluster, namespace, project, "duckdb:////kascade/work/warehouse.duckdb")
        flow = on_the_node(
            yaml.safe_load(
                FLOW_HEADER + "metadata: {name: profiled}\nspec:\n"
                "  project: {configMap: project}\n"
                "  warehouse:\n    type: profiles\n"
                "    profilesSecretRef: {name: dbt-profiles, key: profiles.yml}\n"
                "  nodes:\n    - name: all\n      transformation: {}\n"
            )
        )
        apply(cluster, namespace, flow)
        with running_operator(cluster, namespace, tmp_path / "operator") as process:
            ran = trigger("profiled", namespace)
            assert ran.returncode == 0, ran.stderr[-3000:]
        with server.connect(database) as connection:
            assert connection.execute("select double from marts.two").fetchone() == (84,)
        shown = ran.stdout + ran.stderr + process.log()
        for kinds in ("configmaps", "flows", "runs", "tasks", "jobs", "events"):
            shown += json.dumps(objects(cluster, namespace, kinds))
        assert server.password not in shown


def test_pod_settings_reach_the_real_pod(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Affinity (instead of a node selector) places the pod; a Secret volume and an
    emptyDir are mounted where the flow says; the pod securityContext is the flow's; a
    podSpecPatch reaches the container and the pod."""
    project = write_project(
        tmp_path / "project",
        {
            "scripts/reader/__main__.py": (
                "import json, os\n"
                "greeting = open('/etc/extra/greeting').read() + os.environ['SUFFIX']\n"
                "open('/scratch/note', 'w').write(greeting)\n"
                "with open(os.environ['KASCADE_OUTPUTS'], 'w') as out:\n"
                "    json.dump({'greeting': greeting, 'uid': os.getuid(),\n"
                "               'groups': sorted(os.getgroups())}, out)\n"
            )
        },
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "extra"},
        "stringData": {"greeting": "hello from a volume"},
    }
    apply(cluster, namespace, secret)
    push(cluster, namespace, project, "duckdb:////kascade/work/warehouse.duckdb")
    real = {"key": "kascade.dev/node", "operator": "In", "values": ["real"]}
    flow = yaml.safe_load(
        FLOW_HEADER + "metadata: {name: settled}\nspec:\n  project: {configMap: project}\n"
        "  nodes:\n    - {name: reader, script: {name: reader}}\n"
    )
    flow["spec"]["defaults"] = {
        "tolerations": [
            {"key": "kascade.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [real]}]
                }
            }
        },
        "volumes": [
            {"name": "extra", "secret": {"secretName": "extra"}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "16Mi"}},
        ],
        "volumeMounts": [
            {"name": "extra", "mountPath": "/etc/extra", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 4321,
            "fsGroup": 4242,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # what no field covers: strategic merge into the task container and the pod
        "podSpecPatch": {
            "containers": [{"name": "task", "env": [{"name": "SUFFIX", "value": "!"}]}],
            "terminationGracePeriodSeconds": 7,
        },
    }
    apply(cluster, namespace, flow)
    with running_operator(cluster, namespace, tmp_path / "operator"):
        ran = trigger("settled", namespace)
    assert ran.returncode == 0, ran.stderr[-3000:]
    task = tasks_by_id(cluster, namespace)["reader"]
    outputs = task["status"]["outputs"]
    assert outputs["greeting"] == "hello from a volume!"
    assert outputs["uid"] == 4321
    assert 4242 in outputs["groups"]  # fsGroup
    (pod,) = pods_of(cluster, namespace, task["status"]["attempts"][0]["jobName"])
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["terminationGracePeriodSeconds"] == 7


def test_a_wrong_password_fails_the_pod_with_the_servers_words(
    cluster: Cluster, server: Postgres, namespace: str, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project", {"models/one.sql": "select 1 as x"})
    flow = on_the_node(
        yaml.safe_load(
            FLOW_HEADER + "metadata: {name: locked}\nspec:\n  project: {configMap: project}\n"
            "  nodes:\n    - name: all\n      transformation: {}\n"
        )
    )
    with server.database() as database:
        push(cluster, namespace, project, pod_url(server, database))
        wrong = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "warehouse"},
            "stringData": {"password": "not-the-password"},
        }
        apply(cluster, namespace, wrong)
        flow["spec"]["warehouse"] = warehouse(server, database)
        apply(cluster, namespace, flow)
        with running_operator(cluster, namespace, tmp_path / "operator"):
            ran = trigger("locked", namespace)
    assert ran.returncode != 0
    one = tasks_by_id(cluster, namespace)["one"]
    assert one["status"]["phase"] == "FAILED"
    assert 'password authentication failed for user "kascade"' in one["status"]["message"]
    assert "not-the-password" not in json.dumps(objects(cluster, namespace, "tasks"))

"""The Helm chart charts/kascade on the real control plane: it lints, renders what the API
server accepts, installs, upgrades and uninstalls cleanly, grants the operator exactly
enough (proven by running the operator as the chart's ServiceAccount), and its alerts and
dashboard queries hold up under promtool."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kascade.operator.metrics import Metrics
from tests.integration.cluster import Cluster, bin_dir, crd_dir, promtool
from tests.integration.helm import (
    CHART,
    PROMTOOL_DATA,
    Helm,
    container_args,
    find,
    only,
    run,
    service_account_kubeconfig,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import (
    RUN_FOR,
    TERMINAL,
    kascade,
    phase_of,
    setup_flow,
    trigger,
)
from tests.integration.waiting import wait_for

GROUP, VERSION = "kascade.io", "v1alpha1"
INSTANCE = "app.kubernetes.io/instance"
NODE = "kwok-node-0"
PROM_CRDS = (
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
)

# Every optional feature on: lint and dry-run must accept all of it.
EVERYTHING: dict[str, Any] = {
    "replicaCount": 2,
    "warehouse": "duckdb:///var/lib/kascade/warehouse.duckdb",
    "maxActiveRuns": 20,
    "maxFlowDepth": 2,
    "logLevel": "debug",
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccount": {"annotations": {"example.com/role": "kascade"}},
    "podAnnotations": {"example.com/team": "data"},
    "podLabels": {"team": "data"},
    "priorityClassName": "kascade-high",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "data"}],
    "affinity": {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "preference": {
                        "matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]
                    },
                }
            ]
        }
    },
    "metrics": {
        "service": {"annotations": {"example.com/scrape": "true"}},
        "serviceMonitor": {
            "enabled": True,
            "interval": "15s",
            "scrapeTimeout": "10s",
            "labels": {"release": "prometheus"},
        },
    },
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "grafanaDashboard": {"annotations": {"grafana_folder": "kascade"}},
}
MONITORING: dict[str, Any] = {
    "metrics": {"serviceMonitor": {"enabled": True}},
    "prometheusRule": {"enabled": True},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def policy_only_in(namespace: str) -> dict[str, Any]:
    """Values that keep an installed release's admission policy to one namespace: the
    cluster is shared, and a cluster-wide policy would check other tests' users too."""
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return {"admissionPolicy": {"namespaceSelector": selector}}


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = bin_dir() / "helm"
    if not binary.is_file():
        pytest.fail(f"helm is not built: {binary} is missing (hack/cluster/build.sh)")
    return Helm(binary, cluster.kubeconfig, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def monitoring_crds(cluster: Cluster) -> None:
    """The prometheus-operator CRDs, so that ServiceMonitor and PrometheusRule dry-run."""
    folder = crd_dir()
    missing = [name for name in PROM_CRDS if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"prometheus-operator CRDs missing in {folder}: {missing} (build.sh)")
    for name in PROM_CRDS:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=kascade-tests",
            "-f", str(folder / name),
        )  # fmt: skip
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com",
    )  # fmt: skip


@pytest.fixture
def make_namespace(cluster: Cluster) -> Iterator[Callable[[str], str]]:
    """Create extra namespaces (deleted, without waiting, after the test)."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = unique(prefix)
        cluster.kubectl("create", "namespace", name)
        made.append(name)
        return name

    yield make
    for name in made:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def releases(helm: Helm) -> Iterator[list[tuple[str, str]]]:
    """(release, namespace) pairs to uninstall after the test, so that no cluster-scoped
    object of a failed test is left in the shared cluster."""
    installed: list[tuple[str, str]] = []
    yield installed
    for release, namespace in installed:
        helm("uninstall", release, "-n", namespace, "--ignore-not-found", check=False)


def rules_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        rule
        for kind in ("Role", "ClusterRole")
        for role in find(objects, kind)
        for rule in role.get("rules") or []
    ]


def can_i(cluster: Cluster, account: str, *args: str) -> bool:
    answer = cluster.kubectl("auth", "can-i", *args, "--as", account, check=False)
    assert answer.stdout.strip() in {"yes", "no"}, answer.stderr
    return answer.stdout.strip() == "yes"


# --- lint and render --------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_lint_is_strictly_clean(helm: Helm, values: dict[str, Any]):
    path = helm.values_file(values, "lint.yaml")
    linted = helm("lint", "--strict", str(CHART), "-f", str(path), check=False)
    out = linted.stdout + linted.stderr
    assert linted.returncode == 0, out
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out, out
    assert "[ERROR]" not in out, out


VALUE_SETS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "defaults": lambda watched: {},
    "namespaced": lambda watched: {"watchNamespaces": watched},
    "two-replicas": lambda watched: {"replicaCount": 2},
    "two-replicas-namespaced": lambda watched: {"replicaCount": 2, "watchNamespaces": watched},
    "monitoring": lambda watched: {**MONITORING, "grafanaDashboard": {"namespace": watched[0]}},
    "everything": lambda watched: EVERYTHING,
}


@pytest.mark.parametrize("case", list(VALUE_SETS))
def test_the_api_server_accepts_the_rendered_manifests(
    cluster: Cluster,
    helm: Helm,
    monitoring_crds: None,
    namespace: str,
    make_namespace: Callable[[str], str],
    case: str,
):
    # The release namespace enforces the "restricted" Pod Security profile, which (for a
    # Deployment) shows as warnings on the dry-run.
    restricted = [f"pod-security.kubernetes.io/{mode}=restricted" for mode in ("enforce", "warn")]
    cluster.kubectl("label", "namespace", namespace, *restricted)
    watched = [make_namespace("wa"), make_namespace("wb")]
    release = unique("dry")
    text = helm.template_text(VALUE_SETS[case](watched), release, namespace)
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    applied = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=text, check=False)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.strip().splitlines()
    assert len(lines) == len(objects), applied.stdout
    assert all(line.endswith("created (server dry run)") for line in lines), applied.stdout
    assert "PodSecurity" not in applied.stderr, applied.stderr


def test_the_operator_arguments_follow_the_values(helm: Helm):
    defaults = container_args(helm.template({}))
    assert defaults == [
        "operator",
        "--executor", "jobs",
        "--image", "ghcr.io/kascade/runtime:0.1.0",
        "--max-flow-depth", "5",
        "--state-dir", "/var/lib/kascade",
        "--liveness", "http://0.0.0.0:8081/healthz",
        "--metrics-address", "0.0.0.0:8080",
    ]  # fmt: skip
    args = container_args(
        helm.template(
            {
                **EVERYTHING,
                "watchNamespaces": ["a", "b"],
                "runtimeImage": {"repository": "example.com/rt", "tag": "7"},
                "metrics": {"port": 9090},
                "peering": {"lifetimeSeconds": 20},
            },
            release="prod",
        )
    )
    assert args == [
        "operator",
        "-n", "a",
        "-n", "b",
        "--executor", "jobs",
        "--image", "example.com/rt:7",
        "--warehouse", "duckdb:///var/lib/kascade/warehouse.duckdb",
        "--max-active-runs", "20",
        "--max-flow-depth", "2",
        "--state-dir", "/var/lib/kascade",
        "--liveness", "http://0.0.0.0:8081/healthz",
        "--metrics-address", "0.0.0.0:9090",
        "--peering", "prod-kascade",
        "--peering-lifetime", "20",
        "-v",
    ]  # fmt: skip
    no_metrics = container_args(helm.template({"metrics": {"enabled": False}}))
    assert "--metrics-address" not in no_metrics


def test_the_deployment_is_one_writer_restricted_and_probed(helm: Helm):
    objects = helm.template({})
    deployment = only(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/kascade/operator:0.1.0"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/var/lib/kascade": "state", "/tmp": "tmp"}
    assert {v["name"]: v for v in pod["volumes"]}["state"]["emptyDir"] == {}
    assert {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"} in container["env"]
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert find(objects, "ServiceMonitor") == []
    assert find(objects, "PrometheusRule") == []
    dashboard = only(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["kascade.json"])["title"] == "kascade"


@pytest.mark.parametrize(
    "values",
    [{}, {"watchNamespaces": ["a", "b"]}, {"replicaCount": 3}, EVERYTHING],
    ids=["cluster-wide", "namespaced", "peering", "everything"],
)
def test_rbac_has_no_wildcards_and_no_secrets(helm: Helm, values: dict[str, Any]):
    objects = helm.template(values)
    rules = rules_of(objects)
    assert rules
    for rule in rules:
        for field in ("verbs", "resources", "apiGroups", "resourceNames"):
            assert "*" not in " ".join(rule.get(field, [])), rule
        assert "nonResourceURLs" not in rule, rule
        assert "secrets" not in rule["resources"], rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])


def test_rbac_is_namespaced_when_namespaces_are_watched(helm: Helm):
    objects = helm.template({"watchNamespaces": ["a", "b"], "replicaCount": 2}, "r", "ops")
    roles = find(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    bindings = find(objects, "RoleBinding")
    assert {b["metadata"]["namespace"] for b in bindings} == {"a", "b"}
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "r-kascade", "namespace": "ops"}
        ]
    (cluster_role,) = find(objects, "ClusterRole")
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    assert {tuple(rule["verbs"]) for rule in cluster_role["rules"]} == {("get", "list", "watch")}
    peerings = find(objects, "KopfPeering", "r-kascade")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["a", "b"]
    assert find(objects, "ClusterKopfPeering") == []


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicas": 2}, "'replicas'"),
        ({"logLevel": "verbose"}, "/logLevel"),
        ({"maxActiveRuns": 0}, "/maxActiveRuns"),
        ({"maxFlowDepth": 101}, "/maxFlowDepth"),
        ({"watchNamespaces": ["Bad_Namespace"]}, "/watchNamespaces/0"),
        ({"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"metrics": {"port": 8081}}, "/metrics/port"),
        ({"metrics": {"serviceMonitor": {"intervall": "1m"}}}, "'intervall'"),
        ({"prometheusRule": {"runsFailing": {"window": "15 min"}}}, "/runsFailing/window"),
        ({"prometheusRule": {"runStuck": {"phases": ["DONE"]}}}, "/runStuck/phases/0"),
        ({"peering": {"lifetimeSeconds": 2}}, "/peering/lifetimeSeconds"),
        (
            {"metrics": {"enabled": False}, "prometheusRule": {"enabled": True}},
            "prometheusRule.enabled",
        ),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor.enabled",
        ),
        ({"podLabels": {"app.kubernetes.io/name": "x"}}, "app.kubernetes.io/name"),
    ],
)  # fmt: skip
def test_bad_values_fail_naming_the_field(helm: Helm, values: dict[str, Any], named: str):
    path = helm.values_file(values, "bad.yaml")
    rendered = helm("template", "x", str(CHART), "-f", str(path), check=False)
    assert rendered.returncode != 0, rendered.stdout[:500]
    assert named in rendered.stderr, rendered.stderr


# --- install, upgrade, uninstall ----------------------------------------------------------


def release_pods(cluster: Cluster, namespace: str, release: str) -> list[Any]:
    return (
        cluster.core().list_namespaced_pod(namespace, label_selector=f"{INSTANCE}={release}").items
    )


def pods_seen(pods: list[Any]) -> list[tuple[str, str | None, str | None, bool]]:
    return [
        (
            p.metadata.name,
            p.spec.node_name,
            p.status.phase,
            p.metadata.deletion_timestamp is not None,
        )
        for p in pods
    ]


def leftovers(cluster: Cluster, namespace: str, release: str) -> list[str]:
    namespaced = cluster.kubectl(
        "get", "all,serviceaccounts,configmaps,roles,rolebindings,kopfpeerings",
        "-n", namespace, "-l", f"{INSTANCE}={release}", "-o", "name",
    )  # fmt: skip
    records = cluster.kubectl(
        "get", "secrets", "-n", namespace, "-l", f"owner=helm,name={release}", "-o", "name"
    )
    cluster_wide = cluster.kubectl(
        "get", "clusterroles,clusterrolebindings,clusterkopfpeerings,"
        "validatingadmissionpolicies,validatingadmissionpolicybindings",
        "-l", f"{INSTANCE}={release}", "-o", "name",
    )  # fmt: skip
    return (namespaced.stdout + records.stdout + cluster_wide.stdout).split()


def test_install_upgrade_and_uninstall(
    cluster: Cluster, helm: Helm, namespace: str, releases: list[tuple[str, str]]
):
    # Pods that break the "restricted" profile are refused in this namespace.
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    release = unique("life")
    fullname = f"{release}-kascade"
    releases.append((release, namespace))
    bad = helm.install(release, namespace, {"replicaCount": "two"}, check=False)
    assert bad.returncode != 0
    assert "/replicaCount" in bad.stderr, bad.stderr
    assert helm("status", release, "-n", namespace, check=False).returncode != 0

    installed = helm.install(release, namespace, policy_only_in(namespace))
    assert "kubectl get flows,runs" in installed.stdout  # NOTES.txt
    pods = wait_for(
        lambda: pods_seen(release_pods(cluster, namespace, release)),
        lambda seen: len(seen) == 1 and seen[0][1:] == (NODE, "Running", False),
        timeout=90,
        what=f"the operator pod of {release} running on {NODE}",
    )
    pod = cluster.core().read_namespaced_pod(pods[0][0], namespace)
    assert pod.spec.service_account_name == fullname
    assert "--peering" not in pod.spec.containers[0].args

    upgrade = helm.values_file(
        {"replicaCount": 2, "logLevel": "debug", **policy_only_in(namespace)}, "upgrade.yaml"
    )
    helm("upgrade", release, str(CHART), "-n", namespace, "-f", str(upgrade))
    deployment = cluster.kubectl("get", "deployment", fullname, "-n", namespace, "-o", "json")
    spec = json.loads(deployment.stdout)["spec"]
    assert spec["replicas"] == 2
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--peering") + 1] == fullname
    assert "-v" in args
    wait_for(
        lambda: [
            (p.spec.node_name, p.status.phase, "--peering" in p.spec.containers[0].args)
            for p in release_pods(cluster, namespace, release)
            if p.metadata.deletion_timestamp is None
        ],
        lambda seen: seen == [(NODE, "Running", True)] * 2,
        timeout=90,
        what="two upgraded operator pods running",
    )
    peering = cluster.kubectl("get", "clusterkopfpeering", fullname, "-o", "json")
    assert json.loads(peering.stdout)["metadata"]["labels"][INSTANCE] == release
    account = f"system:serviceaccount:{namespace}:{fullname}"
    assert can_i(cluster, account, "patch", f"clusterkopfpeerings.kopf.dev/{fullname}")
    assert not can_i(cluster, account, "patch", "clusterkopfpeerings.kopf.dev/someone-else")

    helm("uninstall", release, "-n", namespace)
    wait_for(
        lambda: leftovers(cluster, namespace, release),
        lambda left: left == [],
        timeout=90,
        what=f"every object of {release} to be gone",
    )


# --- the chart's RBAC is enough for the real operator -----------------------------------


def wait_phase(
    cluster: Cluster,
    namespace: str,
    name: str,
    done: Callable[[str | None], bool],
    log: Callable[[], str],
) -> str | None:
    try:
        return wait_for(
            lambda: phase_of(cluster, namespace, name), done, timeout=90, what=f"run {name}"
        )
    except AssertionError as err:
        raise AssertionError(f"{err}\noperator log:\n{log()[-3000:]}") from None


def run_jobs(cluster: Cluster, namespace: str, run_name: str) -> list[str]:
    """The run's Jobs that are not being deleted."""
    return [
        job.metadata.name
        for job in cluster.batch()
        .list_namespaced_job(namespace, label_selector=f"kascade.io/run={run_name}")
        .items
        if job.metadata.deletion_timestamp is None
    ]


DENIED = re.compile(r"forbidden|not enough permissions|(?<![,.:\d])403\b", re.IGNORECASE)


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_the_operator_runs_flows_with_only_the_charts_rbac(
    cluster: Cluster,
    helm: Helm,
    namespace: str,
    make_namespace: Callable[[str], str],
    releases: list[tuple[str, str]],
    tmp_path: Path,
    mode: str,
):
    release = unique("rbac")
    account = f"{release}-kascade"
    watched = make_namespace("flows") if mode == "namespaced" else namespace
    releases.append((release, namespace))
    # The chart's admission policy is on where the operator works: its own child Runs pass.
    helm.install(
        release,
        namespace,
        {"watchNamespaces": [watched]} if mode == "namespaced" else policy_only_in(watched),
    )
    kubeconfig = service_account_kubeconfig(cluster, namespace, account, tmp_path / "sa.kubeconfig")
    files = {"models/a.sql": "select 1 as id", "scripts/step/__main__.py": "print('step')"}
    work = [{"name": "work", "script": {"name": "step"}}]
    setup_flow(cluster, watched, tmp_path, work, name="child", files=files)
    setup_flow(
        cluster,
        watched,
        tmp_path,
        [{"name": "wait", "script": {"name": "step"}}],
        name="slow",
        files=files,
        defaults={"podMetadata": {"annotations": {RUN_FOR: "5m"}}},
    )
    setup_flow(
        cluster,
        watched,
        tmp_path,
        [
            {"name": "load", "script": {"name": "step"}},
            {"name": "models", "transformation": {}, "dependsOn": ["load"]},
            {"name": "sub", "flow": {"name": "child"}, "dependsOn": ["models"]},
        ],
        name="parent",
        files=files,
    )

    operator = OperatorProcess(cluster, watched, tmp_path, kubeconfig=kubeconfig)
    operator.start()
    try:
        # Tasks, Jobs, a child Run, statuses and Events: SUCCEEDED.
        parent = trigger(cluster, watched, "parent")
        assert wait_phase(cluster, watched, parent, TERMINAL.__contains__, operator.log) == (
            "SUCCEEDED"
        ), operator.log()[-3000:]
        # Aborting deletes the running Job: ABORTED.
        slow_run = trigger(cluster, watched, "slow")
        wait_for(
            lambda: run_jobs(cluster, watched, slow_run),
            lambda jobs: len(jobs) == 1,
            timeout=60,
            what=f"the Job of run {slow_run}",
        )
        aborted = kascade(cluster, "abort", slow_run, "-n", watched)
        assert aborted.returncode == 0, aborted.stderr
        assert wait_phase(cluster, watched, slow_run, TERMINAL.__contains__, operator.log) == (
            "ABORTED"
        )
        wait_for(
            lambda: run_jobs(cluster, watched, slow_run),
            lambda jobs: jobs == [],
            timeout=60,
            what=f"the Job of aborted run {slow_run} to be deleted",
        )
    finally:
        operator.stop()
    log = operator.log()
    denied = [line for line in log.splitlines() if DENIED.search(line)]
    assert not denied, "the operator was refused:\n" + "\n".join(denied[:20])
    assert "Traceback" not in log, log[-3000:]
    posted = [
        e.reason
        for e in cluster.core().list_namespaced_event(watched).items
        if e.involved_object.name == parent
        and e.source is not None
        and e.source.component == "kascade-operator"
    ]
    assert posted, "the operator posted no Event about the run"

    subject = f"system:serviceaccount:{namespace}:{account}"
    assert not can_i(cluster, subject, "get", "secrets", "-n", watched)
    assert not can_i(cluster, subject, "list", "secrets", "--all-namespaces")
    assert can_i(cluster, subject, "list", "customresourcedefinitions.apiextensions.k8s.io")
    if mode == "namespaced":
        assert can_i(cluster, subject, "list", "runs.kascade.io", "-n", watched)
        assert not can_i(cluster, subject, "list", "runs.kascade.io", "-n", namespace)
        assert not can_i(cluster, subject, "list", "runs.kascade.io", "--all-namespaces")
    else:
        assert can_i(cluster, subject, "list", "runs.kascade.io", "--all-namespaces")


# --- alerts and dashboard under promtool ------------------------------------------------


def rendered_rules(helm: Helm, values: dict[str, Any]) -> dict[str, Any]:
    objects = helm.template(
        {**values, "prometheusRule": {"enabled": True, **values.get("prometheusRule", {})}},
        "kascade",
        "monitoring",
    )
    return {"groups": only(objects, "PrometheusRule")["spec"]["groups"]}


def promtool_ok(args: list[str], cwd: Path) -> None:
    checked = run([str(promtool()), *args], cwd=cwd)
    assert checked.returncode == 0, f"promtool {' '.join(args)}:\n{checked.stdout}{checked.stderr}"


def test_alert_rules_are_valid_and_fire_exactly_when_they_should(helm: Helm, tmp_path: Path):
    rules = rendered_rules(helm, {})
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    promtool_ok(["check", "rules", "rules.yaml"], tmp_path)
    tests = PROMTOOL_DATA / "alerts_test.yaml"
    shutil.copy(tests, tmp_path / tests.name)
    promtool_ok(["test", "rules", tests.name], tmp_path)

    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts == {
        "KascadeRunsFailing",
        "KascadeRunStuck",
        "KascadeScheduleLagHigh",
        "KascadeOperatorDown",
    }
    cases = yaml.safe_load(tests.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for group in cases
        for case in group["alert_rule_test"]
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for group in cases
        for case in group["alert_rule_test"]
        if not case.get("exp_alerts")
    }
    assert fired == alerts, "every alert needs a case where it fires"
    assert quiet == alerts, "every alert needs a case where it stays quiet"


def test_alert_thresholds_come_from_the_values(helm: Helm, tmp_path: Path):
    rules = rendered_rules(
        helm,
        {
            "prometheusRule": {
                "job": "kascade-scrape",
                "runsFailing": {"threshold": 3, "window": "1h", "for": "2m"},
                "runStuck": {"seconds": 600, "phases": ["QUEUED"], "severity": "page"},
                "scheduleLag": {"seconds": 60, "quantile": 0.9, "window": "30m"},
            }
        },
    )
    by_name = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    failing = by_name["KascadeRunsFailing"]
    assert "[1h]" in failing["expr"]
    assert failing["expr"].rstrip().endswith("> 3")
    assert failing["for"] == "2m"
    stuck = by_name["KascadeRunStuck"]
    assert 'phase=~"QUEUED"' in stuck["expr"]
    assert stuck["expr"].rstrip().endswith("> 600")
    assert stuck["labels"] == {"severity": "page"}
    lag = by_name["KascadeScheduleLagHigh"]
    assert lag["expr"].startswith("histogram_quantile(0.9,")
    assert "[30m]" in lag["expr"]
    assert (
        'up{job="kascade-scrape", namespace="monitoring"}' in by_name["KascadeOperatorDown"]["expr"]
    )
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    promtool_ok(["check", "rules", "rules.yaml"], tmp_path)


def operator_metric_names() -> set[str]:
    """The series names the operator exposes (PromQL names: a histogram as its _bucket,
    _sum and _count series), read from the operator's own registry."""
    metrics = Metrics()
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        if not family.name.startswith("kascade_"):
            continue
        suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}
        suffixes |= {"info": ("_info",)}
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


KASCADE_METRICS = operator_metric_names()
OTHER_METRICS = {"up", "process_resident_memory_bytes", "process_cpu_seconds_total"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "absent",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool",
}  # fmt: skip
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$job": ".*",
    "$namespace": ".*",
    "$flow": ".*",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: bare identifiers outside label matchers,
    strings, durations and grouping clauses, plus `__name__` matchers' alternatives."""
    names: set[str] = set()
    for matcher in re.findall(r'__name__=~?"([^"]*)"', expr):
        names |= set(matcher.split("|"))
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
    return names | {w for w in words if w not in PROMQL_WORDS}


def dashboard_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every PromQL query of the dashboard, by where it is: panel targets and the
    selectors of label_values() template variables."""
    queries: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
        assert found, variable["definition"]
        queries[f"variable {variable['name']}"] = found.group(1)
    return queries


def test_dashboard_queries_parse_and_use_only_the_operators_metrics(helm: Helm, tmp_path: Path):
    configmap = only(helm.template({}), "ConfigMap")
    dashboard = json.loads(configmap["data"]["kascade.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "kascade.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"namespace", "flow"} <= set(variables)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))

    queries = dashboard_queries(dashboard)
    rules = []
    for number, (where, expr) in enumerate(queries.items()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard_query_{number}", "expr": expr})
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool_ok(["check", "rules", path.name], tmp_path)

    used: set[str] = set()
    for where, expr in queries.items():
        names = metric_names(expr)
        unknown = names - KASCADE_METRICS - OTHER_METRICS
        assert not unknown, f"{where} uses unknown metrics {unknown}: {expr}"
        used |= names
    alert_rules = rendered_rules(helm, {})["groups"][0]["rules"]
    for rule in alert_rules:
        unknown = metric_names(rule["expr"]) - KASCADE_METRICS - OTHER_METRICS
        assert not unknown, f"alert {rule['alert']} uses unknown metrics {unknown}"
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    every = {re.sub(r"_(bucket|sum|count)$", "", name) for name in KASCADE_METRICS}
    assert every <= shown, f"metrics without a panel: {sorted(every - shown)}"

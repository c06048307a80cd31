"""The chart's admission policy (templates/admission-policy.yaml) on the real control plane:
a Flow or Run is refused, naming the reason, unless its author may create Pods in the
namespace and, for a Flow, impersonate each ServiceAccount and get each Secret it names.

Each test renders the policy with `watchNamespaces: [its namespace]`, so that the binding
matches that namespace only (the cluster is shared), applies the two cluster-scoped
objects under a name of its own and deletes them afterwards. The limited users are
ServiceAccounts with Roles of their own, acting through their own kubeconfigs."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.cluster import Cluster, bin_dir
from tests.integration.helm import CHART, Helm, find, only, service_account_kubeconfig
from tests.integration.waiting import wait_for

API_VERSION = "kascade.io/v1alpha1"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
FLOWS_AND_RUNS = {"apiGroups": ["kascade.io"], "resources": ["flows", "runs"]}
CREATE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
REFUSED_BY_POLICY = "denied request"


# --- objects ------------------------------------------------------------------------------


def step(name: str, **settings: Any) -> dict[str, Any]:
    """A script node or hook."""
    return {"name": name, "script": {"name": "step"}, **settings}


def flow(
    name: str,
    *,
    defaults: dict[str, Any] | None = None,
    nodes: list[dict[str, Any]] | None = None,
    hooks: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodes": nodes or [step("work")]}
    if defaults:
        spec["defaults"] = defaults
    if hooks:
        spec["hooks"] = hooks
    return {"apiVersion": API_VERSION, "kind": "Flow", "metadata": {"name": name}, "spec": spec}


def run(flow_name: str = "f") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {"generateName": f"{flow_name}-manual-"},
        "spec": {"flowRef": {"name": flow_name}},
    }


def secret_env(secret: str, key: str = "password") -> dict[str, Any]:
    return {"name": key.upper(), "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def role_rule(resource: str, verbs: list[str], *names: str, group: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
    if names:
        rule["resourceNames"] = list(names)
    return rule


# --- the policy and the users -------------------------------------------------------------


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = bin_dir() / "helm"
    if not binary.is_file():
        pytest.fail(f"helm is not built: {binary} is missing (hack/cluster/build.sh)")
    return Helm(binary, cluster.kubeconfig, tmp_path_factory.mktemp("helm"))


def policy_objects(helm: Helm, release: str, namespace: str, **values: Any) -> list[dict[str, Any]]:
    """The chart's policy and binding for a release in `namespace` that watches only it."""
    objects = helm.template({"watchNamespaces": [namespace], **values}, release, namespace)
    return [o for o in objects if o["kind"] in POLICY_KINDS]


@dataclass
class Site:
    """One test's namespace: its policy, its users, and kubectl as each of them."""

    cluster: Cluster
    helm: Helm
    namespace: str
    folder: Path
    release: str = field(default_factory=lambda: f"vap-{uuid.uuid4().hex[:6]}")
    policies: list[str] = field(default_factory=list)

    @property
    def policy_name(self) -> str:
        return f"{self.release}-kascade-flow-permissions"

    @property
    def operator_account(self) -> str:
        return f"{self.release}-kascade"

    def install_policy(self, **values: Any) -> list[dict[str, Any]]:
        objects = policy_objects(self.helm, self.release, self.namespace, **values)
        assert [o["kind"] for o in objects] == list(POLICY_KINDS)
        self.policies.append(self.policy_name)
        self.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        return objects

    def remove_policies(self) -> None:
        for name in self.policies:
            self.cluster.kubectl(
                "delete",
                "--ignore-not-found",
                "--wait=false",
                f"validatingadmissionpolicybinding/{name}",
                f"validatingadmissionpolicy/{name}",
                check=False,
            )

    def user(self, account: str, *rules: dict[str, Any]) -> Cluster:
        """A ServiceAccount allowed `rules` (default: create and get on flows and runs),
        as a Cluster whose kubectl acts as it."""
        self.cluster.kubectl("create", "serviceaccount", account, "-n", self.namespace)
        self.grant(account, *(rules or ({**FLOWS_AND_RUNS, "verbs": ["create", "get"]},)))
        kubeconfig = service_account_kubeconfig(
            self.cluster, self.namespace, account, self.folder / f"{account}.kubeconfig"
        )
        return Cluster(kubeconfig=kubeconfig, kubectl_path=self.cluster.kubectl_path)

    def grant(self, account: str, *rules: dict[str, Any]) -> None:
        """A Role with `rules` bound to the account; returns once the authorizer applies it."""
        name = f"{account}-{uuid.uuid4().hex[:5]}"
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": self.namespace},
            "rules": list(rules),
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": self.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self.namespace}],
        }
        self.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([role, binding]))
        subject = f"system:serviceaccount:{self.namespace}:{account}"

        def allowed(verb: str, resource: str) -> str:
            return self.cluster.kubectl(
                "auth", "can-i", verb, resource, "-n", self.namespace, "--as", subject,
                check=False,
            ).stdout.strip()  # fmt: skip

        for rule in rules:
            resource = rule["resources"][0]
            if rule["apiGroups"][0]:
                resource += "." + rule["apiGroups"][0]
            if rule.get("resourceNames"):
                resource += "/" + rule["resourceNames"][0]
            verb = rule["verbs"][0]
            wait_for(
                partial(allowed, verb, resource),
                lambda answer: answer == "yes",
                timeout=30,
                what=f"{subject} to be allowed {verb} {resource}",
            )

    def wait_until_enforced(self, user: Cluster) -> None:
        """Until the API server applies the new policy: a dry-run Run of a user who may
        not create Pods is refused by it."""
        wait_for(
            lambda: write(user, self.namespace, run("probe"), dry=True),
            lambda answer: REFUSED_BY_POLICY in answer.stderr,
            timeout=30,
            what=f"policy {self.policy_name} to refuse a Run in {self.namespace}",
        )


@pytest.fixture
def site(cluster: Cluster, helm: Helm, namespace: str, tmp_path: Path) -> Iterator[Site]:
    made = Site(cluster, helm, namespace, tmp_path)
    yield made
    made.remove_policies()


def write(
    who: Cluster, namespace: str, body: dict[str, Any], dry: bool = False
) -> subprocess.CompletedProcess[str]:
    args = ["create", "-n", namespace, "-o", "name", "-f", "-"]
    if dry:
        args.append("--dry-run=server")
    return who.kubectl(*args, stdin=json.dumps(body), check=False)


def passes(who: Cluster, namespace: str, body: dict[str, Any]) -> str:
    """Create the object; its `kind/name`."""
    created = write(who, namespace, body)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def refused(who: Cluster, namespace: str, body: dict[str, Any]) -> str:
    """Try to create the object; the policy's refusal."""
    answer = write(who, namespace, body)
    assert answer.returncode != 0, f"expected a refusal, got {answer.stdout}"
    assert REFUSED_BY_POLICY in answer.stderr, answer.stderr
    return answer.stderr


# --- rendering ----------------------------------------------------------------------------


def test_the_policy_is_on_by_default_and_scoped_to_the_watched_namespaces(helm: Helm) -> None:
    cluster_wide = helm.template({}, "kascade", "ops")
    policy = only(cluster_wide, "ValidatingAdmissionPolicy", "kascade-flow-permissions")
    binding = only(cluster_wide, "ValidatingAdmissionPolicyBinding", "kascade-flow-permissions")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["flows", "runs"]
    assert rule["operations"] == ["CREATE", "UPDATE"]
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert "'system:serviceaccount:ops:kascade'" in conditions["not-the-operator"]

    namespaced = helm.template(
        {
            "watchNamespaces": ["a", "b"],
            "serviceAccount": {"create": False, "name": "runner"},
            "admissionPolicy": {
                "validationActions": ["Warn", "Audit"],
                "namespaceSelector": {
                    "matchLabels": {"team": "data"},
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}],
                },
            },
        },
        "prod",
        "ops",
    )
    binding = only(namespaced, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"team": "data"},
        "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["x"]},
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]},
        ],
    }
    policy = only(namespaced, "ValidatingAdmissionPolicy")
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert "'system:serviceaccount:ops:runner'" in conditions["not-the-operator"]

    off = helm.template({"admissionPolicy": {"enabled": False}})
    assert [o for o in off if o["kind"] in POLICY_KINDS] == []


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"validationActions": ["Deny", "Warn"]}, "/admissionPolicy/validationActions"),
        ({"validationActions": []}, "/admissionPolicy/validationActions"),
        ({"validationActions": ["Block"]}, "/admissionPolicy/validationActions/0"),
        ({"failurePolicy": "Ignore"}, "'failurePolicy'"),
        ({"maxSecrets": -1}, "/admissionPolicy/maxSecrets"),
        ({"maxSecrets": 17}, "/admissionPolicy/maxSecrets"),
        ({"maxServiceAccounts": 8, "maxSecrets": 9}, "is 17; at most 16 fit"),
        ({"namespaceSelector": {"matchNames": ["a"]}}, "'matchNames'"),
    ],
)
def test_bad_policy_values_fail_naming_the_field(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    path = helm.values_file({"admissionPolicy": values}, "bad-policy.yaml")
    rendered = helm("template", "x", str(CHART), "-f", str(path), check=False)
    assert rendered.returncode != 0, rendered.stdout[:500]
    assert named in rendered.stderr, rendered.stderr


# --- on the control plane -----------------------------------------------------------------


def test_a_flow_or_run_needs_create_on_pods(cluster: Cluster, site: Site) -> None:
    ns = site.namespace
    limited = site.user("limited")
    objects = site.install_policy()
    assert find(objects, "ValidatingAdmissionPolicy", site.policy_name)
    site.wait_until_enforced(limited)

    message = refused(limited, ns, flow("f"))
    assert f"you may not create pods in namespace {ns}, so you may not write this Flow" in message
    message = refused(limited, ns, run("f"))
    assert f"you may not create pods in namespace {ns}, so you may not write this Run" in message

    # The cluster's admin may do anything, so it passes.
    assert passes(cluster, ns, flow("f")) == "flow.kascade.io/f"
    assert passes(cluster, ns, run("f")).startswith("run.kascade.io/f-manual-")

    site.grant("limited", CREATE_PODS)
    assert passes(limited, ns, flow("g")) == "flow.kascade.io/g"
    assert passes(limited, ns, run("g")).startswith("run.kascade.io/g-manual-")


def test_a_flow_may_run_only_as_service_accounts_the_user_may_impersonate(site: Site) -> None:
    ns = site.namespace
    limited = site.user("limited")
    site.install_policy()
    site.wait_until_enforced(limited)
    site.grant("limited", CREATE_PODS)

    places: dict[str, Callable[[str, str], dict[str, Any]]] = {
        "defaults": lambda name, sa: flow(name, defaults={"serviceAccountName": sa}),
        "a node": lambda name, sa: flow(
            name, nodes=[step("a"), step("b", serviceAccountName=sa, dependsOn=["a"])]
        ),
        "a hook": lambda name, sa: flow(
            name, hooks={"onFailure": [step("alert", serviceAccountName=sa)]}
        ),
    }
    for number, (place, make) in enumerate(places.items()):
        message = refused(limited, ns, make(f"named-{number}", "runner"))
        assert f"you may not use ServiceAccount runner in namespace {ns}" in message, place
        assert "impersonate on serviceaccounts/runner" in message, place
    assert passes(limited, ns, flow("unnamed")) == "flow.kascade.io/unnamed"

    site.grant("limited", role_rule("serviceaccounts", ["impersonate"], "runner"))
    for number, make in enumerate(places.values()):
        assert passes(limited, ns, make(f"named-{number}", "runner"))
    # The grant names one account: another is still refused, and named after it.
    both = flow("both", defaults={"serviceAccountName": "runner"})
    both["spec"]["nodes"].append(step("other", serviceAccountName="builder"))
    message = refused(limited, ns, both)
    assert f"you may not use ServiceAccount builder in namespace {ns}" in message
    assert "ServiceAccount runner" not in message


def test_a_flow_may_hand_its_tasks_only_secrets_the_user_may_read(
    cluster: Cluster, site: Site
) -> None:
    ns = site.namespace
    limited = site.user("limited", {**FLOWS_AND_RUNS, "verbs": ["create", "get"]}, CREATE_PODS)
    site.install_policy()
    probe = site.user("probe")
    site.wait_until_enforced(probe)

    by_env = flow(
        "by-env", nodes=[step("load", env=[{"name": "A", "value": "1"}, secret_env("db")])]
    )
    message = refused(limited, ns, by_env)
    assert f"you may not read Secret db in namespace {ns} (get on secrets/db)" in message
    by_env_from = flow(
        "by-env-from",
        defaults={"envFrom": [{"configMapRef": {"name": "settings"}}]},
        hooks={"onFinish": [step("report", envFrom=[{"secretRef": {"name": "api"}}])]},
    )
    message = refused(limited, ns, by_env_from)
    assert f"you may not read Secret api in namespace {ns}" in message
    by_warehouse = flow("by-warehouse")
    by_warehouse["spec"]["warehouse"] = {
        "type": "postgres",
        "host": "pg.data.svc",
        "database": "shop",
        "user": "kascade",
        "passwordSecretRef": {"name": "db", "key": "password"},
    }
    message = refused(limited, ns, by_warehouse)
    assert f"you may not read Secret db in namespace {ns} (get on secrets/db)" in message
    by_profiles = flow("by-profiles")
    by_profiles["spec"]["warehouse"] = {
        "type": "profiles",
        "profilesSecretRef": {"name": "api", "key": "profiles.yml"},
    }
    message = refused(limited, ns, by_profiles)
    assert f"you may not read Secret api in namespace {ns} (get on secrets/api)" in message
    by_volume = flow(
        "by-volume",
        nodes=[
            step(
                "load",
                volumes=[{"name": "certs", "secret": {"secretName": "db"}}],
                volumeMounts=[{"name": "certs", "mountPath": "/certs"}],
            )
        ],
    )
    message = refused(limited, ns, by_volume)
    assert f"you may not read Secret db in namespace {ns} (get on secrets/db)" in message
    # ConfigMaps are not checked.
    assert passes(
        limited, ns, flow("configs", defaults={"envFrom": [{"configMapRef": {"name": "x"}}]})
    )

    # With everything granted, a Flow that names a ServiceAccount and both Secrets in
    # every place passes.
    site.grant(
        "limited",
        role_rule("secrets", ["get"], "db", "api"),
        role_rule("serviceaccounts", ["impersonate"], "runner"),
    )
    everything = flow(
        "everything",
        defaults={"serviceAccountName": "runner", "env": [secret_env("db")]},
        nodes=[step("a", envFrom=[{"secretRef": {"name": "api"}}], serviceAccountName="runner")],
        hooks={"onSuccess": [step("done", env=[secret_env("api", "token")])]},
    )
    assert passes(limited, ns, by_env) == "flow.kascade.io/by-env"
    assert passes(limited, ns, by_env_from) == "flow.kascade.io/by-env-from"
    assert passes(limited, ns, by_warehouse) == "flow.kascade.io/by-warehouse"
    assert passes(limited, ns, by_profiles) == "flow.kascade.io/by-profiles"
    assert passes(limited, ns, by_volume) == "flow.kascade.io/by-volume"
    assert passes(limited, ns, everything) == "flow.kascade.io/everything"
    assert passes(limited, ns, run("everything"))
    # ...and the admin passes with Secrets nobody granted it by name.
    assert passes(cluster, ns, flow("admin", defaults={"env": [secret_env("anything")]}))


def test_updates_are_checked_when_they_change_what_runs(cluster: Cluster, site: Site) -> None:
    ns = site.namespace
    writes = {**FLOWS_AND_RUNS, "verbs": ["create", "get", "patch"]}
    limited = site.user("limited", writes, CREATE_PODS)
    site.install_policy()
    site.wait_until_enforced(site.user("probe"))
    passes(cluster, ns, flow("f", defaults={"serviceAccountName": "runner"}))
    started = passes(cluster, ns, run("f"))

    def patch(target: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return limited.kubectl(
            "patch", target, "-n", ns, "--type=merge", "-p", json.dumps(body), check=False
        )

    # Labels change nothing that runs, even on a Flow naming an account the user may not use.
    relabelled = patch("flow/f", {"metadata": {"labels": {"team": "data"}}})
    assert relabelled.returncode == 0, relabelled.stderr
    changed = patch("flow/f", {"spec": {"maxParallelTasks": 2}})
    assert changed.returncode != 0
    assert f"you may not use ServiceAccount runner in namespace {ns}" in changed.stderr
    # Aborting a Run stops work: no check.
    aborted = patch(started, {"spec": {"abort": True}})
    assert aborted.returncode == 0, aborted.stderr

    # Without create on pods: a rerun annotation is refused, another one passes.
    blocked = site.user("blocked", writes)
    rerun = blocked.kubectl("annotate", started, "-n", ns, "kascade.io/rerun=all", check=False)
    assert rerun.returncode != 0
    assert f"you may not create pods in namespace {ns}" in rerun.stderr
    noted = blocked.kubectl("annotate", started, "-n", ns, "example.com/note=x", check=False)
    assert noted.returncode == 0, noted.stderr


def test_the_operators_own_runs_pass(site: Site) -> None:
    ns = site.namespace
    runs_only = {"apiGroups": ["kascade.io"], "resources": ["runs"], "verbs": ["create"]}
    operator = site.user(site.operator_account, runs_only)
    other = site.user("other", runs_only)
    site.install_policy()
    site.wait_until_enforced(other)
    refused(other, ns, run("f"))
    assert passes(operator, ns, run("f")).startswith("run.kascade.io/f-manual-")


def test_a_flow_may_name_only_as_many_distinct_accounts_and_secrets_as_are_checked(
    cluster: Cluster, site: Site
) -> None:
    ns = site.namespace
    site.install_policy(admissionPolicy={"maxServiceAccounts": 2, "maxSecrets": 1})
    site.wait_until_enforced(site.user("probe"))
    three = [step(f"n{i}", serviceAccountName=f"sa-{i % 3}") for i in range(30)]
    message = refused(cluster, ns, flow("three-accounts", nodes=three))
    assert "the Flow names more than 2 distinct ServiceAccounts" in message
    # Repeats count once.
    two = [
        step(f"n{i}", serviceAccountName=f"sa-{i % 2}", env=[secret_env("db")]) for i in range(30)
    ]
    assert passes(cluster, ns, flow("two-accounts", nodes=two))
    two[7]["envFrom"] = [{"secretRef": {"name": "api"}}]
    message = refused(cluster, ns, flow("two-secrets", nodes=two))
    assert "the Flow names more than 1 distinct Secrets" in message


MAX_ENTRIES, MAX_REFERENCES = 20_000, 2_000
HOOKS = ("onSuccess", "onFailure", "onFinish")


def largest_flow(accounts: int, secrets: int, references: int, entries: int) -> dict[str, Any]:
    """A Flow with 500 nodes and 60 hooks, `references` Secret references and `entries`
    env and envFrom entries in all, naming `accounts` ServiceAccounts and `secrets` Secrets
    in the order that costs the policy most: every name but the last once, first, then the
    last one everywhere (each pass over what is left removes a single reference)."""
    steps = [{}, *(step(f"node-{i}") for i in range(500))]
    hooks = {when: [step(f"{when.lower()}-{i}") for i in range(20)] for when in HOOKS}
    steps += [hook for when in HOOKS for hook in hooks[when]]
    secret_names = (f"secret-{min(i, secrets - 1)}" for i in range(references))
    for number, settings in enumerate(steps):
        if accounts:
            settings["serviceAccountName"] = f"sa-{min(number, accounts - 1)}"
        share = references // len(steps) + (number < references % len(steps))
        plain = (entries - references) // len(steps) + (
            number < (entries - references) % len(steps)
        )
        settings["env"] = [secret_env(next(secret_names), f"k{k}") for k in range(share)]
        settings["env"] += [{"name": f"PLAIN_{k}", "value": "x"} for k in range(plain)]
    return flow("largest", defaults=steps[0], nodes=steps[1:501], hooks=hooks)


@pytest.mark.parametrize(
    ("accounts", "secrets"), [(4, 12), (0, 16), (16, 0)], ids=["defaults", "secrets", "accounts"]
)
def test_the_largest_flows_fit_the_cost_budget(
    cluster: Cluster, site: Site, accounts: int, secrets: int
) -> None:
    """A check costs 350,000 of the API server's 10,000,000 per request, and the policy
    looks through every env entry: up to its bounds, with every slot in use, a Flow is
    decided on its merits; past them it is refused by name, not by the cost limit."""
    ns = site.namespace
    site.install_policy(admissionPolicy={"maxServiceAccounts": accounts, "maxSecrets": secrets})
    site.wait_until_enforced(site.user("probe"))
    # With no Secret slots, any Secret is one too many.
    references = MAX_REFERENCES if secrets else 0
    largest = largest_flow(accounts, secrets, references, MAX_ENTRIES)
    answer = write(cluster, ns, largest, dry=True)
    assert answer.returncode == 0, answer.stderr

    too_many = write(cluster, ns, largest_flow(accounts, secrets, 2_001, MAX_ENTRIES), dry=True)
    assert "the Flow references Secrets 2001 times, more than the 2000" in too_many.stderr
    only_references = largest_flow(accounts, secrets, MAX_ENTRIES, MAX_ENTRIES)
    far_too_many = write(cluster, ns, only_references, dry=True)
    assert "the Flow references Secrets 20000 times, more than the 2000" in far_too_many.stderr
    too_long = write(cluster, ns, largest_flow(accounts, secrets, 100, 20_001), dry=True)
    assert (
        "the Flow has 20001 env, envFrom and volumes entries, more than the 20000"
        in too_long.stderr
    )

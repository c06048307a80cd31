"""The core/v1 objects a Flow passes into its Jobs (securityContext, env[].valueFrom,
resources) are typed: good shapes pass unchanged to the wire, every bad shape is refused
naming the field, by the models and by the CRD schema (no free objects any more)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kascade.api import TaskSettings
from kascade.api.core import ENV_SOURCES, exactly_one_rule
from kascade.api.crd import KINDS, render_crd
from kascade.engine.errors import ManifestError
from kascade.engine.manifests import field_path, parse_flow
from tests.projects import flow_yaml

ENV_SECRET = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
JSON_INT_MAX = 2**53 - 1


def settings(**fields: Any) -> dict[str, Any]:
    return fields


def security(**fields: Any) -> dict[str, Any]:
    return {"securityContext": fields}


def value_from(source: Any) -> dict[str, Any]:
    return {"env": [{"name": "X", "valueFrom": source}]}


def limits(**values: Any) -> dict[str, Any]:
    return {"resources": {"limits": values}}


def problems(fields: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field path, error type, message) of each problem the model finds in the settings."""
    with pytest.raises(ValidationError) as refused:
        TaskSettings.model_validate(fields)
    return [
        (field_path(error["loc"]), error["type"], str(error["msg"]))
        for error in refused.value.errors()
    ]


# --- good shapes ----------------------------------------------------------------------

GOOD = [
    pytest.param(security(runAsUser=0), id="root"),
    pytest.param(security(runAsUser=2**31 - 1, runAsGroup=0), id="largest-uid"),
    pytest.param(
        security(
            allowPrivilegeEscalation=False,
            capabilities={"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            privileged=False,
            procMount="Default",
            readOnlyRootFilesystem=True,
            runAsGroup=1000,
            runAsNonRoot=True,
            runAsUser=1000,
            seLinuxOptions={"level": "s0:c123,c456", "role": "r", "type": "t", "user": "u"},
            seccompProfile={"type": "RuntimeDefault"},
            appArmorProfile={"type": "Unconfined"},
        ),
        id="every-linux-field",
    ),
    pytest.param(
        security(seccompProfile={"type": "Localhost", "localhostProfile": "profiles/audit.json"}),
        id="seccomp-localhost",
    ),
    pytest.param(
        security(appArmorProfile={"type": "Localhost", "localhostProfile": "k8s-apparmor"}),
        id="apparmor-localhost",
    ),
    pytest.param(
        security(
            windowsOptions={
                "gmsaCredentialSpecName": "webapp",
                "gmsaCredentialSpec": "{}",
                "hostProcess": False,
                "runAsUserName": "NT AUTHORITY\\NETWORK SERVICE",
            }
        ),
        id="windows",
    ),
    pytest.param(security(privileged=True, allowPrivilegeEscalation=True), id="privileged"),
    pytest.param(security(), id="empty-security-context"),
    pytest.param({"env": [ENV_SECRET]}, id="secret-key-ref"),
    pytest.param(
        value_from({"secretKeyRef": {"name": "creds.v2", "key": "a_b-c.d", "optional": True}}),
        id="secret-key-ref-optional",
    ),
    pytest.param(
        value_from({"configMapKeyRef": {"name": "conf", "key": "region", "optional": False}}),
        id="config-map-key-ref",
    ),
    pytest.param(value_from({"fieldRef": {"fieldPath": "metadata.name"}}), id="field-ref"),
    pytest.param(
        value_from({"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['team']"}}),
        id="field-ref-label",
    ),
    pytest.param(value_from({"fieldRef": {"fieldPath": "status.podIPs"}}), id="field-ref-ips"),
    pytest.param(
        value_from({"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}),
        id="resource-field-ref",
    ),
    pytest.param(
        value_from(
            {
                "resourceFieldRef": {
                    "containerName": "task",
                    "resource": "requests.cpu",
                    "divisor": 1,
                }
            }
        ),
        id="resource-field-ref-int-divisor",
    ),
    pytest.param(
        value_from({"resourceFieldRef": {"resource": "limits.hugepages-2Mi"}}),
        id="resource-field-ref-hugepages",
    ),
    pytest.param(
        {
            "env": [
                {
                    "name": "X",
                    "value": "",
                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                }
            ]
        },
        id="empty-value-beside-value-from",
    ),
    pytest.param({"env": [{"name": "X", "value": "{{ run.name }}"}]}, id="literal-value"),
    pytest.param(limits(cpu=1, memory="1Gi"), id="int-and-binary-si"),
    pytest.param(
        {"resources": {"requests": {"cpu": "100m", "memory": "512M", "ephemeral-storage": "2e9"}}},
        id="decimal-si-and-exponent",
    ),
    pytest.param(limits(cpu="0.5", memory="+1.5Gi", **{"nvidia.com/gpu": 0}), id="fractions"),
    pytest.param(limits(cpu=".5"), id="leading-dot"),
]


@pytest.mark.parametrize("fields", GOOD)
def test_a_good_shape_passes_and_reaches_the_wire_unchanged(fields):
    parsed = TaskSettings.model_validate(fields)
    assert parsed.to_wire() == fields
    # the operator merges a node's settings over the defaults through the same models
    assert TaskSettings.model_validate(parsed.to_wire()) == parsed


def test_snake_case_field_names_are_read_as_well():
    parsed = TaskSettings.model_validate(
        {"security_context": {"run_as_user": 5, "seccomp_profile": {"type": "Unconfined"}}}
    )
    assert parsed.to_wire() == security(runAsUser=5, seccompProfile={"type": "Unconfined"})


# --- bad shapes -----------------------------------------------------------------------

BAD = [
    # wrong types
    (security(runAsUser="abc"), "securityContext.runAsUser", "valid integer"),
    (security(runAsUser="1000"), "securityContext.runAsUser", "valid integer"),
    (security(runAsUser=True), "securityContext.runAsUser", "valid integer"),
    (security(runAsUser=1.0), "securityContext.runAsUser", "valid integer"),
    (security(runAsGroup=[1]), "securityContext.runAsGroup", "valid integer"),
    (security(privileged="true"), "securityContext.privileged", "valid boolean"),
    (security(runAsNonRoot=1), "securityContext.runAsNonRoot", "valid boolean"),
    (
        security(readOnlyRootFilesystem="yes"),
        "securityContext.readOnlyRootFilesystem",
        "valid boolean",
    ),
    (security(capabilities={"add": "NET_ADMIN"}), "securityContext.capabilities.add", "list"),
    (security(capabilities={"drop": [1]}), "securityContext.capabilities.drop[0]", "string"),
    (security(seLinuxOptions={"level": 5}), "securityContext.seLinuxOptions.level", "string"),
    (
        security(windowsOptions={"hostProcess": "yes"}),
        "securityContext.windowsOptions.hostProcess",
        "valid boolean",
    ),
    (security(seccompProfile="RuntimeDefault"), "securityContext.seccompProfile", "dictionary"),
    ({"securityContext": "restricted"}, "securityContext", "dictionary"),
    # unknown keys
    (security(runAsUserr=1), "securityContext.runAsUserr", "Extra inputs"),
    (security(capabilities={"remove": ["ALL"]}), "securityContext.capabilities.remove", "Extra"),
    (
        security(seccompProfile={"type": "RuntimeDefault", "profile": "x"}),
        "securityContext.seccompProfile.profile",
        "Extra inputs",
    ),
    (security(seLinuxOptions={"range": "s0"}), "securityContext.seLinuxOptions.range", "Extra"),
    (security(windowsOptions={"user": "x"}), "securityContext.windowsOptions.user", "Extra"),
    # enums and profile rules
    (
        security(seccompProfile={"type": "Default"}),
        "securityContext.seccompProfile.type",
        "'RuntimeDefault', 'Unconfined' or 'Localhost'",
    ),
    (
        security(seccompProfile={"type": "runtime/default"}),
        "securityContext.seccompProfile.type",
        "'RuntimeDefault', 'Unconfined' or 'Localhost'",
    ),
    (security(seccompProfile={}), "securityContext.seccompProfile.type", "Field required"),
    (
        security(seccompProfile={"type": "Localhost"}),
        "securityContext.seccompProfile",
        "localhostProfile must be set when type is Localhost",
    ),
    (
        security(seccompProfile={"type": "RuntimeDefault", "localhostProfile": "p.json"}),
        "securityContext.seccompProfile",
        "localhostProfile can only be set when type is Localhost",
    ),
    (
        security(appArmorProfile={"type": "localhost"}),
        "securityContext.appArmorProfile.type",
        "'RuntimeDefault', 'Unconfined' or 'Localhost'",
    ),
    (
        security(appArmorProfile={"type": "Localhost"}),
        "securityContext.appArmorProfile",
        "localhostProfile must be set when type is Localhost",
    ),
    (security(procMount="Masked"), "securityContext.procMount", "'Default' or 'Unmasked'"),
    (
        security(privileged=True, allowPrivilegeEscalation=False),
        "securityContext",
        "allowPrivilegeEscalation cannot be false when privileged is true",
    ),
    # out-of-range integers
    (security(runAsUser=-1), "securityContext.runAsUser", "greater than or equal to 0"),
    (security(runAsUser=2**31), "securityContext.runAsUser", "less than or equal to 2147483647"),
    (security(runAsGroup=2**63), "securityContext.runAsGroup", "less than or equal to"),
    # valueFrom: wrong types
    (value_from({"secretKeyRef": 5}), "env[0].valueFrom.secretKeyRef", "dictionary"),
    (value_from("secret"), "env[0].valueFrom", "dictionary"),
    (
        value_from({"secretKeyRef": {"name": "s", "key": "k", "optional": "yes"}}),
        "env[0].valueFrom.secretKeyRef.optional",
        "valid boolean",
    ),
    (
        value_from({"configMapKeyRef": {"name": "c", "key": 7}}),
        "env[0].valueFrom.configMapKeyRef.key",
        "valid string",
    ),
    (
        value_from({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1 m"}}),
        "env[0].valueFrom.resourceFieldRef.divisor",
        "is not a quantity",
    ),
    # valueFrom: unknown keys
    (value_from({"secretRef": {"name": "s"}}), "env[0].valueFrom.secretRef", "Extra inputs"),
    (
        value_from({"secretKeyRef": {"name": "s", "key": "k", "namespace": "other"}}),
        "env[0].valueFrom.secretKeyRef.namespace",
        "Extra inputs",
    ),
    # valueFrom: exactly one source
    (
        value_from(
            {
                "secretKeyRef": {"name": "s", "key": "k"},
                "configMapKeyRef": {"name": "c", "key": "k"},
            }
        ),
        "env[0].valueFrom",
        "exactly one of: secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef "
        "(got secretKeyRef, configMapKeyRef)",
    ),
    (
        value_from(
            {
                "fieldRef": {"fieldPath": "metadata.name"},
                "resourceFieldRef": {"resource": "limits.cpu"},
            }
        ),
        "env[0].valueFrom",
        "(got fieldRef, resourceFieldRef)",
    ),
    (value_from({}), "env[0].valueFrom", "(got none)"),
    (
        {"env": [{"name": "X", "value": "v", **{"valueFrom": ENV_SECRET["valueFrom"]}}]},
        "env[0]",
        "sets both value and valueFrom",
    ),
    # valueFrom: values core/v1 refuses
    (
        value_from({"secretKeyRef": {"name": "s"}}),
        "env[0].valueFrom.secretKeyRef.key",
        "Field required",
    ),
    (
        value_from({"secretKeyRef": {"name": "s", "key": "a/b"}}),
        "env[0].valueFrom.secretKeyRef.key",
        "should match pattern",
    ),
    (
        value_from({"secretKeyRef": {"name": "Creds", "key": "k"}}),
        "env[0].valueFrom.secretKeyRef.name",
        "should match pattern",
    ),
    (
        value_from({"fieldRef": {"fieldPath": "spec.containers"}}),
        "env[0].valueFrom.fieldRef.fieldPath",
        "should match pattern",
    ),
    (
        value_from({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}),
        "env[0].valueFrom.fieldRef.apiVersion",
        "'v1'",
    ),
    (
        value_from({"resourceFieldRef": {"resource": "limits.gpu"}}),
        "env[0].valueFrom.resourceFieldRef.resource",
        "should match pattern",
    ),
    # resources
    (limits(cpu="lots"), "resources.limits.cpu", "'lots' is not a quantity"),
    (limits(memory="1 Gi"), "resources.limits.memory", "is not a quantity"),
    (limits(memory="-1Gi"), "resources.limits.memory", "is not a quantity"),
    (limits(memory=-1), "resources.limits.memory", "must not be negative"),
    (limits(cpu=True), "resources.limits.cpu", "must be an integer or a quantity string"),
    (limits(cpu=0.5), "resources.limits.cpu", "quantity string such as 500m, 0.5"),
    ({"resources": {"requests": {"cpu": None}}}, "resources.requests.cpu", "(got NoneType)"),
    ({"resources": {"claims": []}}, "resources.claims", "Extra inputs"),
]


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [pytest.param(*case, id=f"{case[1]}:{index}") for index, case in enumerate(BAD)],
)
def test_a_bad_shape_is_refused_naming_the_field(fields, path, message):
    found = problems(fields)
    assert [(where, text) for where, _, text in found if where == path], found
    assert any(where == path and message in text for where, _, text in found), found


def test_an_unknown_key_is_an_unknown_field_not_kept():
    assert problems(security(runAsUser=1, sysctls=[])) == [
        ("securityContext.sysctls", "extra_forbidden", "Extra inputs are not permitted")
    ]


def test_a_flow_file_names_the_node_and_the_field():
    text = flow_yaml(
        [
            {
                "name": "load",
                "script": {"name": "load"},
                "securityContext": {"runAsUser": "abc"},
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": 5}}],
            }
        ]
    )
    with pytest.raises(ManifestError) as refused:
        parse_flow(text, "flow.yaml")
    message = str(refused.value)
    assert "spec.nodes[0] (load).securityContext.runAsUser: Input should be a valid integer" in (
        message
    )
    assert "spec.nodes[0] (load).env[0] (X).valueFrom.secretKeyRef: Input should be a" in message


# --- the CRD schema -------------------------------------------------------------------


def schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in KINDS:
        crd = yaml.safe_load(render_crd(kind))
        yield kind.kind, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


CORE_FIELDS = re.compile(r"\.(securityContext|valueFrom|resources)(\.|\{|$)")


def test_the_core_objects_are_closed_in_every_crd():
    seen = 0
    for kind, schema in schemas():
        for path, node in walk(schema):
            if CORE_FIELDS.search(path):
                seen += 1
                assert not node.get("x-kubernetes-preserve-unknown-fields"), f"{kind}{path}"
                assert node.get("description") or path.endswith(("[]", "}")), f"{kind}{path}"
    assert seen > 100


def settings_schema(kind: str) -> dict[str, Any]:
    schema = dict(schemas())[kind]["properties"]["spec"]
    return schema["properties"]["defaults"] if kind == "Flow" else schema


@pytest.mark.parametrize("kind", ["Flow", "Task"])
def test_the_crd_carries_the_types_ranges_enums_and_rules(kind):
    spec = settings_schema(kind)
    context = spec["properties"]["securityContext"]["properties"]
    assert context["runAsUser"] == {
        "maximum": 2**31 - 1,
        "minimum": 0,
        "type": "integer",
        "description": "UID the entrypoint runs as.",
    }
    assert context["privileged"]["type"] == "boolean"
    assert context["capabilities"]["properties"]["drop"]["items"] == {"type": "string"}
    seccomp = context["seccompProfile"]
    assert seccomp["properties"]["type"]["enum"] == ["RuntimeDefault", "Unconfined", "Localhost"]
    assert seccomp["required"] == ["type"]
    assert [rule["rule"] for rule in seccomp["x-kubernetes-validations"]] == [
        "(self.type == 'Localhost') == has(self.localhostProfile)"
    ]
    env = spec["properties"]["env"]["items"]
    source = env["properties"]["valueFrom"]
    assert set(source["properties"]) == set(ENV_SOURCES)
    assert source["properties"]["secretKeyRef"]["required"] == ["name", "key"]
    assert [rule["rule"] for rule in source["x-kubernetes-validations"]] == [
        exactly_one_rule(ENV_SOURCES)
    ]
    cpu = spec["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert cpu["x-kubernetes-int-or-string"] is True
    assert cpu["minimum"] == 0
    assert re.fullmatch(cpu["pattern"], "500m")
    assert not re.fullmatch(cpu["pattern"], "lots")


def test_no_integer_bound_exceeds_what_the_api_server_holds():
    for kind, schema in schemas():
        for path, node in walk(schema):
            for bound in ("maximum", "minimum"):
                if bound in node:
                    assert abs(node[bound]) <= JSON_INT_MAX, f"{kind}{path}.{bound}"


# --- the exactly-one rule, evaluated --------------------------------------------------


def cel_truth(rule: str, present: set[str]) -> bool:
    """Evaluate a rule of has(self.x), !, ||, parentheses and ?: (what exactly_one_rule
    writes) with the fields in `present` set."""
    tokens = re.findall(r"has\(self\.\w+\)|\|\||[!()?:]", rule)
    assert "".join(tokens) == rule.replace(" ", ""), rule
    position = 0

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def expression() -> bool:
        condition = disjunction()
        if peek() != "?":
            return condition
        take()
        then = expression()
        assert take() == ":"
        otherwise = expression()
        return then if condition else otherwise

    def disjunction() -> bool:
        value = unary()
        while peek() == "||":
            take()
            right = unary()
            value = value or right
        return value

    def unary() -> bool:
        token = take()
        if token == "!":
            return not unary()
        if token == "(":
            value = expression()
            assert take() == ")"
            return value
        return token[len("has(self.") : -1] in present

    value = expression()
    assert position == len(tokens), rule
    return value


@pytest.mark.parametrize("fields", [("a",), ("a", "b"), ("a", "b", "c"), ENV_SOURCES])
def test_the_exactly_one_rule_holds_for_exactly_one_field(fields):
    rule = exactly_one_rule(fields)
    for mask in range(2 ** len(fields)):
        present = {field for bit, field in enumerate(fields) if mask >> bit & 1}
        assert cel_truth(rule, present) == (len(present) == 1), (rule, present)

"""The pydantic models reject what the CRDs reject, with messages naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kascade.api import Flow, FlowSpec, RunSpec, RunType, TriggerRule
from kascade.engine.errors import ManifestError
from kascade.engine.manifests import parse_flow
from tests.projects import flow_yaml

SCRIPT = {"name": "s", "script": {"name": "load"}}


def spec(**fields: Any) -> dict[str, Any]:
    return {"nodes": [SCRIPT], **fields}


def test_defaults_are_filled_in():
    parsed = FlowSpec.model_validate(spec())
    assert parsed.max_parallel_tasks == 8
    assert parsed.fail_fast is False
    assert parsed.nodes[0].trigger == TriggerRule.ALL_SUCCESS
    assert parsed.nodes[0].kind == "script"


def test_wire_form_is_camel_case():
    parsed = FlowSpec.model_validate(spec(maxParallelTasks=3, defaults={"retryDelaySeconds": 5}))
    wire = parsed.to_wire()
    assert wire["maxParallelTasks"] == 3
    assert wire["defaults"] == {"retryDelaySeconds": 5}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nodes": [{"name": "n"}]}, "must set exactly one of: transformation, connection, script"),
        (
            {"nodes": [{"name": "n", "script": {"name": "a"}, "flow": {"name": "b"}}]},
            "found: script, flow",
        ),
        ({"nodes": [{"name": "n", "sql": {}}]}, "Extra inputs"),
        ({"nodes": [SCRIPT, SCRIPT]}, "duplicate name 's' in nodes[0] and nodes[1]"),
        (
            {"nodes": [SCRIPT], "hooks": {"onFailure": [{"name": "s", "script": {"name": "x"}}]}},
            "duplicate name 's' in nodes[0] and hooks.onFailure[0]",
        ),
        ({"nodes": [{"name": "Bad Name", "script": {"name": "a"}}]}, "should match pattern"),
        ({"nodes": [{"name": "-x", "script": {"name": "a"}}]}, "should match pattern"),
        ({"nodes": [{"name": "n" * 64, "script": {"name": "a"}}]}, "at most 63"),
        ({"nodes": [{**SCRIPT, "retries": -1}]}, "greater than or equal to 0"),
        ({"nodes": [{**SCRIPT, "trigger": "sometimes"}]}, "'allSuccess', 'allDone'"),
        ({"nodes": []}, "at least 1 item"),
        ({"maxParallelTasks": 0}, "greater than or equal to 1"),
        ({"timeoutSeconds": -5}, "greater than or equal to 1"),
        ({"successfulRunsHistoryLimit": -1}, "greater than or equal to 0"),
        ({"defaults": {"retryDelaySeconds": -1}}, "greater than or equal to 0"),
        ({"schedule": {"cron": "61 * * * *"}}, "invalid cron expression"),
        ({"schedule": {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}}, "unknown IANA time zone"),
        ({"schedule": {}}, "exactly one of: cron, every"),
        ({"schedule": {"cron": "* * * * *", "every": {"frequency": "day"}}}, "exactly one of"),
        ({"schedule": {"every": {"frequency": "fortnight"}}}, "'minute', 'hour'"),
        ({"schedule": {"every": {"frequency": "day", "at": "25:00"}}}, "should match pattern"),
        ({"schedule": {"cron": "* * * * *", "concurrencyPolicy": "Sometimes"}}, "'Allow'"),
        ({"parameters": [{"name": "1x"}]}, "should match pattern"),
        ({"parameters": [{"name": "x"}, {"name": "x"}]}, "duplicate parameter name(s): x"),
        ({"parameters": [{"name": "x", "type": "date"}]}, "'string', 'integer'"),
    ],
)
def test_invalid_flows_are_rejected(fields, message):
    with pytest.raises(ValidationError) as err:
        FlowSpec.model_validate(spec(**fields) if "nodes" not in fields else fields)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "RERUN_ALL"}, "rerunOf is required"),
        ({"type": "MANUAL", "rerunOf": "r1"}, "rerunOf is required"),
        ({"type": "RERUN_TASK", "rerunOf": "r1"}, "rerunTask is required"),
        ({"type": "RERUN_FAILED", "rerunOf": "r1", "downstream": True}, "downstream is allowed"),
        ({"type": "SUBFLOW"}, "parent is required"),
        ({"type": "SOMETIMES"}, "'ORCHESTRATED', 'MANUAL'"),
    ],
)
def test_invalid_runs_are_rejected(fields, message):
    with pytest.raises(ValidationError) as err:
        RunSpec.model_validate({"flowRef": {"name": "f"}, **fields})
    assert message in str(err.value)


def test_valid_runs():
    rerun = RunSpec.model_validate(
        {
            "flowRef": {"name": "f"},
            "type": "RERUN_TASK",
            "rerunOf": "f-1",
            "rerunTask": "t",
            "downstream": True,
        }
    )
    assert rerun.type == RunType.RERUN_TASK
    assert RunSpec.model_validate({"flowRef": {"name": "f"}}).type == RunType.MANUAL


def test_manifest_errors_name_the_file_the_field_and_the_node():
    text = flow_yaml(
        [
            {"name": "load", "script": {"name": "x"}, "retries": -2},
            {"name": "marts", "transformation": {"include": "tag:x"}},
        ]
    )
    with pytest.raises(ManifestError) as err:
        parse_flow(text, "flow.yaml")
    message = str(err.value)
    assert message.startswith("flow.yaml: 2 invalid field(s):")
    assert "spec.nodes[0] (load).retries: Input should be greater than or equal to 0" in message
    assert "spec.nodes[1] (marts).transformation.include: Input should be a valid list" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "flow.yaml:1: invalid YAML"),
        ("kind: Run\n", "no document of kind Flow"),
        ("apiVersion: v1\nkind: Flow\n", "apiVersion must be kascade.io/v1alpha1"),
        (
            "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {}\nspec: {nodes: [{name: a, "
            "script: {name: b}}]}\n",
            "metadata.name: the Flow needs a name",
        ),
        (
            "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: f}\nspec: {nodez: []}\n",
            "spec.nodez: unknown field",
        ),
        (
            "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: f}\n",
            "spec: required field is missing",
        ),
    ],
)
def test_manifest_problems(text, message):
    with pytest.raises(ManifestError, match=message.replace("[", r"\[")):
        parse_flow(text, "flow.yaml")


def test_a_multi_document_manifest_uses_its_flow():
    text = "kind: ConfigMap\napiVersion: v1\n---\n" + flow_yaml([SCRIPT], name="two")
    assert parse_flow(text, "f.yaml").metadata.name == "two"


def test_flow_round_trips_through_the_wire_form():
    flow = Flow.model_validate(
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "f"},
            "spec": spec(
                schedule={"every": {"frequency": "week", "dayOfWeek": "fri", "at": "06:30"}},
                defaults={
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                    ],
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                },
            ),
        }
    )
    assert Flow.model_validate(flow.to_wire()) == flow

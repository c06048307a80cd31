"""The launch of an attempt: merged settings, rendered args, env and child parameters,
and the task contract's variables; a bad template names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kascade.api import Flow, TaskType
from kascade.engine.launch import LaunchError, RunIdentity, launch, launch_context, task_settings
from kascade.engine.plan import PlannedTask

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RUN = RunIdentity("shop-1", "shop", "MANUAL", None, T0)
TASK = PlannedTask(id="load", node="load", type=TaskType.SCRIPT, target="load_raw")


def flow(**spec):
    return Flow.model_validate(
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "f"},
            "spec": spec,
        }
    )


def test_settings_a_task_carries_from_its_flow():
    spec = flow(
        defaults={
            "image": "i:1",
            "retries": 2,
            "timeoutSeconds": 60,
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        nodes=[
            {
                "name": "load",
                "script": {"name": "load_raw", "args": ["{{ params.day }}"]},
                "env": [{"name": "B", "value": "{{ run.name }}"}],
            },
            {"name": "child", "flow": {"name": "other", "parameters": {"x": "{{ params.day }}"}}},
        ],
    ).spec
    load = task_settings(spec, TASK)
    assert load["image"] == "i:1"
    assert load["args"] == ["{{ params.day }}"]
    assert load["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "{{ run.name }}"}]
    # The plan entry holds retries, delays and timeouts: settings do not repeat them.
    assert not {"retries", "retryDelaySeconds", "timeoutSeconds"} & set(load)
    child = PlannedTask(id="child", node="child", type=TaskType.FLOW, target="other")
    assert task_settings(spec, child)["parameters"] == {"x": "{{ params.day }}"}
    assert task_settings(spec, child)["wait"] is True


def test_a_launch_renders_args_env_and_child_parameters():
    settings = {
        "args": ["--day", "{{ params.day }}", "{{ tasks.extract.outputs.rows }}"],
        "env": [
            {"name": "RUN", "value": "{{ run.name }}/{{ run.scheduledDate }}"},
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "parameters": {"day": "{{ params.day }}", "n": 3},
        "image": "i:1",
    }
    context = launch_context(RUN, {"day": "2026-11-01"}, {"extract": {"rows": 7}})
    started = launch(TASK, settings, 2, RUN, context, "duckdb:///w")
    assert started.args == ("--day", "2026-11-01", "7")
    assert started.env == (
        {"name": "RUN", "value": "shop-1/2026-11-22"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    )
    assert started.parameters == {"day": "2026-11-01", "n": 3}
    assert started.settings["image"] == "i:1"
    assert (started.task, started.attempt, started.kind, started.target) == (
        "load",
        2,
        TaskType.SCRIPT,
        "load_raw",
    )
    assert started.contract == {
        "KASCADE_RUN": "shop-1",
        "KASCADE_TASK": "load",
        "KASCADE_FLOW": "shop",
        "KASCADE_WAREHOUSE": "duckdb:///w",
    }


def test_a_flows_own_warehouse_variable_wins():
    settings = {"env": [{"name": "KASCADE_WAREHOUSE", "value": "postgresql://h/db"}]}
    started = launch(TASK, settings, 1, RUN, launch_context(RUN, {}, {}), "duckdb:///w")
    assert "KASCADE_WAREHOUSE" not in started.contract
    assert (
        launch(TASK, {}, 1, RUN, launch_context(RUN, {}, {}), None).contract.get(
            "KASCADE_WAREHOUSE"
        )
        is None
    )


def test_a_flows_warehouse_reaches_its_tasks_with_the_password_from_its_secret():
    spec = flow(
        warehouse={
            "type": "postgres",
            "host": "pg.data.svc",
            "database": "shop",
            "user": "kascade",
            "sslmode": "require",
            "passwordSecretRef": {"name": "warehouse", "key": "password"},
        },
        nodes=[{"name": "load", "script": {"name": "load_raw"}}],
    ).spec
    settings = task_settings(spec, TASK)
    started = launch(TASK, settings, 1, RUN, launch_context(RUN, {}, {}), "duckdb:///default")
    url = "postgresql://kascade@pg.data.svc:5432/shop?schema=public&sslmode=require"
    assert started.contract["KASCADE_WAREHOUSE"] == url  # the Flow's, over the operator's
    assert started.env == (
        {
            "name": "PGPASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "warehouse", "key": "password"}},
        },
    )
    # a task's own PGPASSWORD wins, as any env entry of the task does
    own = {**settings, "env": [{"name": "PGPASSWORD", "value": "x"}]}
    assert launch(TASK, own, 1, RUN, launch_context(RUN, {}, {})).env == (
        {"name": "PGPASSWORD", "value": "x"},
    )


@pytest.mark.parametrize(
    ("warehouse", "said"),
    [
        ({"type": "postgres", "host": "h"}, "a postgres warehouse needs database, user"),
        ({"type": "duckdb"}, "a duckdb warehouse needs path"),
        ({"type": "mysql", "host": "h"}, "Input should be 'postgres', 'duckdb' or 'profiles'"),
        (
            {"type": "postgres", "host": "h", "database": "d", "user": "u", "password": "x"},
            "Extra inputs are not permitted",
        ),
    ],
)
def test_a_warehouse_kascade_cannot_use_is_refused_naming_the_field(warehouse, said):
    with pytest.raises(ValueError, match=said) as raised:
        flow(warehouse=warehouse, nodes=[{"name": "load", "script": {"name": "load_raw"}}])
    assert "spec.warehouse" in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"args": ["ok", "{{ params.nope }}"]}, "task `load`: args[1]: template"),
        ({"args": ["{{ tasks.x.outputs.rows }}"]}, "task `load`: args[0]: template"),
        ({"args": ["{{ oops"]}, "task `load`: args[0]: template `{{ oops` does not parse"),
        ({"env": [{"name": "E", "value": "{{ params.nope }}"}]}, "task `load`: env `E`: template"),
        ({"parameters": {"p": "{{ params.nope }}"}}, "task `load`: parameters.p: template"),
        ({"env": [{"name": "A=B", "value": "x"}]}, "task `load`: env `A=B`: a name must be"),
        ({"env": [{"name": "", "value": "x"}]}, "task `load`: env ``: a name must be"),
        ({"args": ["{{ params.nul }}"]}, "task `load`: args[0]: the value holds a NUL byte"),
    ],
)
def test_a_launch_that_cannot_start_names_its_field(settings, named):
    with pytest.raises(LaunchError) as caught:
        launch(TASK, settings, 1, RUN, launch_context(RUN, {"nul": "a\x00b"}, {}), None)
    assert str(caught.value).startswith(named), str(caught.value)


def test_a_dbt_task_carries_its_selection_and_the_flows_vars_rendered():
    spec = flow(
        vars={"as_of": "{{ params.day }}", "limits": {"rows": 10, "names": ["{{ run.name }}"]}},
        nodes=[{"name": "t", "transformation": {"include": ["stg_orders"]}}],
    ).spec
    task = PlannedTask(
        id="stg_orders",
        node="t",
        type=TaskType.MODEL,
        target="stg_orders",
        select="path:models/stg_orders.sql",
    )
    settings = task_settings(spec, task)
    assert settings["args"] == ["--select", "path:models/stg_orders.sql"]
    context = launch_context(RUN, {"day": "2026-11-22"}, {})
    started = launch(task, settings, 1, RUN, context)
    assert started.args[:2] == ("--select", "path:models/stg_orders.sql")
    assert started.args[2] == "--vars"
    assert json.loads(started.args[3]) == {
        "as_of": "2026-11-22",
        "limits": {"rows": 10, "names": ["shop-1"]},
    }


def test_a_var_whose_template_fails_names_the_var():
    spec = flow(
        vars={"as_of": "{{ params.missing }}"},
        nodes=[{"name": "t", "transformation": {}}],
    ).spec
    task = PlannedTask(id="m", node="t", type=TaskType.MODEL, target="m", select="path:m.sql")
    with pytest.raises(LaunchError, match=r"task `m`: vars\.as_of: "):
        launch(task, task_settings(spec, task), 1, RUN, launch_context(RUN, {}, {}))

"""Typed parameters and templates: values, defaults, and errors naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kascade.api import Parameter, ParameterType
from kascade.engine.parameters import (
    ParameterError,
    convert,
    parse_assignments,
    resolve_parameters,
)
from kascade.engine.templating import TemplateError, render, run_context, template_context

RUN = run_context(
    name="r-1",
    flow="f",
    run_type="MANUAL",
    scheduled_time=None,
    created=datetime(2026, 11, 3, 23, 30, tzinfo=UTC),
)


def declared(*specs: dict) -> list[Parameter]:
    return [Parameter.model_validate(spec) for spec in specs]


def test_values_are_converted_to_their_declared_types():
    params = declared(
        {"name": "s"},
        {"name": "i", "type": "integer"},
        {"name": "n", "type": "number"},
        {"name": "b", "type": "boolean"},
    )
    assert resolve_parameters(params, {"s": 5, "i": " 42", "n": "2.5", "b": "Yes"}, RUN) == {
        "s": "5",
        "i": 42,
        "n": 2.5,
        "b": True,
    }
    assert resolve_parameters(params, {"s": True, "i": 7, "n": 3, "b": False}, RUN) == {
        "s": "true",
        "i": 7,
        "n": 3,
        "b": False,
    }


def test_defaults_fill_in_and_may_be_templates():
    params = declared(
        {"name": "as_of", "default": "{{ run.scheduledDate }}"},
        {"name": "limit", "type": "integer", "default": 10},
        {"name": "label", "default": "run {{ run.name }} of {{ run.flow }}"},
    )
    assert resolve_parameters(params, {}, RUN) == {
        "as_of": "2026-11-03",
        "limit": 10,
        "label": "run r-1 of f",
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "parameter `n`: required, and the flow gives no default"),
        ({"n": "abc"}, "parameter `n`: expected an integer, got 'abc'"),
        ({"n": "1.5"}, "parameter `n`: expected an integer, got '1.5'"),
        ({"n": True}, "parameter `n`: expected an integer, got True"),
        ({"n": 1, "f": "x"}, "parameter `f`: expected a number, got 'x'"),
        ({"n": 1, "b": "maybe"}, "parameter `b`: expected a boolean (true/false), got 'maybe'"),
        ({"n": 1, "zzz": 1}, "parameter `zzz` is not declared by the flow (declared: b, f, n)"),
    ],
)
def test_bad_values_name_the_parameter(given, message):
    params = declared(
        {"name": "n", "type": "integer"},
        {"name": "f", "type": "number", "default": 1},
        {"name": "b", "type": "boolean", "default": False},
    )
    with pytest.raises(ParameterError) as err:
        resolve_parameters(params, given, RUN)
    assert message in err.value.problems


def test_every_bad_parameter_is_reported():
    params = declared({"name": "a", "type": "integer"}, {"name": "b", "type": "integer"})
    with pytest.raises(ParameterError) as err:
        resolve_parameters(params, {"b": "x"}, RUN)
    assert len(err.value.problems) == 2


def test_assignments_parse():
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ParameterError, match="--param `oops` must look like NAME=VALUE"):
        parse_assignments(["oops"])


def test_templates_render_params_run_and_outputs():
    context = template_context(RUN, {"n": 3}, {"load": {"rows": 12}, "my-task": {"x": "y"}})
    assert render("{{ params.n }}", context) == "3"
    assert render("{{ run.name }}/{{ run.scheduledTime }}", context) == (
        "r-1/2026-11-03T23:30:00+00:00"
    )
    assert render("{{ tasks.load.outputs.rows }}", context) == "12"
    assert render("{{ tasks['my-task'].outputs.x }}", context) == "y"
    assert render("plain {text}", context) == "plain {text}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ params.missing }}", "has no attribute 'missing'"),
        ("{{ tasks.load.outputs.nope }}", "has no attribute 'nope'"),
        ("{{ params.n ", "does not parse"),
        ("{{ ''.__class__.__mro__ }}", "template `{{ ''.__class__.__mro__ }}`"),
    ],
)
def test_template_errors_quote_the_template(text, message):
    context = template_context(RUN, {"n": 3}, {"load": {"rows": 12}})
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("(", r"\(")):
        render(text, context)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, "18446744073709551616"])
def test_an_integer_parameter_stays_within_what_json_holds_exactly(value: object):
    # the API server stores 2**64 as 18446744073709552000: refused, never silently changed
    with pytest.raises(ValueError, match="expected an integer from -9007199254740991"):
        convert(ParameterType.INTEGER, value)
    assert convert(ParameterType.INTEGER, 2**53 - 1) == 2**53 - 1

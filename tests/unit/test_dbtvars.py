"""dbt vars as the planner looks them up: the Flow's vars over the project's, scoped to
packages the way dbt scopes them in SQL, in properties files and in dbt_project.yml."""

from __future__ import annotations

import pytest

from kascade.engine.dbtvars import (
    MISSING,
    UNKNOWN,
    MissingVar,
    Unrenderable,
    Vars,
    is_template,
    jinja_literal,
    render_yaml_value,
)


def vars_of(cli: dict[str, object] | None = None) -> Vars:
    return Vars(
        root="shop",
        cli=cli or {},
        projects={
            "shop": {"a": "root", "shop": {"b": "root scoped"}, "utils": {"c": "root for utils"}},
            "utils": {"c": "own", "d": "own", "utils": {"d": "own scoped"}},
        },
    )


def test_sql_of_the_root_project_sees_its_vars_scoped_ones_and_the_flows_last():
    found = vars_of({"a": "flow"})
    assert found.lookup("a") == "flow"
    assert found.lookup("b") == "root scoped"
    assert found.lookup("c") is MISSING
    assert found.lookup("c", "default") == "default"
    assert found.used == {"a", "b", "c"}


def test_package_sql_and_properties_see_their_own_vars_then_the_roots_over_them():
    found = vars_of()
    assert found.lookup("c", package="utils") == "root for utils"
    assert found.lookup("d", package="utils") == "own scoped"
    assert found.lookup("a", package="utils") == "root"


def test_dbt_project_yml_sees_only_the_flows_vars():
    found = vars_of({"x": 1})
    assert found.in_project_file("a") is MISSING
    assert found.in_project_file("x") == 1


def test_a_template_is_unknown_until_the_run():
    found = vars_of({"as_of": "{{ params.as_of }}", "nested": {"k": ["{% raw %}"]}})
    assert found.lookup("as_of") is UNKNOWN
    assert found.lookup("nested") is UNKNOWN
    assert is_template("{{ x }}")
    assert not is_template({"a": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("{{ var('flag', true) }}", True),
        ("{{ var('n') }}", 3),
        ("{{- var('n') -}}", 3),
        ("p_{{ var('name', 'x') }}_{{ var('n') }}", "p_x_3"),
        ("{{ var('s') | as_bool }}", True),
        ("{{ var('n') | as_text }}", "3"),
        ("{{ var('later') }}", UNKNOWN),
    ],
)
def test_yaml_values_render_var_natively(text: str, expected: object):
    found = Vars(root="p", cli={"n": 3, "s": "True", "later": "{{ params.x }}"})
    assert render_yaml_value(text, found.in_project_file) == expected


def test_yaml_values_that_need_more_than_var_or_lack_a_var_raise():
    found = Vars(root="p")
    with pytest.raises(Unrenderable):
        render_yaml_value("{{ target.name }}", found.in_project_file)
    with pytest.raises(Unrenderable):
        render_yaml_value("{% if x %}a{% endif %}", found.in_project_file)
    with pytest.raises(MissingVar, match="nope"):
        render_yaml_value("{{ var('nope') }}", found.in_project_file)


def test_jinja_literals():
    assert jinja_literal("[true, none, -1, {'a': 'b'}]") == [True, None, -1, {"a": "b"}]
    with pytest.raises(ValueError, match="not a literal"):
        jinja_literal("{**x}")

"""Finding ref(), source() and config() in model SQL without running the model."""

from __future__ import annotations

import pytest

from kascade.engine.dbtvars import MISSING, UNKNOWN
from kascade.engine.macros import macro_call_pattern, macro_names, macros_calling_refs
from kascade.engine.sqlscan import Computed, Finding, Ref, Source, scan_sql


def test_literal_calls_are_read_with_their_lines():
    scan = scan_sql(
        "{{ config(materialized='table', tags=['a', 'b'], schema='s') }}\n"
        "select * from {{ ref('orders') }}\n"
        "join {{ ref('pkg', 'customers') }} join {{ source('raw', 'payments') }}\n"
    )
    assert scan.refs == [Ref("orders", None, 2), Ref("customers", "pkg", 3)]
    assert scan.sources == [Source("raw", "payments", 3)]
    assert scan.config == {"materialized": "table", "schema": "s"}
    assert scan.config_tags == ["a", "b"]
    assert scan.errors == []


def test_whitespace_control_quotes_and_jinja_literals():
    scan = scan_sql('{{- ref("a") -}} {{ref(\'b\')}} {{ config(enabled=true, tags="one") }}')
    assert [r.name for r in scan.refs] == ["a", "b"]
    assert scan.config == {"enabled": True}
    assert scan.config_tags == ["one"]


def test_versioned_ref_keeps_the_model_name():
    assert [r.name for r in scan_sql("{{ ref('dim', v=2) }}").refs] == ["dim"]


def test_refs_inside_jinja_comments_are_ignored():
    scan = scan_sql("{# {{ ref('old') }} #}\nselect * from {{ ref('new') }}")
    assert scan.refs == [Ref("new", None, 2)]


def test_refs_in_sql_comments_still_count_like_in_dbt():
    assert [r.name for r in scan_sql("-- {{ ref('a') }}\nselect 1").refs] == ["a"]


def test_plain_conditions_are_decided_without_rendering():
    text = "{% if is_incremental() %}{{ ref('a') }}{% elif var('on') %}{{ ref('b') }}{% endif %}"
    scan = scan_sql(text, lambda name, default=MISSING: True)
    assert ([r.name for r in scan.refs], scan.uncertain) == (["b"], False)
    scan = scan_sql(
        "{% if target.name %}{{ ref('a') }}{% elif execute %}{{ ref('b') }}"
        "{% else %}{{ ref('c') }}{% endif %}"
    )
    assert ([r.name for r in scan.refs], scan.uncertain) == (["a", "c"], True)


def test_every_branch_counts_when_only_dbts_context_could_choose_one():
    scan = scan_sql(
        "{% if target.name == 'prod' %}{{ ref('a') }}{% else %}{{ ref('b') }}{% endif %}"
    )
    assert [r.name for r in scan.refs] == ["a", "b"]
    assert scan.uncertain


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("{% if execute %}{{ ref('a') }}{% endif %}select 1", []),
        (
            "select * from {{ ref('b') }}\n"
            "{% if is_incremental() %}where x > (select max(x) from {{ ref('a') }}){% endif %}",
            ["b"],
        ),
        ("{% if var('on', false) %}{{ ref('a') }}{% else %}{{ ref('b') }}{% endif %}", ["b"]),
        ("{% macro unused() %}{{ ref('a') }}{% endmacro %}{{ ref('b') }}", ["b"]),
        ("{% for m in ['a', 'b'] %}{% if m != 'a' %}{{ ref(m) }}{% endif %}{% endfor %}", ["b"]),
        ("{% if not is_incremental() %}{{ ref('a') }}{% else %}{{ ref('b') }}{% endif %}", ["a"]),
        ("{% if execute %}{% if target.name %}{{ ref('a') }}{% endif %}{% endif %}", []),
    ],
)
def test_refs_in_branches_count_as_dbts_parse_takes_them(text: str, refs: list[str]):
    scan = scan_sql(text)
    assert [r.name for r in scan.refs] == refs
    assert not scan.uncertain


def test_computed_arguments_fall_back_to_rendering():
    scan = scan_sql(
        "{% for m in ['stg_a', 'stg_b'] %}\nselect * from {{ ref(m) }}\n{% endfor %}"
        "{% set t = var('t', 'final') %}{{ config(materialized=t) }}"
    )
    assert [r.name for r in scan.refs] == ["stg_a", "stg_b"]
    assert scan.refs[0].line == 1
    assert scan.config == {"materialized": "final"}


def test_bad_calls_and_bad_jinja_are_reported_not_raised():
    assert scan_sql("{{ ref() }}").errors == [
        Finding(1, "ref() takes a model name and an optional package")
    ]
    assert "source() takes" in scan_sql("{{ source('only_one') }}").errors[0].message
    assert "Jinja syntax error" in scan_sql("{{ ref(x }}").errors[0].message


def test_sql_without_calls_is_not_parsed_at_all():
    scan = scan_sql("select '{{' as odd, 1")
    assert (scan.refs, scan.sources, scan.errors) == ([], [], [])


def test_calls_nested_in_other_expressions_are_read_statically():
    scan = scan_sql(
        "select {{ dbt_utils.star(from=ref('stg_a'), except=['x']) }}\n"
        "from {{ ref('stg_b') | lower }}\n"
        "{% set rel = source('raw', 'c') %}{{ config(meta={'owner': {'team': 'x'}}) }}"
    )
    assert [(r.name, r.line) for r in scan.refs] == [("stg_a", 1), ("stg_b", 2)]
    assert scan.sources == [Source("raw", "c", 3)]
    assert scan.config == {"meta": {"owner": {"team": "x"}}}
    assert scan.errors == []


def test_rendering_tolerates_unknown_macros_and_context():
    scan = scan_sql(
        "{% for m in ['a', 'b'] %}{{ my_macro(ref(m), target.schema) }}{% endfor %}"
        "{% if adapter.get_relation(this) %}{{ ref('c') }}{% endif %}"
    )
    assert [r.name for r in scan.refs] == ["c", "a", "b"]  # literal refs count in any branch
    assert scan.errors == []


# --- config() in dict form, lines of calls in blocks of several lines ---------------------


def test_config_in_dict_form_and_in_two_calls():
    scan = scan_sql(
        "{{ config({'materialized': 'table', 'tags': ['x'], 'meta': {'owner': 'ana'}}) }}\n"
        "{{ config(schema='s', tags='y') }}\n"
        "{{ config(**{'alias': 'a'}) }}"
    )
    assert scan.config == {
        "materialized": "table",
        "meta": {"owner": "ana"},
        "schema": "s",
        "alias": "a",
    }
    assert sorted(scan.config_tags) == ["x", "y"]  # `}}` in the dict: read by rendering
    assert scan.errors == []


def test_a_config_call_over_several_lines_is_read_with_its_own_line():
    scan = scan_sql(
        "select 1\n"
        "{{\n"
        "  config({\n"
        "    'materialized': 'table',\n"
        "  })\n"
        "}}\n"
        "{% set rows = [\n"
        "  ref('a'),\n"
        "  ref('b'),\n"
        "] %}\n"
    )
    assert scan.config == {"materialized": "table"}
    assert [(ref.name, ref.line) for ref in scan.refs] == [("a", 8), ("b", 9)]


@pytest.mark.parametrize(
    ("call", "said"),
    [
        ("config({'materialized': 'table'}, tags=['x'])", "not both"),
        ("config('table')", "not a str"),
        ("config()", "config() is empty"),
        ("config('a', 'b')", "not 2 positional arguments"),
    ],
)
def test_a_config_call_dbt_refuses_is_an_error_at_its_line(call: str, said: str):
    scan = scan_sql("select 1\n{{\n  " + call + "\n}}")
    assert len(scan.errors) == 1
    assert scan.errors[0].line == 3
    assert said in scan.errors[0].message


def test_a_rendered_config_in_dict_form_counts_too():
    scan = scan_sql("{% set c = {'materialized': 'table'} %}\n{{ config(c) }}")
    assert scan.config == {"materialized": "table"}


# --- var() in arguments --------------------------------------------------------------------

VARS = {"pick": "stg_b", "mat": "table", "later": UNKNOWN}


def lookup(name: str, default: object = MISSING) -> object:
    return VARS.get(name, default)


def test_vars_in_ref_source_and_config_arguments_are_looked_up():
    scan = scan_sql(
        "{{ config(materialized=var('mat'), tags=[var('tag', 'fallback')]) }}\n"
        "select * from {{ ref(var('pick')) }}\n"
        "join {{ ref(var('nothing', 'stg_default')) }}\n"
        "join {{ source('raw', var('table', 'events')) }}",
        lookup,
    )
    assert [(ref.name, ref.line) for ref in scan.refs] == [("stg_b", 2), ("stg_default", 3)]
    assert scan.sources == [Source("raw", "events", 4)]
    assert scan.config == {"materialized": "table"}
    assert scan.config_tags == ["fallback"]


def test_a_var_with_no_value_is_an_error_and_one_the_run_sets_is_computed():
    scan = scan_sql("{{ ref(var('nope')) }}\n{{ ref(var('later')) }}", lookup)
    assert scan.refs == []
    assert scan.errors == [
        Finding(
            1,
            "var `nope` has no value: set it in dbt_project.yml `vars:` or the Flow's `spec.vars`",
        )
    ]
    assert scan.computed == [Computed(2, "var `later` is only known when the run starts")]


def test_rendering_answers_var_from_the_vars_and_reports_what_it_cannot_know():
    looped = "{% for m in [var('pick')] %}{{ ref(m) }}{% endfor %}"
    assert [ref.name for ref in scan_sql(looped, lookup).refs] == ["stg_b"]
    unknown = scan_sql("{% set m = var('later') %}\n{{ ref(m) }}", lookup)
    assert unknown.refs == []
    assert [c.message for c in unknown.computed][-1] == (
        "var `later` is only known when the run starts"
    )
    made = scan_sql("select 1\n{{ ref(my_macro()) }}")
    assert made.computed == [Computed(2, "ref() of a value a macro or dbt's context makes")]
    missing = scan_sql("{% set m = var('nope') %}\n{{ ref(m) }}", lookup)
    assert "var `nope` has no value" in missing.errors[0].message


def test_a_call_of_a_macro_that_refs_is_computed_at_its_line():
    pattern = macro_call_pattern(
        macros_calling_refs(
            [
                "{% macro base() %}{{ ref('x') }}{% endmacro %}\n"
                "{% macro wrapper(a) %}{{ base() }}{% endmacro %}\n"
                "{% macro plain() %}1{% endmacro %}\n"
                "{% macro ref(name) %}{{ builtins.ref(name) }}{% endmacro %}"
            ]
        )
    )
    assert pattern is not None
    scan = scan_sql("select {{ plain() }}\nfrom {{ utils.wrapper(1) }}", macro_calls=pattern)
    assert scan.computed == [
        Computed(2, "it calls macro `utils.wrapper`, which calls ref() or source()")
    ]
    assert scan_sql("select {{ plain() }} from {{ ref('a') }}", macro_calls=pattern).computed == []


def test_macro_names_are_the_macros_and_generic_tests_a_file_defines():
    texts = [
        "{% macro a(x) %}{% endmacro %}{#- {% macro hidden() %}{% endmacro %} -#}",
        "{%- test positive(model, column_name) -%}select 1{%- endtest -%}",
        "{% materialization thing, default %}{% endmaterialization %}",
    ]
    assert macro_names(texts) == frozenset({"a", "test_positive"})

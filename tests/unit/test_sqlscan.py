"""Finding ref(), source() and config() in model SQL without running the model."""

from __future__ import annotations

from kascade.engine.sqlscan import Ref, Source, scan_sql


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


def test_every_branch_of_a_conditional_is_a_dependency():
    scan = scan_sql("{% if x %}{{ ref('a') }}{% else %}{{ ref('b') }}{% endif %}")
    assert [r.name for r in scan.refs] == ["a", "b"]


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
        "line 1: ref() takes a model name and an optional package"
    ]
    assert "source() takes" in scan_sql("{{ source('only_one') }}").errors[0]
    assert "Jinja syntax error" in scan_sql("{{ ref(x }}").errors[0]


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

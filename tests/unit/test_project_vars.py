"""A project read with vars: refs and configs that name a var(), dbt_project.yml configs
rendered with the Flow's vars, YAML snapshots, and plans that read the project again when
the Flow's vars change what it uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kascade.engine.errors import PlanError
from kascade.engine.plan import build_plan
from kascade.engine.project import load_project
from tests.projects import flow, write_project

FILES = {
    "dbt_project.yml": """
        name: shop
        vars:
          pick: stg_a
          shop: {scoped: stg_b}
          flag: false
        models:
          shop:
            optional:
              +enabled: "{{ var('flag', true) }}"
            staging:
              +tags: ["{{ var('layer', 'stage') }}"]
    """,
    "models/staging/stg_a.sql": "select 1 as id",
    "models/staging/stg_b.sql": "select 1 as id",
    "models/pick.sql": "select * from {{ ref(var('pick')) }} join {{ ref(var('scoped')) }}",
    "models/defaulted.sql": "{{ config(materialized=var('mat', 'table')) }}\nselect 1",
    "models/optional/opt.sql": "select 1",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path, FILES)


def parents(project, name: str) -> set[str]:
    return {uid.rsplit(".", 1)[-1] for uid in project.graph.parents(f"model.shop.{name}")}


def test_vars_from_the_project_and_its_scope_name_refs_and_configs(root: Path):
    project = load_project(root)
    assert project.problems == ()
    assert parents(project, "pick") == {"stg_a", "stg_b"}
    assert project.models["defaulted"].materialized == "table"
    assert project.models["stg_a"].tags == ("stage",)
    # dbt_project.yml does not see its own `vars:`: flag's default, true, wins
    assert "opt" in project.models
    assert {"pick", "scoped", "mat", "flag", "layer"} <= project.vars_used


def test_the_flows_vars_win_and_render_dbt_project_yml(root: Path):
    project = load_project(root, {"pick": "stg_b", "flag": False, "layer": "raw"})
    assert parents(project, "pick") == {"stg_b"}
    assert "opt" not in project.models
    assert project.models["stg_a"].tags == ("raw",)


def test_a_plan_reads_the_project_again_only_for_vars_it_uses(root: Path):
    project = load_project(root)
    assert project.with_vars({"unrelated": 1}) is project
    again = project.with_vars({"pick": "stg_b"})
    assert again is not project
    assert parents(again, "pick") == {"stg_b"}
    nodes = [{"name": "t", "transformation": {"include": ["pick"], "tests": False}}]
    plan = build_plan(flow(nodes, vars={"pick": "stg_b", "scoped": "stg_b"}), project)
    assert [task.id for task in plan.tasks] == ["pick"]
    plan = build_plan(flow([{"name": "t", "transformation": {"include": ["+pick"]}}]), project)
    assert {task.id for task in plan.tasks} == {"pick", "stg_a", "stg_b"}


def test_a_var_without_value_names_model_file_and_line(tmp_path: Path):
    root = write_project(tmp_path, {"models/a.sql": "select 1\nfrom {{ ref(var('upstream')) }}"})
    assert load_project(root).problems == (
        "model `a` (models/a.sql:2): var `upstream` has no value: set it in dbt_project.yml "
        "`vars:` or the Flow's `spec.vars`",
    )


def test_a_var_only_the_run_knows_in_a_ref_needs_dbts_parse(tmp_path: Path):
    root = write_project(tmp_path, {"models/a.sql": "select * from {{ ref(var('day')) }}"})
    problems = load_project(root, {"day": "{{ params.as_of }}"}).problems
    assert problems == (
        "the refs of model `a` are computed (models/a.sql:1: var `day` is only known when the "
        "run starts): run `dbt parse` so that target/manifest.json tells them (there is no "
        "target/manifest.json), or write the ref literally",
    )


def test_dbt_project_yml_vars_without_value_or_beyond_var_are_problems(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": """
                name: p
                models:
                  p:
                    +enabled: "{{ var('on') }}"
                    a: {+materialized: "{{ 'table' if target.name == 'prod' else 'view' }}"}
                    b: {+schema: "{{ target.schema }}_b"}
            """,
            "models/a/x.sql": "select 1",
        },
    )
    problems = load_project(root).problems
    assert problems[0].startswith(
        "dbt_project.yml: models.p.+enabled: var `on` has no value: set it in the Flow's "
        "`spec.vars` or give a default (dbt_project.yml does not see its own `vars:`)"
    )
    assert problems[1].startswith("dbt_project.yml: models.p.a.+materialized: `{{ 'table'")
    assert len(problems) == 2  # a schema the planner cannot render does not decide the plan
    with pytest.raises(PlanError, match="var `on` has no value"):
        build_plan(flow([{"name": "t", "transformation": {}}]), load_project(root))


def test_yaml_snapshots_are_snapshots_with_their_relation_and_config(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nsnapshots:\n  p:\n    +tags: [snap]\n",
            "models/orders.sql": "select 1 as id",
            "models/sources.yml": "sources: [{name: raw, tables: [{name: events}]}]",
            "snapshots/history.yml": """
                snapshots:
                  - name: orders_history
                    relation: ref('orders')
                    config: {unique_key: id, strategy: check, check_cols: all, tags: [yml]}
                    columns: [{name: id, data_tests: [not_null]}]
                  - name: events_history
                    relation: source('raw', 'events')
            """,
            "snapshots/broken.yml": "snapshots: [{name: broken, relation: select 1}]",
        },
    )
    project = load_project(root)
    snapshot = project.resources["snapshot.p.orders_history"]
    assert (snapshot.path, snapshot.fqn, snapshot.tags) == (
        "snapshots/history.yml",
        ("p", "orders_history"),
        ("snap", "yml"),
    )
    assert project.graph.parents("snapshot.p.orders_history") == ("model.p.orders",)
    assert project.graph.parents("snapshot.p.events_history") == ("source.p.raw.events",)
    assert project.problems == (
        "snapshots/broken.yml: snapshot `broken`: `relation` must be ref('model') or "
        "source('source', 'table'), not 'select 1'",
    )
    (root / "snapshots/broken.yml").unlink()
    plan = build_plan(flow([{"name": "t", "transformation": {}}]), load_project(root))
    by_id = {task.id: task for task in plan.tasks}
    assert by_id["orders_history"].select == "orders_history"
    assert by_id["orders_history.test"].depends_on == ("orders_history",)


def test_properties_files_render_vars_with_the_projects_values(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nvars: {wanted: false}\n",
            "models/a.sql": "select 1",
            "models/b.sql": "select 1",
            "models/schema.yml": """
                models:
                  - name: a
                    config: {tags: ["{{ var('tag', 'yml') }}"]}
                  - name: b
                    config: {enabled: "{{ var('wanted') }}"}
                sources:
                  - name: raw
                    tags: ["{{ var('source_tag', 'ext') }}"]
                    tables: [{name: t, config: {enabled: "{{ var('table_on', true) }}"}}]
            """,
        },
    )
    project = load_project(root)
    assert project.problems == ()
    assert project.models["a"].tags == ("yml",)
    assert "b" not in project.models
    assert project.resources["source.p.raw.t"].tags == ("ext",)
    assert "b" in load_project(root, {"wanted": True}).models

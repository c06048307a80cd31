"""Loading a model project: names, fqn, merged configs, scripts, seeds and problems."""

from __future__ import annotations

from pathlib import Path

from kascade.engine.project import Project, load_project
from tests.projects import write_project


def test_models_have_paths_fqns_and_merged_configs(shop: Project):
    fct = shop.models["fct_x"]
    assert fct.path == "models/marts/finance/fct_x.sql"
    assert fct.fqn == ("shop", "marts", "finance", "fct_x")
    assert fct.materialized == "table"
    assert fct.tags == ("all", "mart", "finance")


def test_config_call_overrides_folder_materialization_and_adds_tags(shop: Project):
    dim = shop.models["dim_y"]
    assert dim.materialized == "view"
    assert dim.tags == ("all", "mart", "pii")
    assert shop.models["stg_c"].schema == "other"
    assert shop.models["top_level"].materialized == "view"


def test_graph_edges_follow_refs_and_sources_by_unique_id(shop: Project):
    assert shop.graph.parents("model.shop.int_ab") == ("model.shop.stg_a", "model.shop.stg_b")
    assert shop.graph.parents("model.shop.dim_y") == ("model.shop.int_ab", "model.shop.stg_b")
    assert set(shop.graph.children("model.shop.int_ab")) == {
        "model.shop.fct_x",
        "model.shop.dim_y",
    }
    assert shop.graph.parents("model.shop.stg_a") == ("source.shop.raw.a",)
    assert shop.resources["source.shop.raw.a"].fqn == ("shop", "staging", "raw", "a")


def test_scripts_are_found(shop: Project):
    assert shop.scripts == {
        "load": "scripts/load/__main__.py",
        "notify": "scripts/notify/__main__.py",
    }
    assert shop.problems == ()


def test_without_dbt_project_yml_the_folder_names_the_project(tmp_path: Path):
    root = write_project(tmp_path / "plain", {"models/a.sql": "select 1"}, dbt_project=False)
    project = load_project(root)
    assert project.name == "plain"
    assert project.problems[0].startswith("dbt_project.yml is missing")
    assert project.models["a"].fqn == ("plain", "a")
    assert project.models["a"].tags == ()


def test_problems_name_model_file_and_line(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\n",
            "models/a.sql": "select 1",
            "models/marts/fct.sql": "select *\nfrom {{ ref('a') }}\njoin {{ ref('stg_ordrs') }}",
            "models/other.sql": "select * from {{ ref('elsewhere', 'a') }}",
        },
    )
    problems = load_project(root).problems
    assert "model `fct` refs unknown model `stg_ordrs` (models/marts/fct.sql:3)" in problems
    assert any("unknown package `elsewhere`" in p and "models/other.sql:1" in p for p in problems)


def test_two_argument_ref_to_this_project_resolves(shop: Project):
    assert "model.shop.stg_b" in shop.graph.parents("model.shop.dim_y")


def test_duplicate_model_names_are_a_problem(tmp_path: Path):
    root = write_project(tmp_path, {"models/a/x.sql": "select 1", "models/b/x.sql": "select 2"})
    assert load_project(root).problems == (
        "model `x` is defined twice: models/a/x.sql and models/b/x.sql",
    )


def test_disabled_models_are_left_out_and_refs_to_them_are_named(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nmodels:\n  p:\n    old:\n      +enabled: false\n",
            "models/old/legacy.sql": "select 1",
            "models/new.sql": "select * from {{ ref('legacy') }}",
        },
    )
    project = load_project(root)
    assert set(project.models) == {"new"}
    assert project.problems == (
        "model `new` refs disabled model `legacy` (models/old/legacy.sql sets enabled: false) "
        "(models/new.sql:1)",
    )


def test_refs_to_seeds_are_edges_to_the_seed(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "seeds/countries.csv": "code\nAT\n",
            "models/a.sql": "select * from {{ ref('countries') }}",
        },
    )
    project = load_project(root)
    assert project.problems == ()
    assert project.seeds == frozenset({"countries"})
    seed = next(r for r in project.resources.values() if r.kind == "seed")
    assert (seed.name, seed.path) == ("countries", "seeds/countries.csv")
    assert project.graph.parents(project.models["a"].unique_id) == (seed.unique_id,)


def test_properties_files_set_configs_between_folders_and_config_calls(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nmodels:\n  p:\n    +materialized: table\n    +tags: [p]\n",
            "models/schema.yml": "version: 2\nmodels:\n  - name: a\n    config:\n"
            "      materialized: view\n      tags: [yml]\n  - name: b\n    config: {tags: yml}\n",
            "models/a.sql": "select 1",
            "models/b.sql": "{{ config(materialized='incremental', tags=['sql']) }} select 1",
        },
    )
    project = load_project(root)
    assert (project.models["a"].materialized, project.models["a"].tags) == ("view", ("p", "yml"))
    assert project.models["b"].materialized == "incremental"
    assert project.models["b"].tags == ("p", "yml", "sql")


def test_custom_model_paths_and_plain_config_keys(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nmodel-paths: [transform]\n"
            "models:\n  p:\n    marts:\n      materialized: table\n",
            "transform/marts/m.sql": "select 1",
            "models/ignored.sql": "select 1",
        },
    )
    project = load_project(root)
    assert set(project.models) == {"m"}
    assert project.models["m"].fqn == ("p", "marts", "m")
    assert project.models["m"].materialized == "table"


def test_invalid_yaml_is_a_problem_naming_the_file_and_line(tmp_path: Path):
    root = write_project(
        tmp_path, {"dbt_project.yml": "name: p\nmodels: [\n", "models/a.sql": "select 1"}
    )
    problems = load_project(root).problems
    assert len(problems) == 1
    assert problems[0].startswith("dbt_project.yml:")
    assert "invalid YAML" in problems[0]


def test_missing_project_directory_is_a_problem(tmp_path: Path):
    assert load_project(tmp_path / "nope").problems == (
        f"project directory {tmp_path / 'nope'} does not exist",
    )


def test_a_model_can_have_its_own_entry_in_dbt_project_yml(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nmodels:\n  p:\n    marts:\n      +tags: [m]\n"
            "      big:\n        +materialized: table\n        +tags: [heavy]\n",
            "models/marts/big.sql": "select 1",
            "models/marts/small.sql": "select 1",
        },
    )
    project = load_project(root)
    assert (project.models["big"].materialized, project.models["big"].tags) == (
        "table",
        ("m", "heavy"),
    )
    assert (project.models["small"].materialized, project.models["small"].tags) == ("view", ("m",))


def test_a_project_with_models_needs_the_dbt_project_yml_dbt_needs(tmp_path: Path):
    root = write_project(tmp_path / "shop-2", {"models/a.sql": "select 1"}, dbt_project=False)
    assert load_project(root).problems == (
        "dbt_project.yml is missing: dbt needs it to run the project's models, seeds and "
        "tests (`name: shop_2` is enough)",
    )
    scripts_only = write_project(tmp_path / "s", {"scripts/x/__main__.py": "print(1)"})
    assert load_project(scripts_only).problems == ()


def test_a_config_call_dbt_refuses_names_model_file_and_its_line(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\n",
            "models/a.sql": "select 1\n{{\n  config({'materialized': 'table'}, tags=['x'])\n}}",
            "models/b.sql": "{% set m = 'table' %}\n{{ config(m) }}",
            "models/c.sql": "{{ config({'materialized': 'table', 'tags': ['dict']}) }}\nselect 1",
            "snapshots/s.sql": (
                "-- history\n{% snapshot s %}\n{{ config('check') }}\nselect 1\n{% endsnapshot %}"
            ),
        },
    )
    project = load_project(root)
    assert project.problems == (
        "model `a` (models/a.sql:3): config() takes keyword arguments or one mapping, not "
        "both: config(materialized='table') or config({'materialized': 'table'})",
        "model `b` (models/b.sql:2): config() takes keyword arguments or one mapping, not a "
        "str: config(materialized='table') or config({'materialized': 'table'})",
        "snapshot `s` (snapshots/s.sql:3): config() takes keyword arguments or one mapping, "
        "not a str: config(materialized='table') or config({'materialized': 'table'})",
    )
    assert (project.models["c"].materialized, project.models["c"].tags) == ("table", ("dict",))

"""Installed packages: read from dbt_packages/ as dbt reads them (vendored, or a local
package linked there by `dbt deps`), with their own unique ids, fqns, vars and configs, the
root project's configs over them, and refs across packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kascade.engine.plan import build_plan
from kascade.engine.project import Project, load_project
from kascade.engine.selectors import select
from tests.projects import flow, write_project

FILES = {
    "dbt_project.yml": """
        name: shop
        vars:
          utils: {pick: u_other}
        models:
          shop:
            +tags: [root]
          utils:
            +tags: [from_root]
            staging: {+materialized: table}
          helpers:
            +materialized: ephemeral
    """,
    "packages.yml": """
        packages:
          - package: acme/utils
            version: 1.0.0
          - local: pkgs/helpers
    """,
    "models/orders.sql": (
        "select * from {{ ref('utils', 'u_base') }} join {{ ref('u_stg') }} "
        "join {{ ref('helpers', 'h_model') }}"
    ),
    "dbt_packages/utils/dbt_project.yml": """
        name: utils
        vars: {pick: u_base}
        models:
          utils:
            +tags: [own]
    """,
    "dbt_packages/utils/seeds/u_codes.csv": "id\n1\n",
    "dbt_packages/utils/models/u_base.sql": "select * from {{ ref('u_codes') }}",
    "dbt_packages/utils/models/u_other.sql": "select 1 as id",
    "dbt_packages/utils/models/staging/u_stg.sql": (
        "{{ config(materialized='view', tags=['sql']) }}\nselect * from {{ ref(var('pick')) }}"
    ),
    "dbt_packages/utils/models/schema.yml": """
        models:
          - name: u_base
            columns: [{name: id, data_tests: [not_null]}]
    """,
    "pkgs/helpers/dbt_project.yml": "name: helpers\n",
    "pkgs/helpers/models/h_model.sql": "select * from {{ ref('orders_seed') }}",
    "seeds/orders_seed.csv": "id\n1\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = write_project(tmp_path_factory.mktemp("packages"), FILES)
    os.symlink(Path("..") / "pkgs" / "helpers", root / "dbt_packages" / "helpers")
    return load_project(root)


def names(project: Project, uids: set[str]) -> set[str]:
    return {project.resources[uid].name for uid in uids}


def test_package_resources_have_their_unique_ids_fqns_and_paths(project: Project):
    assert project.problems == ()
    assert project.packages == {"helpers": "dbt_packages/helpers", "utils": "dbt_packages/utils"}
    stage = project.resources["model.utils.u_stg"]
    assert stage.fqn == ("utils", "staging", "u_stg")
    assert stage.path == "dbt_packages/utils/models/staging/u_stg.sql"
    assert stage.dbt_path == "models/staging/u_stg.sql"
    assert "model.helpers.h_model" in project.resources
    assert "seed.utils.u_codes" in project.resources


def test_the_root_projects_configs_apply_over_the_package_ones_and_config_calls(project):
    stage = project.resources["model.utils.u_stg"]
    assert stage.tags == ("own", "sql", "from_root")
    assert stage.materialized == "table"  # the root's `utils: staging:` over config()
    assert project.resources["model.helpers.h_model"].materialized == "ephemeral"


def test_refs_resolve_across_packages_and_package_vars_scope(project: Project):
    parents = project.graph.parents
    assert set(parents("model.shop.orders")) == {
        "model.utils.u_base",
        "model.utils.u_stg",
        "model.helpers.h_model",
    }
    assert parents("model.utils.u_stg") == ("model.utils.u_other",)  # the root's scoped var
    assert parents("model.helpers.h_model") == ("seed.shop.orders_seed",)  # root first
    assert parents("model.utils.u_base") == ("seed.utils.u_codes",)


def test_package_path_and_file_selectors_are_dbts(project: Project):
    assert names(project, select(project, ["package:utils"])) == {
        "u_base",
        "u_other",
        "u_stg",
        "u_codes",
        "not_null_u_base_id",
    }
    # a package's paths are relative to the package; they match where the root has them
    assert "u_base" in names(project, select(project, ["path:models"]))
    assert "u_codes" in names(project, select(project, ["path:seeds"]))
    assert names(project, select(project, ["path:seeds/u_codes.csv"])) == set()
    assert names(project, select(project, ["file:u_stg.sql"])) == {"u_stg"}
    assert names(project, select(project, ["utils.staging"])) == {"u_stg"}
    assert "orders" in names(project, select(project, ["package:this"]))


def test_a_package_models_task_selects_it_by_package_and_fqn(project: Project):
    nodes = [{"name": "t", "transformation": {"include": ["u_stg"], "tests": False}}]
    (task,) = build_plan(flow(nodes), project).tasks
    assert task.select == "package:utils,fqn:utils.staging.u_stg"


def test_packages_that_are_not_installed_are_problems_naming_packages_yml(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "packages.yml": """
                packages:
                  - package: dbt-labs/dbt_utils
                    version: [">=1.0.0"]
                  - git: https://example.com/repo.git
                  - local: pkgs/mine
            """,
            "pkgs/mine/dbt_project.yml": "name: mine\n",
            "models/a.sql": "select * from {{ ref('mine', 'x') }}",
        },
    )
    problems = load_project(root).problems
    assert problems[:3] == (
        "packages.yml: package `dbt-labs/dbt_utils` is not vendored in dbt_packages/: run "
        "`dbt deps` and keep dbt_packages/ in the project (no task may reach the dbt package "
        "hub or a git server)",
        "packages.yml: package `https://example.com/repo.git` is not vendored in "
        "dbt_packages/: run `dbt deps` and keep dbt_packages/ in the project (no task may "
        "reach the dbt package hub or a git server)",
        "packages.yml: local package `pkgs/mine` is not installed in dbt_packages/: run `dbt "
        "deps` (it links the folder there) and keep dbt_packages/ in the project; dbt reads "
        "packages only from there",
    )
    assert "refs `x` in unknown package `mine`" in problems[3]


def test_an_installed_local_package_missing_is_named_even_when_counts_match(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "packages.yml": "packages: [{local: pkgs/mine}]",
            "pkgs/mine/dbt_project.yml": "name: mine\n",
            "dbt_packages/other/dbt_project.yml": "name: other\n",
        },
    )
    assert load_project(root).problems[0].startswith("packages.yml: local package `pkgs/mine`")


def test_broken_installs_are_problems_naming_the_folder(tmp_path: Path):
    outside = write_project(tmp_path / "outside", {"dbt_project.yml": "name: far\n"})
    root = write_project(
        tmp_path / "p",
        {"dbt_packages/empty/README.md": "x", "dbt_packages/dup/dbt_project.yml": "name: p\n"},
    )
    os.symlink(outside, root / "dbt_packages" / "far")
    os.symlink(tmp_path / "gone", root / "dbt_packages" / "gone")
    problems = load_project(root).problems
    assert f"dbt_packages/gone: a link to {tmp_path / 'gone'}, which does not exist" in problems
    assert "dbt_packages/dup: package `p` is defined twice (the project itself too)" in problems
    assert "dbt_packages/empty: an installed package without dbt_project.yml" in problems
    assert any(p.startswith("dbt_packages/far: a link to") and "outside" in p for p in problems)

"""The installed packages of a generated project: a vendored hub package (its files copied
into dbt_packages/, as `dbt deps` leaves them) and a local package (a folder of the
project, linked into dbt_packages/ as `dbt deps` links it), each a dbt project with models,
a seed, tests and vars of its own."""

from __future__ import annotations

import os
import random
from pathlib import Path

import yaml

VENDORED = "shared_utils"
LOCAL = "helpers"


def package_files(rng: random.Random) -> dict[str, str]:
    """The files of both packages, relative to the project (the local one's link aside)."""
    files: dict[str, str] = {}
    vendored = f"dbt_packages/{VENDORED}"
    files[f"{vendored}/dbt_project.yml"] = yaml.safe_dump(
        {
            "name": VENDORED,
            "version": "1.0",
            "config-version": 2,
            "vars": {"su_pick": "su_base", "su_flag": "own"},
            "models": {VENDORED: {"+tags": ["su"], "staging": {"+materialized": "view"}}},
        },
        sort_keys=False,
    )
    files[f"{vendored}/seeds/su_codes.csv"] = "id,name\n1,a\n"
    files[f"{vendored}/models/su_base.sql"] = "select id, name from {{ ref('su_codes') }}\n"
    files[f"{vendored}/models/su_other.sql"] = "select id, name from {{ ref('su_base') }}\n"
    # the package's var, unless the root project scopes one for it: `vars: {shared_utils: ...}`
    files[f"{vendored}/models/staging/su_stg.sql"] = (
        "{{ config(tags=['su_stage']) }}\nselect id, name from {{ ref(var('su_pick')) }}\n"
    )
    files[f"{vendored}/models/schema.yml"] = yaml.safe_dump(
        {
            "version": 2,
            "models": [
                {"name": "su_base", "columns": [{"name": "id", "data_tests": ["not_null"]}]},
                # a var in a package's properties file: the root's scoped one wins
                {"name": "su_stg", "config": {"tags": ["su_yml", "{{ var('su_flag') }}"]}},
            ],
        },
        sort_keys=False,
    )
    local = f"pkgs/{LOCAL}"
    files[f"{local}/dbt_project.yml"] = yaml.safe_dump(
        {"name": LOCAL, "version": "1.0", "config-version": 2}, sort_keys=False
    )
    files[f"{local}/models/h_base.sql"] = "select 1 as id, 'a' as name\n"
    refs = " union all ".join(
        f"select id, name from {{{{ ref('{name}') }}}}"
        for name in rng.sample(["h_base", "su_base"], k=rng.randint(1, 2))
    )
    files[f"{local}/models/marts/h_mart.sql"] = refs + "\n"
    files[f"{local}/models/properties.yml"] = yaml.safe_dump(
        {
            "version": 2,
            "models": [{"name": "h_mart", "data_tests": [{"unique": {"column_name": "id"}}]}],
        },
        sort_keys=False,
    )
    files["packages.yml"] = yaml.safe_dump(
        {"packages": [{"package": f"acme/{VENDORED}", "version": "1.0.0"}, {"local": local}]},
        sort_keys=False,
    )
    return files


def link_local_package(root: Path) -> None:
    """dbt_packages/helpers -> ../pkgs/helpers, as `dbt deps` links a local package."""
    link = root / "dbt_packages" / LOCAL
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path("..") / "pkgs" / LOCAL, link, target_is_directory=True)


ROOT_CONFIGS = {
    VENDORED: {"+tags": ["vendored"], "staging": {"+tags": ["su_root"]}},
    LOCAL: {"+materialized": "table", "marts": {"+tags": ["helpers_mart"]}},
}
"""What the root project's `models:` says of the packages' folders."""

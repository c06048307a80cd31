"""Shared fixtures: a small model project with folders, tags, configs and a graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from kascade.engine.project import Project, load_project
from tests.projects import write_project

# The graph of the `shop` fixture project (child <- parents):
#   stg_a <- (source)        stg_b <- (source)         stg_c <- (source)
#   int_ab <- stg_a, stg_b
#   fct_x <- int_ab          dim_y <- int_ab, stg_b     rpt_z <- fct_x
#   top_level (no refs)
SHOP_FILES = {
    "dbt_project.yml": """
        name: shop
        models:
          shop:
            +tags: [all]
            staging:
              +tags: staging
              +materialized: view
            marts:
              +materialized: table
              +tags: [mart]
              finance:
                +tags: [finance]
    """,
    "models/staging/stg_a.sql": "select * from {{ source('raw', 'a') }}",
    "models/staging/stg_b.sql": "select * from {{ source('raw', 'b') }}",
    "models/staging/stg_c.sql": """
        {{ config(tags=['extra'], schema='other') }}
        select * from {{ source('raw', 'c') }}
    """,
    "models/intermediate/int_ab.sql": """
        select * from {{ ref('stg_a') }}
        join {{ ref("stg_b") }} using (id)
    """,
    "models/marts/finance/fct_x.sql": "select * from {{ ref('int_ab') }}",
    "models/marts/marketing/dim_y.sql": """
        {{ config(materialized='view', tags=['pii']) }}
        select * from {{ ref('int_ab') }} join {{ ref('shop', 'stg_b') }} using (id)
    """,
    "models/marts/finance/reports/rpt_z.sql": "select * from {{ ref('fct_x') }}",
    "models/top_level.sql": "select 1 as one",
    "models/staging/sources.yml": """
        version: 2
        sources:
          - name: raw
            tables: [{name: a}, {name: b}, {name: c}]
    """,
    "scripts/load/__main__.py": "print('load')",
    "scripts/notify/__main__.py": "print('notify')",
}


@pytest.fixture(scope="session")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("shop"), SHOP_FILES)


@pytest.fixture(scope="session")
def shop(shop_dir: Path) -> Project:
    return load_project(shop_dir)

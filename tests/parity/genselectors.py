"""The selectors of the parity tier: a selectors.yml with every form dbt's YAML selectors
have, and the `--select` strings compared with `dbt ls` on each generated project."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from tests.parity.genpackages import LOCAL, VENDORED

if TYPE_CHECKING:
    from tests.parity.generator import Generated


def yaml_selectors(rng: random.Random, models: list[str]) -> list[dict[str, object]]:
    """Selectors of every form selectors.yml has: a string, key-value with graph operators
    and indirect selection, union and intersection with exclude, a reference to another."""
    picked = rng.choice(models)
    return [
        {
            "name": "staging_and_children",
            "description": "staging models and what reads them",
            "definition": {
                "method": "tag",
                "value": "staging",
                "children": True,
                "children_depth": 1,
            },
        },
        {
            "name": "marts_without_pii",
            "definition": {
                "union": [
                    "tag:finance",
                    {"intersection": ["resource_type:model", "path:models/marts"]},
                    {"exclude": ["tag:pii"]},
                ]
            },
        },
        {
            "name": "careful",
            "definition": {
                "method": "fqn",
                "value": picked,
                "parents": True,
                "indirect_selection": rng.choice(["cautious", "buildable", "empty"]),
            },
        },
        {
            "name": "lookups_not_seeds",
            "definition": {"method": "tag", "value": "lookup", "exclude": ["resource_type:seed"]},
        },
        {
            "name": "nightly",
            "default": True,
            "definition": {
                "union": [
                    {"method": "selector", "value": "staging_and_children"},
                    {"method": "package", "value": LOCAL},
                    f"{rng.choice(models)}+",
                    {"method": "tag", "value": "lookup", "exclude": ["resource_type:seed"]},
                ]
            },
        },
    ]


def selectors(rng: random.Random, project: Generated) -> list[str]:
    models = project.models
    fixed = [
        "tag:staging",
        "tag:finance",
        "tag:pii",
        "tag:checked",
        "tag:lookup",
        "tag:external",
        "path:models/staging",
        "path:models/schema.yml",
        "path:seeds",
        "resource_type:seed",
        "resource_type:test",
        "resource_type:snapshot",
        "resource_type:source",
        "test_type:singular",
        "test_type:generic",
        "test_name:not_null",
        "test_name:relationships",
        "source:raw",
        "source:raw+",
        "config.materialized:table",
        "marts.finance",
        "stg_*",
        "file:assert_nothing_0.sql",
        f"{project.seeds[0]}+",
        "tag:staging,resource_type:model",
        "tag:staging,test_type:generic",
        f"package:{VENDORED}",
        f"package:{LOCAL}",
        "tag:vendored",
        "tag:su*",
        "tag:vt tag:from_flow tag:not_seen",
        "path:models",
        "path:models/schema.yml",
        "path:models/snapshots.yml",
        "file:su_base.sql",
        f"{LOCAL}.marts",
        f"fqn:{VENDORED}.*",
        "resource_type:snapshot,tag:yml_snapshot",
        "+yml_snap",
        "yml_snap+",
        "tag:optional optional",
        "tag:from_project tag:from_default",
        "tag:own tag:root_says",
    ]
    drawn = [
        f"+{rng.choice(models)}",
        f"{rng.choice(models)}+",
        f"@{rng.choice(models)}",
        f"1+{rng.choice(models)}+1",
        f"{rng.choice(models)} {rng.choice(models)}",
        f"source:{rng.choice(project.sources)}+",
    ]
    named = [f"selector:{name}" for name in project.yaml_selectors]
    return fixed + drawn + named

"""Seeded random dbt projects, written the usual way: folders with configs in
dbt_project.yml, seeds, a source with tables, models that ref each other, config() calls,
properties files with generic tests (unique, not_null, accepted_values, relationships; a
custom name, a warn severity, tags on columns), singular tests, a snapshot; and selectors
over all of it. dbt itself is the oracle the parity tests compare kascade's plan with."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import yaml

FOLDERS = ("staging", "intermediate", "marts/finance", "marts/marketing", "")
TAGS = ("daily", "hourly", "pii", "finance")


@dataclass
class Generated:
    """A project written to disk and the selectors to try on it."""

    root: Path
    models: list[str]
    seeds: list[str]
    sources: list[str]
    selectors: list[str] = field(default_factory=list)


def generate(root: Path, seed: int, size: int = 18) -> Generated:
    """Write a project of about `size` models under `root`."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    seeds = [f"raw_{name}" for name in rng.sample(["people", "places", "things", "codes"], 3)]
    for index, name in enumerate(seeds):
        folder = "seeds/lookups/" if index == 2 else "seeds/"
        files[f"{folder}{name}.csv"] = "id,name\n1,a\n2,b\n"
    tables = ["events", "clicks", "orders"][: rng.randint(1, 3)]
    sources = [f"raw.{table}" for table in tables]
    source_yaml = {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "schema": "main",
                "tags": ["external"],
                "tables": [
                    {
                        "name": table,
                        "columns": [{"name": "id", "data_tests": ["not_null"]}],
                    }
                    for table in tables
                ],
            }
        ],
    }
    files["models/staging/sources.yml"] = yaml.safe_dump(source_yaml, sort_keys=False)
    models: list[str] = []
    model_folder: dict[str, str] = {}
    for index in range(size):
        folder = FOLDERS[min(index * len(FOLDERS) // size, len(FOLDERS) - 1)]
        prefix = {"staging": "stg", "intermediate": "int", "": "top"}.get(folder, "fct")
        name = f"{prefix}_{index:02d}"
        upstream = rng.sample(models, k=min(len(models), rng.randint(0, 3))) if models else []
        lines: list[str] = []
        if rng.random() < 0.3:
            tag = rng.choice(TAGS)
            materialized = rng.choice(["table", "view"])
            lines.append(f"{{{{ config(materialized='{materialized}', tags=['{tag}']) }}}}")
        selects = [f"select id, name from {{{{ ref('{up}') }}}}" for up in upstream]
        if not upstream:
            if folder == "staging" and rng.random() < 0.6:
                table = rng.choice(tables)
                selects = [f"select id, 'x' as name from {{{{ source('raw', '{table}') }}}}"]
            else:
                selects = [f"select id, name from {{{{ ref('{rng.choice(seeds)}') }}}}"]
        lines.append("\nunion all\n".join(selects))
        path = f"models/{folder}/{name}.sql" if folder else f"models/{name}.sql"
        files[path] = "\n".join(lines) + "\n"
        models.append(name)
        model_folder[name] = folder
    files["models/schema.yml"] = yaml.safe_dump(
        {"version": 2, "models": [_properties(rng, name, models) for name in models]},
        sort_keys=False,
    )
    files["seeds/properties.yml"] = yaml.safe_dump(
        {
            "version": 2,
            "seeds": [
                {
                    "name": seeds[0],
                    "config": {"tags": ["lookup"]},
                    "columns": [{"name": "id", "data_tests": ["unique"]}],
                }
            ],
        },
        sort_keys=False,
    )
    for index in range(rng.randint(1, 3)):
        refs = rng.sample(models, k=rng.randint(1, 2))
        body = " union all ".join(
            f"select id from {{{{ ref('{ref}') }}}} where id < 0" for ref in refs
        )
        folder = "tests/checks/" if index == 1 else "tests/"
        files[f"{folder}assert_nothing_{index}.sql"] = body + "\n"
    files["tests/generic/is_positive.sql"] = dedent(
        """\
        {% test is_positive(model, column_name) %}
        select * from {{ model }} where {{ column_name }} < 0
        {% endtest %}
        """
    )
    snapshot_seed = rng.choice(seeds)
    files["snapshots/snap.sql"] = dedent(
        f"""\
        {{% snapshot {snapshot_seed}_history %}}
        {{{{ config(unique_key='id', strategy='check', check_cols=['name'],
                    target_schema='snapshots') }}}}
        select * from {{{{ ref('{snapshot_seed}') }}}}
        {{% endsnapshot %}}
        """
    )
    files["dbt_project.yml"] = yaml.safe_dump(
        {
            "name": "gen",
            "version": "1.0",
            "config-version": 2,
            "profile": "gen",
            "models": {
                "gen": {
                    "+tags": ["all"],
                    "staging": {"+tags": ["staging"], "+materialized": "view"},
                    "marts": {"+materialized": "table", "finance": {"+tags": ["finance"]}},
                }
            },
            "seeds": {"gen": {"+tags": ["seed"], "lookups": {"+tags": ["lookup"]}}},
            "data_tests": {"gen": {"+tags": ["checked"]}},
        },
        sort_keys=False,
    )
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    generated = Generated(root, models, seeds, sources)
    generated.selectors = _selectors(rng, generated)
    return generated


def _properties(rng: random.Random, name: str, models: list[str]) -> dict[str, object]:
    entry: dict[str, object] = {"name": name}
    columns: list[dict[str, object]] = []
    roll = rng.random()
    if roll < 0.5:
        columns.append({"name": "id", "data_tests": ["unique", "not_null"]})
    if roll < 0.3:
        columns.append(
            {
                "name": "name",
                "tags": ["pii"],
                "data_tests": [
                    {"accepted_values": {"arguments": {"values": ["a", "b", "x"]}}},
                    {"not_null": {"config": {"severity": "warn"}}},
                ],
            }
        )
    others = [other for other in models if other != name]
    if others and rng.random() < 0.25:
        columns.append(
            {
                "name": "id",
                "data_tests": [
                    {
                        "relationships": {
                            "arguments": {"to": f"ref('{rng.choice(others)}')", "field": "id"}
                        }
                    }
                ],
            }
        )
    if rng.random() < 0.15:
        entry["data_tests"] = [
            {"unique": {"name": f"{name}_ids_are_unique", "arguments": {"column_name": "id"}}}
        ]
    if rng.random() < 0.1:
        columns.append({"name": "id", "data_tests": ["is_positive"]})
    if columns:
        entry["columns"] = columns
    return entry


def _selectors(rng: random.Random, project: Generated) -> list[str]:
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
    ]
    drawn = [
        f"+{rng.choice(models)}",
        f"{rng.choice(models)}+",
        f"@{rng.choice(models)}",
        f"1+{rng.choice(models)}+1",
        f"{rng.choice(models)} {rng.choice(models)}",
        f"source:{rng.choice(project.sources)}+",
    ]
    return fixed + drawn

"""Seeded random dbt projects, written the usual way: folders with configs in
dbt_project.yml (some rendered from vars), seeds, a source with tables, models that ref
each other (some through `var()`: with a default, from `vars:`, scoped to the project, or
from the Flow's vars), config() calls in keyword and dict form, properties files with
generic tests (unique, not_null, accepted_values, relationships; a custom name, a warn
severity, tags on columns), singular tests, a snapshot block and a YAML snapshot, a
selectors.yml with a default selector, a vendored package and a local one referenced by
two-argument refs; and selectors over all of it. dbt itself is the oracle the parity tests
compare kascade's plan with."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import yaml

from tests.parity.genpackages import (
    LOCAL,
    ROOT_CONFIGS,
    VENDORED,
    link_local_package,
    package_files,
)
from tests.parity.genselectors import selectors, yaml_selectors

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
    vars: dict[str, object] = field(default_factory=dict)
    """The Flow's vars (dbt's `--vars`) both sides read the project with."""
    yaml_selectors: list[str] = field(default_factory=list)


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
    vars = _Vars()
    models: list[str] = []
    for index in range(size):
        folder = FOLDERS[min(index * len(FOLDERS) // size, len(FOLDERS) - 1)]
        prefix = {"staging": "stg", "intermediate": "int", "": "top"}.get(folder, "fct")
        name = f"{prefix}_{index:02d}"
        upstream = rng.sample(models, k=min(len(models), rng.randint(0, 3))) if models else []
        lines = _config_calls(rng)
        selects = [
            f"select id, name from {{{{ ref({_ref_argument(rng, vars, name, up, models)}) }}}}"
            for up in upstream
        ]
        if not upstream:
            roll = rng.random()
            if folder == "staging" and roll < 0.5:
                table = rng.choice(tables)
                selects = [f"select id, 'x' as name from {{{{ source('raw', '{table}') }}}}"]
            elif roll < 0.75:
                package_ref = rng.choice(
                    [f"'{LOCAL}', 'h_base'", "'su_base'", f"'{VENDORED}', 'su_other'"]
                )
                selects = [f"select id, name from {{{{ ref({package_ref}) }}}}"]
            else:
                selects = [f"select id, name from {{{{ ref('{rng.choice(seeds)}') }}}}"]
        lines.append("\nunion all\n".join(selects))
        if models and rng.random() < 0.3:
            lines.append(_conditional(rng, vars, name, models))
        path = f"models/{folder}/{name}.sql" if folder else f"models/{name}.sql"
        files[path] = "\n".join(lines) + "\n"
        models.append(name)
    files["models/optional/opt_leaf.sql"] = f"select id, name from {{{{ ref('{models[0]}') }}}}\n"
    files["models/schema.yml"] = yaml.safe_dump(
        {"version": 2, "models": [_properties(rng, name, models) for name in models]},
        sort_keys=False,
    )
    files["models/snapshots.yml"] = _yaml_snapshot(rng, models, tables)
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
    files.update(package_files(rng))
    cli = vars.cli(rng)
    files["dbt_project.yml"] = yaml.safe_dump(
        {
            "name": "gen",
            "version": "1.0",
            "config-version": 2,
            "profile": "gen",
            "vars": vars.block(rng),
            "models": {
                "gen": {
                    "+tags": ["all"],
                    "staging": {"+tags": ["staging"], "+materialized": "view"},
                    # dbt_project.yml sees the Flow's vars only, never its own `vars:`
                    "intermediate": {"+tags": ["{{ var('folder_tag', 'vt') }}"]},
                    "marts": {"+materialized": "table", "finance": {"+tags": ["finance"]}},
                    "optional": {"+enabled": "{{ var('optional_on', false) }}"},
                },
                **ROOT_CONFIGS,
            },
            "seeds": {"gen": {"+tags": ["seed"], "lookups": {"+tags": ["lookup"]}}},
            "data_tests": {"gen": {"+tags": ["checked"]}},
        },
        sort_keys=False,
    )
    written = yaml_selectors(rng, models)
    files["selectors.yml"] = yaml.safe_dump({"selectors": written}, sort_keys=False)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    link_local_package(root)
    generated = Generated(root, models, seeds, sources, vars=cli)
    generated.yaml_selectors = [str(entry["name"]) for entry in written]
    generated.selectors = selectors(rng, generated)
    return generated


@dataclass
class _Vars:
    """The vars the models' refs read, and where each gets its value."""

    project: dict[str, str] = field(default_factory=lambda: {"folder_tag": "not_seen"})
    scoped: dict[str, str] = field(default_factory=dict)
    flow: dict[str, object] = field(default_factory=dict)

    def block(self, rng: random.Random) -> dict[str, object]:
        """The `vars:` of dbt_project.yml: global, scoped to the project, to a package."""
        block: dict[str, object] = {**self.project, "gen": dict(self.scoped)}
        if rng.random() < 0.5:
            # the root's scoped var wins over the package's own, in SQL and properties files
            block[VENDORED] = {"su_pick": "su_other", "su_flag": "root_says"}
        if rng.random() < 0.5:
            block["yml_tag"] = "from_project"
        return block

    def cli(self, rng: random.Random) -> dict[str, object]:
        """The Flow's vars."""
        if rng.random() < 0.5:
            self.flow["folder_tag"] = "from_flow"
        if rng.random() < 0.5:
            self.flow["optional_on"] = True
        return dict(self.flow)


def _ref_argument(rng: random.Random, vars: _Vars, name: str, up: str, models: list[str]) -> str:
    """A ref's arguments naming `up`: literally, or through a var found where the roll says."""
    roll = rng.random()
    var = f"pick_{name}"
    other = rng.choice(models)
    if roll < 0.7:
        return f"'{up}'"
    if roll < 0.78:
        return f"var('{var}', '{up}')"
    if roll < 0.86:
        vars.project[var] = up
        return f"var('{var}')"
    if roll < 0.93:
        vars.scoped[var] = up
        vars.project[var] = other
        return f"var('{var}', '{other}')"
    vars.project[var] = other
    vars.flow[var] = up
    return f"var('{var}')"


def _conditional(rng: random.Random, vars: _Vars, name: str, models: list[str]) -> str:
    """A ref in a branch: dbt's parse takes it only when the branch is taken (never under
    `execute` or `is_incremental()`; under a var, as the var says)."""
    first, second = rng.choice(models), rng.choice(models)
    roll = rng.random()
    if roll < 0.3:
        newest = f"(select max(id) from {{{{ ref('{first}') }}}})"
        return f"{{% if is_incremental() %}}where id > {newest}{{% endif %}}"
    if roll < 0.5:
        return f"{{% if execute %}}-- {{{{ ref('{first}') }}}}{{% endif %}}"
    var = f"branch_{name}"
    if rng.random() < 0.4:
        vars.flow[var] = rng.choice([True, False])
    return (
        f"{{% if var('{var}', {rng.choice(['true', 'false'])}) %}}-- {{{{ ref('{first}') }}}}\n"
        f"{{% else %}}-- {{{{ ref('{second}') }}}}\n{{% endif %}}"
    )


def _config_calls(rng: random.Random) -> list[str]:
    """No config, or config() in keyword form, dict form (one line or several), or both."""
    roll = rng.random()
    tag = rng.choice(TAGS)
    materialized = rng.choice(["table", "view"])
    if roll < 0.12:
        return [f"{{{{ config(materialized='{materialized}', tags=['{tag}']) }}}}"]
    if roll < 0.22:
        return [f"{{{{ config({{'materialized': '{materialized}', 'tags': ['{tag}']}}) }}}}"]
    if roll < 0.3:
        return [
            "{{ config({",
            f"    'tags': ['{tag}'],",
            f"    'materialized': '{materialized}',",
            "}) }}",
            "{{ config(materialized='view') }}",
        ]
    return []


def _yaml_snapshot(rng: random.Random, models: list[str], tables: list[str]) -> str:
    relation = (
        f"ref('{rng.choice(models)}')"
        if rng.random() < 0.6
        else f"source('raw', '{rng.choice(tables)}')"
    )
    return yaml.safe_dump(
        {
            "snapshots": [
                {
                    "name": "yml_snap",
                    "relation": relation,
                    "config": {
                        "unique_key": "id",
                        "strategy": "check",
                        "check_cols": "all",
                        "tags": ["yml_snapshot"],
                    },
                    "columns": [{"name": "id", "data_tests": ["not_null"]}],
                }
            ]
        },
        sort_keys=False,
    )


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
    if rng.random() < 0.2:
        entry["config"] = {"tags": ["{{ var('yml_tag', 'from_default') }}"]}
    if columns:
        entry["columns"] = columns
    return entry

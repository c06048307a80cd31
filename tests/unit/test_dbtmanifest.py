"""dbt's own parse as the fallback for refs the static reader cannot know: a fresh
target/manifest.json of the same project tells them; otherwise a problem says how to get one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kascade.engine.dbtmanifest import Manifest, ManifestNode, read_manifest
from kascade.engine.project import load_project
from tests.projects import write_project

FILES = {
    "dbt_project.yml": "name: p\n",
    "macros/pick.sql": "{% macro pick() %}{{ ref('a') }}{% endmacro %}",
    "models/a.sql": "select 1 as id",
    "models/b.sql": "select 1 as id",
    "models/c.sql": "select 1\nfrom {{ pick() }}",
    "models/d.sql": "{% set m = 'a' ~ target.name %}\n{{ config(materialized=var('mat')) }}",
}


def manifest(project: str = "p", **nodes: dict[str, object]) -> str:
    return json.dumps({"metadata": {"project_name": project}, "nodes": nodes})


def write_manifest(root: Path, text: str, *, age: float = 0) -> None:
    path = root / "target" / "manifest.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    later = time.time() + 10 - age
    os.utime(path, (later, later))


def test_read_manifest_is_a_function_of_its_text():
    found = read_manifest(
        manifest(
            **{
                "model.p.c": {
                    "depends_on": {"nodes": ["model.p.a"]},
                    "config": {"materialized": "table"},
                    "tags": ["t"],
                },
                "model.p.x": {},
            }
        )
    )
    assert found == Manifest(
        "p",
        {
            "model.p.c": ManifestNode(("model.p.a",), {"materialized": "table"}, ("t",)),
            "model.p.x": ManifestNode(()),
        },
    )
    assert read_manifest("{").startswith("not valid JSON")
    assert read_manifest("[]") == "not a dbt manifest (no `nodes`)"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path, FILES)


def test_without_a_manifest_computed_refs_are_problems_naming_model_file_and_line(root: Path):
    assert load_project(root, {"mat": "{{ params.m }}"}).problems == (
        "the refs of model `c` are computed (models/c.sql:2: it calls macro `pick`, which calls "
        "ref() or source()): run `dbt parse` so that target/manifest.json tells them (there is "
        "no target/manifest.json), or write the ref literally",
        "the config of model `d` is computed (models/d.sql:2: var `mat` is only known when the "
        "run starts): run `dbt parse` so that target/manifest.json tells them (there is no "
        "target/manifest.json), or write the value literally",
    )


def test_a_fresh_manifest_tells_the_dependencies_and_configs(root: Path):
    write_manifest(
        root,
        manifest(
            **{
                "model.p.c": {"depends_on": {"nodes": ["model.p.a", "model.p.b"]}},
                "model.p.d": {"config": {"materialized": "table"}, "tags": ["x"]},
            }
        ),
    )
    project = load_project(root, {"mat": "{{ params.m }}"})
    assert project.problems == ()
    assert project.graph.parents("model.p.c") == ("model.p.a", "model.p.b")
    assert (project.models["d"].materialized, project.models["d"].tags) == ("table", ("x",))


@pytest.mark.parametrize(
    ("text", "age", "why"),
    [
        (manifest(**{"model.p.c": {}}), 20, "target/manifest.json is older than "),
        (manifest("other", **{"model.p.c": {}}), 0, "target/manifest.json is of project `other`"),
        (manifest(), 0, "target/manifest.json lacks it"),
        (
            manifest(**{"model.p.c": {"depends_on": {"nodes": ["model.p.gone"]}}}),
            0,
            "target/manifest.json names `model.p.gone`, which is not defined",
        ),
        ("not json", 0, "target/manifest.json: not valid JSON"),
    ],
)
def test_a_manifest_that_cannot_be_trusted_is_not_used(
    tmp_path: Path, text: str, age: float, why: str
):
    root = write_project(tmp_path, {k: v for k, v in FILES.items() if k != "models/d.sql"})
    write_manifest(root, text, age=age)
    (problem,) = load_project(root).problems
    assert problem.startswith("the refs of model `c` are computed (models/c.sql:2")
    assert f"({why}" in problem

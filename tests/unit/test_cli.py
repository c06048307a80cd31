"""The command line as a user runs it: exit codes, stdout and messages, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.projects import flow_yaml, write_project

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "flow.yaml"


def kascade(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kascade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_plan_json_prints_the_task_list():
    result = kascade("plan", SHOP, "-o", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["flow"] == "shop-daily"
    tasks = {t["id"]: t for t in plan["tasks"]}
    types = [t["type"] for t in plan["tasks"]]
    assert {kind: types.count(kind) for kind in set(types)} == {
        "seed": 5,
        "model": 11,
        "test": 14,
        "snapshot": 1,
    }
    assert tasks["raw_orders"] == {
        "id": "raw_orders",
        "node": "seeds",
        "type": "seed",
        "target": "raw_orders",
        "dependsOn": [],
    }
    assert tasks["stg_orders"]["dependsOn"] == ["raw_orders"]
    assert tasks["stg_orders.test"]["dependsOn"] == ["stg_orders"]
    # the ephemeral int_order_payments is no task: its children depend through it
    assert "int_order_payments" not in tasks
    assert set(tasks["int_orders_enriched"]["dependsOn"]) >= {"stg_payments", "stg_orders.test"}
    assert result.stderr == ""


def test_plan_table_and_diagram():
    table = kascade("plan", SHOP)
    assert table.returncode == 0
    assert "fct_revenue_daily" in table.stdout
    assert "DEPENDS ON" in table.stdout
    diagram = kascade("diagram", SHOP)
    assert diagram.returncode == 0
    assert diagram.stdout.startswith("flowchart LR\n")
    assert 'subgraph n1["staging (model)"]' in diagram.stdout


def test_lint_accepts_the_example():
    result = kascade("lint", SHOP)
    assert result.returncode == 0, result.stderr
    assert "flow `shop-daily` is valid: 31 tasks, 2 hooks" in result.stdout


def test_crds_prints_exactly_what_crds_holds():
    printed = [d for d in yaml.safe_load_all(kascade("crds").stdout) if d]
    on_disk = [
        d
        for f in sorted((ROOT / "crds").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    assert printed == on_disk


def test_the_chart_ships_the_same_crd_files_as_crds():
    top = {f.name: f.read_bytes() for f in (ROOT / "crds").glob("*.yaml")}
    chart = {f.name: f.read_bytes() for f in (ROOT / "charts/kascade/crds").glob("*.yaml")}
    assert chart == top, "run `make crds` (it copies crds/ into charts/kascade/crds/)"


def test_lint_names_every_error_and_exits_1(tmp_path: Path):
    write_project(
        tmp_path,
        {
            "models/a.sql": "select * from {{ ref('missing') }}",
            "flow.yaml": flow_yaml(
                [
                    {"name": "e", "transformation": {"include": ["tag:none"]}},
                    {"name": "n", "transformation": {"include": ["tag:"]}},
                    {"name": "m", "script": {"name": "nope"}, "dependsOn": ["zz"]},
                ]
            ),
        },
    )
    result = kascade("lint", tmp_path / "flow.yaml")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "model `a` refs unknown model `missing` (models/a.sql:1)" in result.stderr
    assert "node `n`: include[0]: selector `tag:` has no value to match" in result.stderr
    assert "node `m` dependsOn unknown node `zz`" in result.stderr
    assert "node `e` selects no models (include: tag:none); set transformation.allowEmpty" in (
        result.stderr
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["plan", "missing.yaml"], "missing.yaml: cannot read"),
        ({"flow.yaml": "a: ["}, ["plan", "flow.yaml"], "flow.yaml:1: invalid YAML"),
        (
            {"flow.yaml": flow_yaml([{"name": "a"}])},
            ["diagram", "flow.yaml"],
            "must set exactly one of",
        ),
        (
            {"flow.yaml": flow_yaml([{"name": "a", "script": {"name": "s"}}])},
            ["plan", "flow.yaml", "--project", "nowhere"],
            "project directory nowhere does not exist",
        ),
        (
            {
                "flow.yaml": flow_yaml(
                    [{"name": "a", "transformation": {}}, {"name": "b", "transformation": {}}]
                ),
                "models/x.sql": "select 1",
            },
            ["plan", "flow.yaml", "-o", "json"],
            "selected by two nodes: `a` and `b`",
        ),
    ],
)
def test_errors_exit_1_with_a_message_and_no_traceback(tmp_path: Path, files, args, message):
    write_project(tmp_path, files)
    result = kascade(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_empty_selection_is_an_error_unless_allowed(tmp_path: Path):
    node = {"name": "a", "transformation": {"include": ["tag:none"]}}
    write_project(tmp_path, {"models/x.sql": "select 1", "flow.yaml": flow_yaml([node])})
    for command in ("lint", "plan"):
        result = kascade(command, tmp_path / "flow.yaml")
        assert result.returncode == 1, result.stderr
        assert "node `a` selects no models (include: tag:none)" in result.stderr
        assert "Traceback" not in result.stderr
    node["transformation"]["allowEmpty"] = True  # type: ignore[index]
    (tmp_path / "flow.yaml").write_text(flow_yaml([node]))
    result = kascade("plan", tmp_path / "flow.yaml", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"flow": "f", "tasks": []}


def test_project_option_points_elsewhere(tmp_path: Path):
    write_project(
        tmp_path,
        {
            "proj/models/x.sql": "select 1",
            "proj/dbt_project.yml": "name: proj\n",
            "flows/flow.yaml": flow_yaml([{"name": "a", "transformation": {}}]),
        },
    )
    result = kascade("plan", "flows/flow.yaml", "--project", "proj", "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [t["id"] for t in json.loads(result.stdout)["tasks"]] == ["x"]


def test_lint_names_the_macro_package_and_var_a_model_would_miss(tmp_path: Path):
    write_project(
        tmp_path,
        {
            "dbt_project.yml": "name: p\nvars:\n  given: 1\n",
            "macros/m.sql": "{% macro m(x) %}{{ x }}{% endmacro %}",
            "models/a.sql": "select {{ m(1) }} as a, {{ var('given') }} as b\n"
            "-- {{ current_timestamp() }} {{ adapter.dispatch('m')(2) }}",
            "models/b.sql": "select {{ nope() }} as x,\n {{ dbt_utils.star('a') }} as y",
            "models/c.sql": "select {{ var('wanted') }} as x",
            "flow.yaml": flow_yaml([{"name": "t", "transformation": {}}]),
        },
    )
    result = kascade("lint", tmp_path / "flow.yaml")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: models/b.sql:1: model `b` calls macro `nope`, which neither the project, its "
        "packages nor dbt define",
        "error: models/b.sql:2: model `b` calls `dbt_utils.star`, but package `dbt_utils` is "
        "not installed: vendor it in the project (run `dbt deps` and keep dbt_packages/; "
        "kascade never reaches the dbt package hub)",
        "error: models/c.sql:1: model `c`: var `wanted` has no value: set it in "
        "dbt_project.yml `vars:` or the Flow's `spec.vars`",
    ]

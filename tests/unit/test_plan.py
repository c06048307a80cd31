"""Expansion of a Flow over a project: tasks, dependencies, and errors naming culprits."""

from __future__ import annotations

from pathlib import Path

import pytest

from kascade.api import TaskType, TriggerRule
from kascade.engine.errors import PlanError
from kascade.engine.plan import Plan, build_plan
from kascade.engine.project import Project, load_project
from tests.projects import flow, write_project


def deps(plan: Plan) -> dict[str, set[str]]:
    return {task.id: set(task.depends_on) for task in plan.tasks}


def problems(error: pytest.ExceptionInfo[PlanError]) -> str:
    return "\n".join(error.value.problems)


def test_one_task_per_selected_model_with_ids_types_and_targets(shop: Project):
    plan = build_plan(flow([{"name": "all", "transformation": {"include": ["tag:all"]}}]), shop)
    assert {t.id for t in plan.tasks} == set(shop.models)
    fct = plan.by_id["fct_x"]
    assert (fct.node, fct.type, fct.target) == ("all", TaskType.MODEL, "fct_x")
    assert fct.path == "models/marts/finance/fct_x.sql"
    assert deps(plan)["int_ab"] == {"stg_a", "stg_b"}
    assert deps(plan)["dim_y"] == {"int_ab", "stg_b"}


def test_plan_is_in_topological_order(shop: Project):
    plan = build_plan(flow([{"name": "all", "transformation": {}}]), shop)
    seen: set[str] = set()
    for task in plan.tasks:
        assert set(task.depends_on) <= seen
        seen.add(task.id)


def test_transitive_edges_are_kept_through_unselected_models(shop: Project):
    # rpt_z refs fct_x refs int_ab refs stg_a/stg_b: with only stg_a and rpt_z selected,
    # rpt_z still runs after stg_a.
    plan = build_plan(
        flow([{"name": "n", "transformation": {"include": ["stg_a", "rpt_z"]}}]), shop
    )
    assert deps(plan) == {"stg_a": set(), "rpt_z": {"stg_a"}}


def test_transitive_edges_hold_across_transformation_nodes(shop: Project):
    plan = build_plan(
        flow(
            [
                {"name": "marts", "transformation": {"include": ["tag:mart"]}},
                {"name": "staging", "transformation": {"include": ["tag:staging"]}},
            ]
        ),
        shop,
    )
    d = deps(plan)
    assert d["fct_x"] == {"stg_a", "stg_b"}
    assert d["dim_y"] == {"stg_a", "stg_b"}
    assert d["rpt_z"] == {"fct_x"}
    assert plan.by_id["fct_x"].node == "marts"
    ids = [t.id for t in plan.tasks]
    assert ids.index("stg_a") < ids.index("fct_x")


def test_depends_on_makes_every_task_wait_for_every_task_of_the_node(shop: Project):
    plan = build_plan(
        flow(
            [
                {"name": "load", "script": {"name": "load"}},
                {
                    "name": "staging",
                    "transformation": {"include": ["tag:staging"]},
                    "dependsOn": ["load"],
                },
                {
                    "name": "export",
                    "script": {"name": "notify"},
                    "dependsOn": ["staging"],
                    "trigger": "allDone",
                },
            ]
        ),
        shop,
    )
    d = deps(plan)
    assert d["load"] == set()
    assert d["stg_a"] == d["stg_b"] == d["stg_c"] == {"load"}
    assert d["export"] == {"stg_a", "stg_b", "stg_c"}
    export = plan.by_id["export"]
    assert (export.type, export.target, export.trigger) == (
        TaskType.SCRIPT,
        "notify",
        TriggerRule.ALL_DONE,
    )


def test_depends_on_passes_through_a_node_without_tasks(shop: Project):
    plan = build_plan(
        flow(
            [
                {"name": "load", "script": {"name": "load"}},
                {
                    "name": "empty",
                    "transformation": {"include": ["tag:nothing"], "allowEmpty": True},
                    "dependsOn": ["load"],
                },
                {"name": "after", "script": {"name": "notify"}, "dependsOn": ["empty"]},
            ]
        ),
        shop,
    )
    assert deps(plan)["after"] == {"load"}
    assert plan.warnings == ()


def test_an_empty_selection_is_an_error_unless_the_node_allows_it(shop: Project):
    nodes = [{"name": "empty", "transformation": {"include": ["tag:nothing"]}}]
    with pytest.raises(PlanError) as caught:
        build_plan(flow(nodes), shop)
    assert caught.value.problems == (
        "node `empty` selects no models (include: tag:nothing); set "
        "transformation.allowEmpty: true if that is intended",
    )


def test_a_flow_that_starts_itself_plans_with_a_warning(shop: Project):
    plan = build_plan(flow([{"name": "again", "flow": {"name": "f"}}], name="f"), shop)
    assert plan.warnings == (
        "task `again` starts flow `f`, this flow itself: every run fails there (flow recursion)",
    )


def test_connectors_and_child_flows_become_tasks(shop: Project):
    plan = build_plan(
        flow(
            [
                {"name": "ingest", "connection": {"connectors": ["shopify", "stripe"]}},
                {"name": "child", "flow": {"name": "other-flow"}, "dependsOn": ["ingest"]},
            ]
        ),
        shop,
    )
    assert [(t.id, t.type, t.target) for t in plan.tasks] == [
        ("shopify", TaskType.CONNECTOR, "shopify"),
        ("stripe", TaskType.CONNECTOR, "stripe"),
        ("child", TaskType.FLOW, "other-flow"),
    ]
    assert deps(plan)["child"] == {"shopify", "stripe"}


def test_settings_come_from_the_node_then_defaults_then_built_ins(shop: Project):
    plan = build_plan(
        flow(
            [
                {"name": "a", "script": {"name": "load"}, "retries": 5},
                {"name": "b", "script": {"name": "load"}},
            ],
            defaults={"retries": 2, "timeoutSeconds": 60},
        ),
        shop,
    )
    a, b = plan.by_id["a"], plan.by_id["b"]
    assert (a.retries, a.timeout_seconds, a.retry_delay_seconds) == (5, 60, 30)
    assert (b.retries, b.timeout_seconds) == (2, 60)


def test_hooks_are_planned_apart_from_the_tasks(shop: Project):
    plan = build_plan(
        flow(
            [{"name": "a", "script": {"name": "load"}}],
            hooks={
                "onFailure": [{"name": "alert", "script": {"name": "notify"}}],
                "onFinish": [{"name": "done", "flow": {"name": "cleanup"}}],
            },
        ),
        shop,
    )
    assert [t.id for t in plan.tasks] == ["a"]
    assert [(h.id, h.hook, h.type) for h in plan.hooks] == [
        ("alert", "onFailure", TaskType.SCRIPT),
        ("done", "onFinish", TaskType.FLOW),
    ]
    assert plan.to_json()["hooks"][0]["event"] == "onFailure"


def test_json_shape(shop: Project):
    plan = build_plan(flow([{"name": "s", "transformation": {"include": ["+int_ab"]}}]), shop)
    assert plan.to_json() == {
        "flow": "f",
        "tasks": [
            {"id": "stg_a", "node": "s", "type": "model", "target": "stg_a", "dependsOn": []},
            {"id": "stg_b", "node": "s", "type": "model", "target": "stg_b", "dependsOn": []},
            {
                "id": "int_ab",
                "node": "s",
                "type": "model",
                "target": "int_ab",
                "dependsOn": ["stg_a", "stg_b"],
            },
        ],
    }


# --- errors ----------------------------------------------------------------------------


def test_a_model_cycle_is_printed(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "models/a.sql": "select * from {{ ref('c') }}",
            "models/b.sql": "select * from {{ ref('a') }}",
            "models/c.sql": "select * from {{ ref('b') }}",
            "models/d.sql": "select 1",
        },
    )
    with pytest.raises(PlanError) as err:
        build_plan(flow([{"name": "n", "transformation": {"include": ["d"]}}]), load_project(root))
    assert problems(err) == "cycle in model refs: a -> c -> b -> a"


def test_a_cycle_made_by_depends_on_and_refs_is_printed(shop: Project):
    nodes = [
        {"name": "marts", "transformation": {"include": ["fct_x"]}},
        {"name": "staging", "transformation": {"include": ["stg_a"]}, "dependsOn": ["marts"]},
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert problems(err) == "cycle in task dependencies: fct_x -> stg_a -> fct_x"


def test_a_depends_on_cycle_between_nodes_is_printed(shop: Project):
    nodes = [
        {"name": "a", "script": {"name": "load"}, "dependsOn": ["b"]},
        {"name": "b", "script": {"name": "load"}, "dependsOn": ["a"]},
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert problems(err) == "cycle in node dependsOn: a -> b -> a"


def test_unknown_ref_names_model_file_and_missing_name(tmp_path: Path):
    root = write_project(tmp_path, {"models/fct.sql": "select *\n from {{ ref('stg_ordrs') }}"})
    with pytest.raises(PlanError) as err:
        build_plan(flow([{"name": "n", "transformation": {}}]), load_project(root))
    assert problems(err) == "model `fct` refs unknown model `stg_ordrs` (models/fct.sql:2)"


def test_a_model_selected_by_two_nodes_names_both_nodes_and_the_model(shop: Project):
    nodes = [
        {"name": "staging", "transformation": {"include": ["tag:staging"]}},
        {"name": "more", "transformation": {"include": ["stg_b", "int_ab"]}},
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert problems(err) == (
        "model `stg_b` selected by two nodes: `staging` and `more`; a model may belong to one "
        "node only"
    )


def test_unknown_depends_on_node_is_named(shop: Project):
    nodes = [{"name": "a", "script": {"name": "load"}, "dependsOn": ["lod", "a"]}]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert (
        problems(err)
        == "node `a` dependsOn unknown node `lod` (nodes: a)\nnode `a` dependsOn itself"
    )


def test_unparsable_selector_names_node_list_and_index(shop: Project):
    nodes = [
        {"name": "n", "transformation": {"include": ["tag:a", "colour:red"], "exclude": ["@x+"]}}
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert "node `n`: include[1]: selector `colour:red`: unknown method `colour`" in problems(err)
    assert "node `n`: exclude[0]: selector `@x+`" in problems(err)


def test_unknown_script_is_named(shop: Project):
    nodes = [{"name": "a", "script": {"name": "lod_raw"}}]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes, hooks={"onFinish": [{"name": "h", "script": {"name": "x"}}]}), shop)
    assert problems(err) == (
        "node `a`: script `lod_raw` not found "
        "(expected scripts/lod_raw/__main__.py in the project)\n"
        "node `h`: script `x` not found (expected scripts/x/__main__.py in the project)"
    )


def test_task_id_collisions_are_named(shop: Project):
    nodes = [
        {"name": "stg_a", "script": {"name": "load"}},
        {"name": "models", "transformation": {"include": ["stg_a"]}},
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), shop)
    assert problems(err) == (
        "task id `stg_a` is produced twice: by node `stg_a` (script) and by node `models` "
        "(model); rename one of them"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path):
    root = write_project(
        tmp_path,
        {"models/a.sql": "select * from {{ ref('zz') }}", "models/b.sql": "select 1"},
    )
    nodes = [
        {"name": "n", "transformation": {"include": ["tag:"]}},
        {"name": "m", "script": {"name": "nope"}},
    ]
    with pytest.raises(PlanError) as err:
        build_plan(flow(nodes), load_project(root))
    assert len(err.value.problems) == 3
    assert str(err.value).startswith("3 problems:")

"""Plans over a dbt project's resources: one task per model, seed and snapshot, its tests
after it and before its descendants (dbt build), each task with the dbt selection of
exactly its resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from kascade.engine.errors import PlanError
from kascade.engine.plan import Plan, build_plan
from kascade.engine.project import load_project
from tests.projects import flow, write_project

FILES = {
    "dbt_project.yml": "name: p\nseeds:\n  p:\n    +tags: [raw]\n",
    "seeds/raw_people.csv": "id,name\n1,a\n",
    "models/stg_people.sql": "select * from {{ ref('raw_people') }}",
    "models/stg_events.sql": "select * from {{ source('app', 'events') }}",
    "models/people_events.sql": (
        "select * from {{ ref('stg_people') }} join {{ ref('stg_events') }} using (id)"
    ),
    "models/report.sql": "select * from {{ ref('people_events') }}",
    "models/other.sql": "select * from {{ ref('stg_events') }}",
    "models/schema.yml": """
        version: 2
        sources:
          - name: app
            tables:
              - name: events
                columns: [{name: id, data_tests: [not_null]}]
        models:
          - name: stg_people
            columns:
              - name: id
                data_tests: [unique, not_null]
          - name: people_events
            columns:
              - name: person_id
                data_tests:
                  - relationships: {arguments: {to: "ref('stg_events')", field: id}}
    """,
    "tests/no_empty_report.sql": "select 1 from {{ ref('report') }} where false",
    "snapshots/people.sql": """
        {% snapshot people_history %}
        {{ config(unique_key='id', strategy='check', check_cols='all') }}
        select * from {{ ref('raw_people') }}
        {% endsnapshot %}
    """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return load_project(write_project(tmp_path_factory.mktemp("dbt"), FILES))


def plan_of(project, **transformation) -> Plan:
    return build_plan(flow([{"name": "t", "transformation": transformation}]), project)


def deps(plan: Plan) -> dict[str, set[str]]:
    return {task.id: set(task.depends_on) for task in plan.tasks}


def test_every_resource_kind_becomes_a_task_with_its_dbt_selection(project):
    plan = plan_of(project)
    by_id = {task.id: task for task in plan.tasks}
    assert {(t.id, t.type.value) for t in plan.tasks} == {
        ("raw_people", "seed"),
        ("people_history", "snapshot"),
        ("stg_people", "model"),
        ("stg_events", "model"),
        ("people_events", "model"),
        ("report", "model"),
        ("other", "model"),
        ("stg_people.test", "test"),
        ("report.test", "test"),
        ("relationships_people_events_person_id__id__ref_stg_events_", "test"),
        ("source_not_null_app_events_id", "test"),
    }
    assert by_id["raw_people"].select == "path:seeds/raw_people.csv"
    assert by_id["stg_people"].select == "path:models/stg_people.sql"
    assert by_id["people_history"].select == "people_history"
    assert by_id["stg_people.test"].select == "not_null_stg_people_id unique_stg_people_id"
    assert by_id["stg_people.test"].target == "stg_people"
    assert by_id["report.test"].select == "no_empty_report"


def test_tests_run_after_their_resource_and_before_its_descendants(project):
    graph = deps(plan_of(project))
    assert graph["stg_people"] == {"raw_people"}
    assert graph["stg_people.test"] == {"stg_people"}
    assert graph["people_events"] == {"stg_people", "stg_people.test", "stg_events"}
    # a test on two models runs after both, and gates what descends from both
    relationships = "relationships_people_events_person_id__id__ref_stg_events_"
    assert graph[relationships] == {"people_events", "stg_events"}
    assert graph["report"] == {"people_events", relationships}
    # `other` descends from stg_events only: the relationships test does not hold it up
    assert graph["other"] == {"stg_events"}
    # a test on a source alone waits for nothing
    assert graph["source_not_null_app_events_id"] == set()


def test_a_node_may_turn_tests_off(project):
    plan = plan_of(project, tests=False)
    assert not [task for task in plan.tasks if task.type.value == "test"]
    assert deps(plan)["people_events"] == {"stg_people", "stg_events"}


def test_an_excluded_test_leaves_its_group(project):
    plan = plan_of(project, exclude=["test_name:not_null"])
    by_id = {task.id: task for task in plan.tasks}
    assert by_id["stg_people.test"].select == "unique_stg_people_id"
    assert "source_not_null_app_events_id" not in by_id


def test_selecting_a_model_brings_its_tests_and_keeps_transitive_order(project):
    plan = plan_of(project, include=["stg_people", "report"])
    assert deps(plan) == {
        "stg_people": set(),
        "stg_people.test": {"stg_people"},
        "report": {"stg_people", "stg_people.test"},
        "report.test": {"report"},
    }


def test_an_undefined_source_is_a_problem_naming_model_and_line(tmp_path: Path):
    root = write_project(tmp_path, {"models/a.sql": "select 1\nfrom {{ source('raw', 'orders') }}"})
    with pytest.raises(PlanError) as caught:
        build_plan(flow([{"name": "t", "transformation": {}}]), load_project(root))
    assert (
        "model `a` uses source `raw.orders`, which no properties file defines "
        "(sources: in a .yml file) (models/a.sql:2)"
    ) in caught.value.problems


def test_a_snapshot_block_names_the_snapshot_and_its_refs(project):
    snapshot = next(r for r in project.resources.values() if r.kind == "snapshot")
    assert (snapshot.name, snapshot.path, snapshot.fqn) == (
        "people_history",
        "snapshots/people.sql",
        ("p", "people_history"),
    )
    assert project.graph.parents(snapshot.unique_id) == ("seed.p.raw_people",)


def test_an_ephemeral_model_is_no_task_and_order_passes_through_it(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "models/a.sql": "select 1 as id",
            "models/e.sql": "{{ config(materialized='ephemeral') }} select * from {{ ref('a') }}",
            "models/b.sql": "select * from {{ ref('e') }}",
        },
    )
    plan = build_plan(flow([{"name": "t", "transformation": {}}]), load_project(root))
    assert deps(plan) == {"a": set(), "b": {"a"}}

"""YAML selectors (selectors.yml): every form dbt parses, the default selector of a node
without include, `selector:NAME` in includes and excludes, indirect selection modes, and
problems naming the file and the selector."""

from __future__ import annotations

from pathlib import Path

import pytest

from kascade.engine.errors import PlanError
from kascade.engine.plan import build_plan
from kascade.engine.project import Project, load_project
from kascade.engine.selectors import select
from tests.projects import flow, write_project

# a <- b <- c, b <- d; tests: unique_a_id (a), relationships c -> d
FILES = {
    "dbt_project.yml": """
        name: p
        models:
          p:
            staging: {+tags: [staging]}
    """,
    "models/staging/a.sql": "select 1 as id",
    "models/b.sql": "{{ config(tags=['mart']) }}\nselect * from {{ ref('a') }}",
    "models/c.sql": "select * from {{ ref('b') }}",
    "models/d.sql": "{{ config(tags=['pii', 'mart']) }}\nselect * from {{ ref('b') }}",
    "models/schema.yml": """
        models:
          - name: a
            columns: [{name: id, data_tests: [unique]}]
          - name: c
            columns:
              - name: id
                data_tests: [{relationships: {to: "ref('d')", field: id}}]
    """,
    "selectors.yml": """
        selectors:
          - name: staging
            definition: "tag:staging"
          - name: staging_children
            description: staging and one level below
            definition: {method: tag, value: staging, children: true, children_depth: 1}
          - name: marts_but_pii
            definition:
              union:
                - "tag:mart"
                - intersection: ["resource_type:model", "path:models/staging"]
                - exclude: ["tag:pii"]
          - name: reuse
            default: true
            definition:
              union:
                - {method: selector, value: staging}
                - {method: fqn, value: c, exclude: ["resource_type:test"]}
          - name: cautious_c
            definition: {method: fqn, value: c, indirect_selection: cautious}
          - name: buildable_c
            definition: {method: fqn, value: c, indirect_selection: buildable}
          - name: empty_c
            definition: {method: fqn, value: c, parents: true, indirect_selection: empty}
          - name: c_without_tests
            definition: {method: fqn, value: c, exclude: ["resource_type:test"]}
    """,
}
RELATIONSHIP = "relationships_c_id__id__ref_d_"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return load_project(write_project(tmp_path_factory.mktemp("selectors"), FILES))


def names(project: Project, include: list[str] | None, exclude: list[str] | None = None):
    return {project.resources[uid].name for uid in select(project, include, exclude)}


def test_selectors_yml_is_read_with_its_default(project: Project):
    assert project.problems == ()
    assert project.selectors.default == "reuse"
    assert list(project.selectors.specs) == [
        "staging",
        "staging_children",
        "marts_but_pii",
        "reuse",
        "cautious_c",
        "buildable_c",
        "empty_c",
        "c_without_tests",
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("staging", {"a", "unique_a_id"}),
        ("staging_children", {"a", "b", "unique_a_id"}),
        ("marts_but_pii", {"a", "b", "unique_a_id"}),
        # in a union, a mapping with `exclude` is the union's exclude, its method ignored
        ("reuse", {"a"}),
        ("cautious_c", {"c"}),
        ("buildable_c", {"c"}),
        ("empty_c", {"a", "b", "c"}),
        ("c_without_tests", {"c"}),
    ],
)
def test_each_form_selects_what_dbt_selects(project: Project, selector: str, expected: set[str]):
    assert names(project, [f"selector:{selector}"]) == expected


def test_indirect_selection_modes_take_tests_along_as_dbt_does(project: Project):
    assert names(project, ["selector:cautious_c", "d"]) == {"c", "d", RELATIONSHIP}
    assert RELATIONSHIP not in names(project, ["selector:buildable_c"])
    assert RELATIONSHIP in names(project, ["c"])  # eager: any of its resources selected


def test_a_node_without_include_selects_the_default_selector(project: Project):
    assert names(project, None) == {"a"}
    # an exclude alone means everything else, not the default selector (as in dbt)
    assert names(project, None, ["tag:mart"]) == {"a", "c", "unique_a_id"}
    assert names(project, None, ["selector:staging"]) == {"b", "c", "d", RELATIONSHIP}


def test_an_intersection_takes_the_tests_of_each_criterion_along(project: Project):
    assert names(project, ["tag:staging,resource_type:test"]) == {"unique_a_id"}


def test_plans_use_the_default_selector_and_name_unknown_selectors(project: Project):
    plan = build_plan(flow([{"name": "t", "transformation": {}}]), project)
    assert [task.id for task in plan.tasks] == ["a"]
    nodes = [{"name": "t", "transformation": {"include": ["selector:nope"]}}]
    with pytest.raises(PlanError) as raised:
        build_plan(flow(nodes), project)
    assert raised.value.problems == (
        "node `t`: include[0]: selector `selector:nope`: selectors.yml defines no selector "
        "`nope` (defined: staging, staging_children, marts_but_pii, reuse, cautious_c, "
        "buildable_c, empty_c, c_without_tests)",
    )
    nodes = [{"name": "t", "transformation": {"include": ["tag:nothing"]}}]
    with pytest.raises(PlanError, match="include: tag:nothing"):
        build_plan(flow(nodes), project)


@pytest.mark.parametrize(
    ("definition", "said"),
    [
        ("{selector: staging}", "`selector` here must be written {method: selector, value: NAME}"),
        ("{method: selector, value: later}", "selector `later` is not defined above it"),
        ("'selector:staging'", "`selector:` names a selector of selectors.yml"),
        ("{method: colour, value: red}", "unknown method `colour`"),
        ("{union: [a], intersection: [b]}", "a single `union` or `intersection` key"),
        ("{union: [a, {exclude: [b]}, {exclude: [c]}]}", "more than one `exclude`"),
        ("{method: tag, value: x, indirect_selection: lazy}", "indirect_selection `lazy`"),
        ("{method: tag}", "unknown method `method`"),
        ("{method: fqn, value: a, children: true, childrens_parents: true}", "incompatible"),
        ("[a, b]", "not list"),
    ],
)
def test_a_bad_definition_is_a_problem_naming_the_file_and_selector(
    tmp_path: Path, definition: str, said: str
):
    root = write_project(
        tmp_path,
        {
            "models/a.sql": "select 1",
            "selectors.yml": (
                "selectors:\n"
                "  - {name: staging, definition: 'tag:x'}\n"
                f"  - {{name: bad, definition: {definition}}}\n"
            ),
        },
    )
    (problem,) = load_project(root).problems
    assert problem.startswith("selectors.yml: selector `bad`: ")
    assert said in problem


def test_two_defaults_and_missing_names_are_problems(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "models/a.sql": "select 1",
            "selectors.yml": """
                selectors:
                  - {name: one, default: true, definition: a}
                  - {name: two, default: true, definition: a}
                  - {definition: a}
            """,
        },
    )
    assert load_project(root).problems == (
        "selectors.yml: selectors `one` and `two` are both `default: true`; one default at most",
        "selectors.yml: selectors[2] needs a `name` and a `definition`",
    )


def test_selectors_yml_renders_the_flows_vars(tmp_path: Path):
    root = write_project(
        tmp_path,
        {
            "models/a.sql": "{{ config(tags=['x']) }}select 1",
            "models/b.sql": "select 1",
            "selectors.yml": """
                selectors:
                  - name: by_var
                    default: true
                    definition: {method: tag, value: "{{ var('wanted', 'x') }}"}
            """,
        },
    )
    assert names(load_project(root), None) == {"a"}
    assert names(load_project(root, {"wanted": "y"}), None) == set()

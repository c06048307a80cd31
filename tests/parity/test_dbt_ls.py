"""kascade's static reader and selector against `dbt ls` on generated projects: the same
resources, the same dependencies and tags, and the same selection for every selector."""

from __future__ import annotations

import pytest

from kascade.engine.project import Project, load_project
from kascade.engine.resources import Resource
from kascade.engine.selectors import select
from tests.parity.conftest import PROJECTS
from tests.parity.generator import Generated, generate
from tests.parity.oracle import Listed, Oracle


def key(resource: Resource) -> str:
    name = f"{resource.source_name}.{resource.name}" if resource.source_name else resource.name
    return f"{resource.kind.value}:{name}"


@pytest.fixture(scope="module", params=range(PROJECTS), ids=lambda seed: f"seed{seed}")
def case(request, tmp_path_factory) -> tuple[Generated, Project, Oracle]:
    folder = tmp_path_factory.mktemp(f"parity{request.param}")
    generated = generate(folder / "project", request.param)
    project = load_project(generated.root, generated.vars)
    assert project.problems == ()
    return generated, project, Oracle(generated.root, folder / "dbt", generated.vars)


def by_key(listed: list[Listed]) -> dict[str, Listed]:
    return {entry.key: entry for entry in listed}


def test_the_same_resources_dependencies_and_tags(case):
    _, project, oracle = case
    dbt = by_key(oracle.everything())
    ours = {key(resource): resource for resource in project.resources.values()}
    assert sorted(ours) == sorted(dbt)
    keys_of_dbt = {entry.unique_id: k for k, entry in dbt.items()}
    for name, resource in ours.items():
        parents = {key(project.resources[uid]) for uid in project.graph.parents(resource.unique_id)}
        assert parents == {keys_of_dbt[uid] for uid in dbt[name].depends_on}, name
        assert set(resource.tags) == set(dbt[name].tags), name


def test_every_selector_selects_what_dbt_ls_lists(case):
    generated, project, oracle = case
    differences: dict[str, tuple[list[str], list[str]]] = {}
    for selector in [*generated.selectors, None]:
        if selector is None:  # no include: the default selector of selectors.yml
            listed = oracle.ls()
        elif selector.startswith("selector:"):
            listed = oracle.ls(selector=selector.removeprefix("selector:"))
        else:
            listed = oracle.ls(selector)
        expected = {entry.key for entry in listed}
        include = None if selector is None else [selector]
        found = {key(project.resources[uid]) for uid in select(project, include)}
        if found != expected:
            differences[str(selector)] = (sorted(found - expected), sorted(expected - found))
    assert differences == {}, "selector: (only kascade, only dbt)"


def test_exclusions_remove_what_dbt_removes(case):
    generated, project, oracle = case
    model = generated.models[len(generated.models) // 2]
    for include, exclude in [
        ("tag:all", "tag:staging"),
        (f"+{model}", "resource_type:test"),
        ("resource_type:model", "test_name:not_null"),
        (f"{model}+", model),
        (None, "tag:staging"),  # an exclude without include: not the default selector
    ]:
        expected = {entry.key for entry in oracle.ls(include, exclude)}
        found = {
            key(project.resources[uid])
            for uid in select(project, None if include is None else [include], [exclude])
        }
        assert found == expected, (include, exclude)

"""A warehouse that is a target of the user's own dbt profiles.yml (any dbt adapter):
the Flow's `spec.warehouse` of type profiles, the URL tasks receive, the Secret the pod
mounts, and how the runtime picks the profile and target, naming the file when it can't."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kascade.api.warehouse import Warehouse
from kascade.contract.warehouse import WarehouseURLError, check_url, profiles_location
from kascade.operator.jobs import job_body
from kascade.runtime.dbtprofile import target_for
from kascade.runtime.errors import CannotStart
from tests.unit.test_operator_parts import attempt, launch

PROFILES = {
    "config": {"send_anonymous_usage_stats": False},
    "shop": {
        "target": "dev",
        "outputs": {
            "dev": {"type": "duckdb", "path": "/data/dev.duckdb", "threads": 8},
            "prod": {
                "type": "postgres",
                "host": "pg",
                "user": "loader",
                "password": "{{ env_var('WAREHOUSE_PASSWORD') }}",
                "dbname": "shop",
                "schema": "analytics",
                "threads": 8,
            },
        },
    },
    "other": {"target": "x", "outputs": {"x": {"type": "duckdb", "path": "/x.duckdb"}}},
}


def test_a_profiles_warehouse_is_a_url_and_a_secret_the_pod_mounts():
    warehouse = Warehouse.model_validate(
        {"type": "profiles", "profilesSecretRef": {"name": "dbt", "key": "profiles.yml"},
         "target": "prod"}
    )  # fmt: skip
    assert warehouse.url() == "dbt-profiles:///kascade/profiles/profiles.yml?target=prod"
    assert profiles_location(warehouse.url()) == ("/kascade/profiles/profiles.yml", None, "prod")
    settings = {"warehouse": warehouse.url(), "warehouseProfiles": {"name": "dbt", "key": "p"}}
    pod = job_body(attempt(), launch(settings=settings), "img:1")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["warehouse-profiles"]["secret"] == {
        "secretName": "dbt",
        "items": [{"key": "p", "path": "profiles.yml"}],
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["warehouse-profiles"] == {
        "name": "warehouse-profiles", "mountPath": "/kascade/profiles", "readOnly": True
    }  # fmt: skip


@pytest.mark.parametrize(
    "given",
    [
        {"type": "profiles"},
        {"type": "postgres", "host": "h", "database": "d", "user": "u",
         "profilesSecretRef": {"name": "dbt", "key": "profiles.yml"}},
        {"type": "profiles", "profilesSecretRef": {"name": "dbt", "key": "p"}, "target": "a b"},
    ],
)  # fmt: skip
def test_bad_profiles_warehouses_are_refused(given):
    with pytest.raises(ValidationError):
        Warehouse.model_validate(given)


@pytest.mark.parametrize(
    "url",
    [
        "dbt-profiles://host/p.yml",
        "dbt-profiles:///dir/",
        "dbt-profiles:///p.yml?adapter=x",
    ],
)
def test_bad_profiles_urls_are_refused(url):
    with pytest.raises(WarehouseURLError):
        check_url(url)


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump(PROFILES))
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    monkeypatch.setenv("KASCADE_PROJECT", str(project))
    return path


def test_the_projects_profile_and_its_default_target_are_taken(profiles: Path):
    target = target_for(f"dbt-profiles://{profiles}")
    assert target == {"type": "duckdb", "path": "/data/dev.duckdb", "threads": 1}


def test_a_named_target_is_copied_with_its_env_var_calls(profiles: Path):
    target = target_for(f"dbt-profiles://{profiles}?target=prod")
    assert target["password"] == "{{ env_var('WAREHOUSE_PASSWORD') }}"
    assert target["threads"] == 1  # one resource per task


def test_a_named_profile_wins_over_the_projects(profiles: Path):
    assert target_for(f"dbt-profiles://{profiles}?profile=other")["path"] == "/x.duckdb"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?profile=nope", "has no profile 'nope' (it has: other, shop)"),
        ("?target=staging", "profile 'shop' has no target 'staging' (its outputs: dev, prod)"),
    ],
)
def test_what_is_missing_is_named_with_the_file(profiles: Path, query: str, words: str):
    with pytest.raises(CannotStart) as refused:
        target_for(f"dbt-profiles://{profiles}{query}")
    assert words in str(refused.value)
    assert str(profiles) in str(refused.value)


def test_an_unreadable_profiles_file_is_named(tmp_path: Path):
    with pytest.raises(CannotStart) as refused:
        target_for(f"dbt-profiles://{tmp_path}/missing.yml")
    assert f"cannot read the dbt profiles file {tmp_path}/missing.yml" in str(refused.value)

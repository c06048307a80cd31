"""The CRDs: generated from the models, identical to crds/, structural and self-describing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.api.crd import KINDS, PEERING_FILE, crd_files, render_crd

CRDS = Path(__file__).resolve().parents[2] / "crds"


def by_kind() -> dict[str, dict[str, Any]]:
    """kascade's own CRDs (not kopf's peering ones), by kind."""
    return {kind.kind: yaml.safe_load(render_crd(kind)) for kind in KINDS}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", sorted(crd_files()))
def test_crds_directory_is_what_kascade_crds_writes(name):
    on_disk = (CRDS / name).read_text(encoding="utf-8")
    assert on_disk == crd_files()[name], "crds/ drifted from `kascade crds`: run `make crds`"


def test_crds_directory_holds_our_crds_and_kopfs_peering_ones_only():
    expected = ["kascade.io_flows.yaml", "kascade.io_runs.yaml", "kascade.io_tasks.yaml"]
    assert sorted(p.name for p in CRDS.iterdir()) == sorted([*expected, PEERING_FILE])


def test_the_peering_crds_are_the_ones_kopf_uses():
    docs = list(yaml.safe_load_all((CRDS / PEERING_FILE).read_text()))
    names = {(d["spec"]["names"]["kind"], d["spec"]["scope"]) for d in docs}
    assert names == {("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")}
    for doc in docs:
        version = doc["spec"]["versions"][0]
        assert (doc["spec"]["group"], version["name"]) == ("kopf.dev", "v1")
        # kopf patches the object's status directly: no status subresource may intercept it
        assert "subresources" not in version


@pytest.mark.parametrize("kind", ["Flow", "Run", "Task"])
def test_schemas_are_structural_and_describe_every_field(kind):
    schema = by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "$defs", "title"} & node.keys(), path
        if path.count(".") >= 2 or path.endswith("[]"):
            typed = (
                "type" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
                or node.get("x-kubernetes-int-or-string")
            )
            assert typed, f"{kind}{path} has no type"
        if path.startswith((".spec.", ".status.")) and not path.endswith(("[]", "}")):
            assert node.get("description"), f"{kind}{path} has no description"
        if "properties" in node:
            assert "additionalProperties" not in node, path


def test_names_columns_categories_and_status_subresource():
    crds = by_kind()
    for kind, crd in crds.items():
        version = crd["spec"]["versions"][0]
        assert crd["spec"]["group"] == "kascade.io"
        assert crd["spec"]["scope"] == "Namespaced"
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
        assert crd["spec"]["names"]["categories"] == ["kascade"]
        assert crd["spec"]["names"]["shortNames"], kind
    columns = {
        k: [c["name"].upper() for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        for k, crd in crds.items()
    }
    assert columns["Run"] == ["FLOW", "TYPE", "PHASE", "TASKS", "STARTED", "DURATION", "AGE"]
    assert columns["Task"] == ["RUN", "TYPE", "TARGET", "PHASE", "ATTEMPTS", "AGE"]
    short = [n for crd in crds.values() for n in crd["spec"]["names"]["shortNames"]]
    assert len(short) == len(set(short))


def rules(node: dict[str, Any]) -> list[str]:
    return [rule["rule"] for rule in node.get("x-kubernetes-validations", [])]


def test_admission_rules_are_in_the_schema():
    flow = by_kind()["Flow"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = flow["properties"]["spec"]
    nodes = spec["properties"]["nodes"]
    assert nodes["x-kubernetes-list-type"] == "map"
    assert nodes["x-kubernetes-list-map-keys"] == ["name"]
    node = nodes["items"]
    assert any(".filter(k, k).size() == 1" in rule for rule in rules(node))
    assert node["properties"]["name"]["pattern"] == "^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"
    assert node["properties"]["retries"]["minimum"] == 0
    assert node["properties"]["trigger"]["enum"] == [
        "allSuccess",
        "allDone",
        "oneFailed",
        "allFailed",
        "noneFailed",
    ]
    assert spec["properties"]["schedule"]["properties"]["concurrencyPolicy"]["enum"] == [
        "Allow",
        "Forbid",
        "Replace",
    ]
    run = by_kind()["Run"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert "self || !oldSelf" in rules(run["spec"]["properties"]["abort"])
    spec_rules = rules(run["spec"])
    # every spec field but abort is immutable, also when it was absent at creation
    for name in run["spec"]["properties"]:
        guarded = f"has(self.{name}) == has(oldSelf.{name})"
        assert any(rule.startswith(guarded) for rule in spec_rules) == (name != "abort"), name
    assert len(spec_rules) == 4 + len(run["spec"]["properties"]) - 1


def test_status_carries_no_defaults():
    for crd in by_kind().values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert all("default" not in node for _, node in walk(status))

"""CustomResourceDefinitions generated from the pydantic models: the single source of crds/."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from kascade.api.flow import FlowSpec, FlowStatus
from kascade.api.run import RunSpec, RunStatus
from kascade.api.task import TaskSpec, TaskStatus

GROUP = "kascade.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kascade"

Schema = dict[str, Any]
PRESERVE: Schema = {"x-kubernetes-preserve-unknown-fields": True}
_DROPPED_KEYS = ("title", "$defs", "additionalProperties")
_UNTYPED_MARKERS = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how kubectl presents it."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[Schema, ...]


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[Kind, ...] = (
    Kind(
        kind="Flow",
        plural="flows",
        short_names=("kflow", "kf"),
        description="A data flow: ingestion connectors, SQL models and Python scripts, run on a "
        "schedule or on demand.",
        spec=FlowSpec,
        status=FlowStatus,
        columns=(
            _column("Schedule", ".status.schedule"),
            _column("Suspended", ".spec.schedule.suspend", "boolean"),
            _column("Next", ".status.nextScheduleTime"),
            _column("Last Run", ".status.lastRun.name"),
            _column("Last Phase", ".status.lastRun.phase"),
            _AGE,
        ),
    ),
    Kind(
        kind="Run",
        plural="runs",
        short_names=("krun", "kr"),
        description="One execution of a Flow.",
        spec=RunSpec,
        status=RunStatus,
        columns=(
            _column("Flow", ".spec.flowRef.name"),
            _column("Type", ".spec.type"),
            _column("Phase", ".status.phase"),
            _column("Tasks", ".status.progress"),
            _column("Started", ".status.startTime", "date"),
            _column("Duration", ".status.duration"),
            _AGE,
        ),
    ),
    Kind(
        kind="Task",
        plural="tasks",
        short_names=("ktask", "kt"),
        description="One unit of work of a Run: a model, connector, script or child flow. Each "
        "attempt is one Job.",
        spec=TaskSpec,
        status=TaskStatus,
        columns=(
            _column("Run", ".spec.runRef.name"),
            _column("Type", ".spec.type"),
            _column("Target", ".spec.target"),
            _column("Phase", ".status.phase"),
            _column("Attempts", ".status.attemptCount", "integer"),
            _AGE,
        ),
    ),
)


def structural_schema(model: type[BaseModel], *, keep_defaults: bool) -> Schema:
    """The model's JSON schema rewritten as a Kubernetes structural OpenAPI v3 schema.

    References are inlined, optional values unwrapped, maps of arbitrary values marked
    x-kubernetes-preserve-unknown-fields, and int-or-string unions marked as such.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.get("$defs", {})
    return _convert(raw, definitions, keep_defaults)


def _convert(node: Schema, definitions: Schema, keep_defaults: bool) -> Schema:
    node = _resolve(node, definitions)
    if not node:
        return dict(PRESERVE)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and (not keep_defaults or value is None):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {
                name: _convert(sub, definitions, keep_defaults) for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, definitions, keep_defaults)
        else:
            out[key] = copy.deepcopy(value)
    if not out.get("properties"):
        out.pop("properties", None)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        out["additionalProperties"] = _convert(extra, definitions, keep_defaults)
    elif extra is True or (out.get("type") == "object" and "properties" not in out and not extra):
        out.update(PRESERVE)
    if "type" not in out and not any(key in out for key in _UNTYPED_MARKERS):
        out.update(PRESERVE)
    return out


def _resolve(node: Schema, definitions: Schema) -> Schema:
    """Inline a $ref and unwrap Optional; keys beside them (description, default) win."""
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **siblings}, definitions)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        siblings = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _resolve({**options[0], **siblings}, definitions)
        types = {option.get("type") for option in options}
        if types == {"integer", "string"}:
            return {**siblings, "x-kubernetes-int-or-string": True}
        return {**siblings, **PRESERVE}
    return node


def _top_level(kind: Kind) -> Schema:
    spec = structural_schema(kind.spec, keep_defaults=True)
    status = structural_schema(kind.status, keep_defaults=False)
    return {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "kascade.io/v1alpha1"},
            "kind": {"type": "string", "description": kind.kind},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd(kind: Kind) -> Schema:
    """The CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "kascade", "app.kubernetes.io/part-of": "kascade"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in kind.columns],
                    "schema": {"openAPIV3Schema": _top_level(kind)},
                }
            ],
        },
    }


def crd_file_name(kind: Kind) -> str:
    """The file under crds/ that holds the kind's CRD."""
    return f"{GROUP}_{kind.plural}.yaml"


def render_crd(kind: Kind) -> str:
    """One CRD as a YAML document."""
    return yaml.safe_dump(crd(kind), sort_keys=False, width=100, allow_unicode=True)


PEERING_FILE = "kopf.dev_peerings.yaml"
_PEERING_HEADER = """\
# kopf's peering resources, used only when the operator runs with --peering (two or
# more replicas: one works, the others stand by). kopf owns this schema (kopf.dev/v1,
# objects whose status holds one entry per running operator), so it stays open; and no
# status subresource, because kopf patches the status directly.
"""


def _peering_crd(kind: str, scope: str) -> Schema:
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def render_peering() -> str:
    """kopf's ClusterKopfPeering and KopfPeering CRDs, as one YAML stream."""
    documents = [
        _peering_crd("ClusterKopfPeering", "Cluster"),
        _peering_crd("KopfPeering", "Namespaced"),
    ]
    return _PEERING_HEADER + "---\n".join(
        yaml.safe_dump(document, sort_keys=False, width=100) for document in documents
    )


def crd_files() -> dict[str, str]:
    """Every file of crds/ (and the chart's crds/), by name: what `kascade crds` writes."""
    return {
        **{crd_file_name(kind): render_crd(kind) for kind in KINDS},
        PEERING_FILE: render_peering(),
    }


def render_all() -> str:
    """Every CRD, as a multi-document YAML stream (what `kascade crds` prints)."""
    return "---\n" + "---\n".join(crd_files().values())

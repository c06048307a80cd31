"""Running one SQL model: render ref()/source()/config() to SQL, then create the view or
table in its schema with CREATE OR REPLACE, in one transaction."""

from __future__ import annotations

import os
from typing import Any

import jinja2

from kascade.engine.project import Model, Project, load_project
from kascade.engine.sandbox import (
    DBT_EXTENSIONS,
    BoundedEnvironment,
    RenderLimitError,
    render_bounded,
)
from kascade.runtime.errors import TaskError
from kascade.runtime.warehouse import Warehouse, WarehouseError, open_warehouse

DEFAULT_SCHEMA = "main"
# dbt's incremental models are rebuilt in full (kascade has no incremental state yet);
# ephemeral models become views so that other models can still select from them.
_KINDS = {"table": "TABLE", "view": "VIEW", "incremental": "TABLE", "ephemeral": "VIEW"}


class ModelError(TaskError):
    """A model that cannot be rendered or built; the message names the model and file."""


def relation_parts(model: Model) -> tuple[str, str]:
    """(schema, name) of the relation a model builds."""
    return (model.schema or DEFAULT_SCHEMA, model.name)


def render_model(project: Project, model: Model, warehouse: Warehouse) -> str:
    """The model's SQL with its Jinja rendered: refs and sources become quoted relations."""
    path = project.root / model.path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"model `{model.name}`: cannot read {model.path}: {err}") from err

    def ref(*args: str, **_: Any) -> str:
        name = args[-1] if args else ""
        target = project.models.get(name)
        if target is None:
            if name in project.seeds:
                return warehouse.quote(DEFAULT_SCHEMA, name)
            raise ModelError(f"model `{model.name}` refs unknown model `{name}` ({model.path})")
        return warehouse.quote(*relation_parts(target))

    def source(source_name: str, table: str) -> str:
        return warehouse.quote(source_name, table)

    def variable(name: str, default: Any = None) -> Any:
        if default is None:
            raise ModelError(f"model `{model.name}`: var('{name}') has no value and no default")
        return default

    environment = BoundedEnvironment(
        undefined=jinja2.StrictUndefined, extensions=list(DBT_EXTENSIONS)
    )
    context = {
        "ref": ref,
        "source": source,
        "config": lambda *a, **k: "",
        "var": variable,
        "env_var": lambda name, default="": os.environ.get(name, default),
        "is_incremental": lambda: False,
        "this": warehouse.quote(*relation_parts(model)),
    }
    try:
        rendered = render_bounded(environment.from_string(text), context)
    except ModelError:
        raise
    except RenderLimitError as err:
        raise ModelError(f"{model.path}: {err}") from err
    except jinja2.TemplateSyntaxError as err:
        raise ModelError(f"{model.path}:{err.lineno}: Jinja syntax error: {err.message}") from err
    except jinja2.TemplateError as err:
        raise ModelError(f"{model.path}: cannot render: {err}") from err
    except Exception as err:  # the model's own Jinja can raise anything ({{ 1/0 }})
        raise ModelError(f"{model.path}: cannot render: {type(err).__name__}: {err}") from err
    return rendered.strip().rstrip(";").strip()


def build_model(project_dir: str, name: str, warehouse_url: str) -> dict[str, Any]:
    """Build one model in the warehouse; returns its outputs (relation, kind, rows)."""
    project = load_project(project_dir)
    model = project.models.get(name)
    if model is None:
        raise ModelError(f"model `{name}` not found in project {project_dir}")
    kind = _KINDS.get(model.materialized)
    if kind is None:
        known = ", ".join(sorted(_KINDS))
        raise ModelError(
            f"model `{name}`: unsupported materialized={model.materialized!r} (known: {known})"
        )
    warehouse = open_warehouse(warehouse_url)
    try:
        sql = render_model(project, model, warehouse)
        if not sql:
            raise ModelError(f"model `{name}` ({model.path}) renders to no SQL")
        schema, relation = relation_parts(model)
        target = warehouse.quote(schema, relation)
        statements = [f"CREATE SCHEMA IF NOT EXISTS {warehouse.quote(schema)}"]
        existing = warehouse.kind_of(schema, relation)
        if existing is not None and existing.upper() != kind:
            statements.append(f"DROP {existing.upper()} {target}")
        statements.append(f"CREATE OR REPLACE {kind} {target} AS\n{sql}")
        try:
            warehouse.run_in_transaction(statements)
        except WarehouseError as err:
            raise ModelError(f"model `{name}` ({model.path}) failed: {err}") from err
        outputs: dict[str, Any] = {"relation": f"{schema}.{relation}", "materialized": kind.lower()}
        if kind == "TABLE":
            outputs["rows"] = int(warehouse.scalar(f"SELECT count(*) FROM {target}"))
        return outputs
    finally:
        warehouse.close()

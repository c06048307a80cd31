"""Running one connector: connectors/<name>.yaml describes files to load into a table.

source:
  format: csv            # csv (default), parquet or json
  path: data/orders*.csv # relative to the project, inside it; globs allowed
destination:
  table: raw.orders      # schema.table
mode: replace            # replace (default) or append
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

import yaml

from kascade.runtime.errors import CannotStart
from kascade.runtime.warehouse import WarehouseError, open_warehouse

_READERS = {"csv": "read_csv_auto", "parquet": "read_parquet", "json": "read_json_auto"}
_CONNECTOR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SEPARATORS = re.compile(r"[\\/]")


class ConnectorError(CannotStart):
    """A connector that is missing, misconfigured or fails; the message names the file."""


def load_connector(project_dir: str, name: str) -> dict[str, Any]:
    """The connector's configuration, checked."""
    if not _CONNECTOR_NAME.match(name) or ".." in name:
        raise ConnectorError(f"connector name {name!r} is not a file name of connectors/")
    shown = f"connectors/{name}.yaml"
    path = os.path.join(project_dir, shown)
    if not os.path.isfile(path):
        raise ConnectorError(
            f"connector `{name}` not found: {shown} does not exist in {project_dir}"
        )
    if not _inside(project_dir, path):
        raise ConnectorError(
            f"{shown}: a link to {os.path.realpath(path)}, outside the project; not read"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError, ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else err
        raise ConnectorError(f"{shown}: cannot read: {reason}") from err
    if not isinstance(config, dict):
        raise ConnectorError(f"{shown}: expected a mapping with source and destination")
    source, destination = config.get("source"), config.get("destination")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        raise ConnectorError(f"{shown}: source.path is required")
    _check_source_path(project_dir, shown, source["path"])
    if source.get("format", "csv") not in _READERS:
        raise ConnectorError(f"{shown}: source.format must be one of {', '.join(_READERS)}")
    table = destination.get("table") if isinstance(destination, dict) else None
    if not isinstance(table, str) or table.count(".") != 1:
        raise ConnectorError(f"{shown}: destination.table must look like schema.table")
    if config.get("mode", "replace") not in ("replace", "append"):
        raise ConnectorError(f"{shown}: mode must be replace or append")
    return config


def _inside(project_dir: str, path: str) -> bool:
    """Whether `path`, with every link resolved, is inside the project directory."""
    root = os.path.realpath(project_dir)
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _check_source_path(project_dir: str, shown: str, path: str) -> None:
    """source.path must name files inside the project: relative, without `..`, and every
    file its glob matches inside the project once links are resolved."""
    where = f"{shown}: source.path {path!r}"
    if not path.strip() or "\x00" in path:
        raise ConnectorError(f"{where} must name files inside the project")
    if os.path.isabs(path) or path.startswith(("/", "\\")):
        raise ConnectorError(f"{where} is absolute: give a path relative to the project")
    if ".." in _SEPARATORS.split(path):
        raise ConnectorError(f"{where} goes up with `..`: it must stay inside the project")
    if "://" in path:
        raise ConnectorError(f"{where} is a URL: give a path of files in the project")
    pattern = os.path.join(project_dir, path)
    for match in glob.iglob(pattern, recursive=True, include_hidden=True):
        if not _inside(project_dir, match):
            raise ConnectorError(
                f"{where} matches {os.path.relpath(match, project_dir)}, which leads to "
                f"{os.path.realpath(match)}, outside the project"
            )
        if not os.path.isfile(match) and not os.path.isdir(match):
            raise ConnectorError(
                f"{where} matches {os.path.relpath(match, project_dir)}, which is not a "
                "regular file"
            )


def run_connector(project_dir: str, name: str, warehouse_url: str) -> dict[str, Any]:
    """Load the connector's files; returns outputs (table, rows)."""
    config = load_connector(project_dir, name)
    source = config["source"]
    reader = _READERS[source.get("format", "csv")]
    files = os.path.join(project_dir, source["path"]).replace("'", "''")
    schema, table = config["destination"]["table"].split(".")
    warehouse = open_warehouse(warehouse_url)
    try:
        target = warehouse.quote(schema, table)
        select = f"SELECT * FROM {reader}('{files}')"
        load = (
            f"INSERT INTO {target} {select}"
            if config.get("mode") == "append" and warehouse.kind_of(schema, table) == "table"
            else f"CREATE OR REPLACE TABLE {target} AS {select}"
        )
        try:
            warehouse.run_in_transaction(
                [f"CREATE SCHEMA IF NOT EXISTS {warehouse.quote(schema)}", load]
            )
        except WarehouseError as err:
            raise ConnectorError(f"connector `{name}` failed: {err}") from err
        rows = int(warehouse.scalar(f"SELECT count(*) FROM {target}"))
        return {"table": f"{schema}.{table}", "rows": rows}
    finally:
        warehouse.close()

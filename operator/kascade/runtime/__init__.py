"""What runs inside a task's container or local process: a dbt resource (model, seed,
snapshot, test: run by dbt-core), a script or a connector.

Kept light to import: a script task must not pay for dbt, duckdb, jinja2 or pydantic.
"""

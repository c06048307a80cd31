"""What runs inside a task's container or local process: a model, a script or a connector.

Kept light to import: a script task must not pay for duckdb, jinja2 or pydantic.
"""

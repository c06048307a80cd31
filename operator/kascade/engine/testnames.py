"""The names dbt gives generic tests declared in properties files, so that a plan names the
same tests `dbt ls` lists and a task can select exactly its tests.

dbt's rule: `<test>_<target>_<arguments>`, where the test carries its package namespace
(`dbt_utils_…`) and `source_` for a source table, the target is the model, seed or
snapshot name (or `<source>_<table>`), and the arguments are the test's keyword
arguments but configs, sorted by name, their values (a mapping's values, a list's items)
written with Python's `str`, runs of other characters than letters, digits and `_`
replaced by one `_`, joined with `__`. A test may also name itself (`name:`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CONFIG_ARGUMENTS = frozenset(
    {
        "severity",
        "tags",
        "enabled",
        "where",
        "limit",
        "warn_if",
        "error_if",
        "fail_calc",
        "store_failures",
        "store_failures_as",
        "meta",
        "database",
        "schema",
        "alias",
    }
)
"""Keys of a test entry that are configs, not arguments (they do not name the test)."""
NOT_ARGUMENTS = frozenset({"config", "description", "name", "model"})
_OTHER = re.compile(r"[^0-9a-zA-Z_]+")


def generic_test_name(
    test: str, target: str, arguments: Mapping[str, Any], *, source: bool = False
) -> str:
    """The node name of a generic test: `not_null_stg_orders_order_id`,
    `relationships_orders_customer_id__id__ref_customers_`."""
    namespace, _, bare = test.rpartition(".")
    name = ("source_" if source else "") + bare
    if namespace:
        name = f"{namespace}_{name}"
    flat: list[str] = []
    for key in sorted(arguments):
        if key in NOT_ARGUMENTS or key in CONFIG_ARGUMENTS:
            continue
        value = arguments[key]
        if isinstance(value, Mapping):
            parts = list(value.values())
        elif isinstance(value, list | tuple):
            parts = list(value)
        else:
            parts = [value]
        flat += [_OTHER.sub("_", str(part)) for part in parts]
    return f"{name}_{target}_{'__'.join(flat)}"

"""Warehouse URLs as tasks receive them in $KASCADE_WAREHOUSE: `duckdb:///path` for the
embedded default (another adapter adds its scheme here and its class in the runtime)."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from kascade.contract import ContractError

SCHEMES = ("duckdb",)
_DUCKDB = "duckdb:///"


class WarehouseURLError(ContractError):
    """A warehouse URL kascade cannot use; the message shows the URL and the forms it takes."""


def duckdb_path(url: str) -> str:
    """The file of a duckdb:/// URL: duckdb:///rel/path, duckdb:////abs/path, duckdb:///:memory:."""
    parsed = urlparse(url)
    if parsed.scheme != "duckdb" or parsed.netloc:
        raise WarehouseURLError(
            f"a DuckDB URL looks like duckdb:///path/to/file.duckdb, not {url!r}"
        )
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path:
        raise WarehouseURLError(f"warehouse URL {url!r} names no file")
    if "\x00" in path:
        raise WarehouseURLError(f"warehouse URL {url!r} holds a NUL byte")
    return path


def check_url(url: str) -> None:
    """Raise WarehouseURLError when a URL is not one kascade can open (without opening it)."""
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise WarehouseURLError(f"unsupported warehouse URL {url!r} (supported: {known})")
    if scheme == "duckdb":
        duckdb_path(url)


def absolute_url(url: str, base: str | None = None) -> str:
    """A checked warehouse URL with a relative DuckDB path made absolute (against `base`,
    default the working directory): tasks run in the project folder, not where the user
    typed the command."""
    check_url(url)
    if url.startswith(_DUCKDB) and not url[len(_DUCKDB) :].startswith(("/", ":memory:")):
        relative = url[len(_DUCKDB) :]
        return _DUCKDB + os.path.abspath(os.path.join(base or os.getcwd(), relative))
    return url

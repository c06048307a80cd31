"""Warehouse URLs as tasks receive them in $KASCADE_WAREHOUSE: `duckdb:///path` for the
embedded default, `postgresql://user@host:port/database?schema=S&sslmode=M` for a
PostgreSQL server, `dbt-profiles:///path/profiles.yml?profile=P&target=T` for a target of
a dbt profiles.yml (any dbt adapter installed beside kascade; dbt tasks only). A URL
never holds a password: it is shown in statuses, logs and `kascade plan`; the password
reaches a task as PGPASSWORD (a Secret's key on a cluster)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from kascade.contract import ContractError

PROFILES_SCHEME = "dbt-profiles"
SCHEMES = ("duckdb", "postgresql", "postgres", PROFILES_SCHEME)
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
PASSWORD_ENV = "PGPASSWORD"
_POSTGRES_OPTIONS = frozenset({"schema", "sslmode", "connect_timeout"})
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
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
    elif scheme == PROFILES_SCHEME:
        profiles_location(url)
    else:
        postgres_settings(url)


def profiles_location(url: str) -> tuple[str, str | None, str | None]:
    """The file, profile and target of a dbt-profiles:///path/profiles.yml URL (profile
    and target optional: the project's profile and the profile's default target)."""
    parsed = urlparse(url)
    form = "dbt-profiles:///path/to/profiles.yml?profile=NAME&target=NAME"
    if parsed.scheme != PROFILES_SCHEME or parsed.netloc or not parsed.path.startswith("/"):
        raise WarehouseURLError(f"a dbt profiles URL looks like {form}, not {url!r}")
    if "\x00" in parsed.path or parsed.path.endswith("/"):
        raise WarehouseURLError(f"warehouse URL {url!r} names no profiles file")
    options = parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"profile", "target"})
    if unknown:
        raise WarehouseURLError(
            f"warehouse URL {url!r}: unknown option `{unknown[0]}` (allowed: profile, target)"
        )
    profile = options.get("profile", [None])[-1] or None
    target = options.get("target", [None])[-1] or None
    return unquote(parsed.path), profile, target


def postgres_settings(url: str) -> dict[str, Any]:
    """The connection settings of a postgresql:// URL: host, port, user, dbname, schema
    (default `public`), and sslmode or connect_timeout when given. A password in the URL
    is refused (it would be shown wherever the URL is)."""
    parsed = urlparse(url)
    shown = _without_password(parsed)
    if parsed.scheme not in POSTGRES_SCHEMES:
        raise WarehouseURLError(f"a PostgreSQL URL starts with postgresql://, not {shown!r}")
    if parsed.password is not None:
        raise WarehouseURLError(
            f"warehouse URL {shown!r} holds a password: the URL is shown in statuses and "
            f"logs, so give the password as {PASSWORD_ENV} (locally: the environment or "
            "--warehouse-password-file; on a cluster: spec.warehouse.passwordSecretRef)"
        )
    try:
        port = parsed.port or 5432
    except ValueError as err:
        raise WarehouseURLError(f"warehouse URL {shown!r}: {err}") from err
    database = parsed.path.lstrip("/")
    if not parsed.hostname or not parsed.username or not database or "/" in database:
        raise WarehouseURLError(
            f"a PostgreSQL URL looks like postgresql://user@host:5432/database, not {shown!r}"
        )
    options = parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(options) - _POSTGRES_OPTIONS)
    if unknown:
        allowed = ", ".join(sorted(_POSTGRES_OPTIONS))
        raise WarehouseURLError(
            f"warehouse URL {shown!r}: unknown option `{unknown[0]}` (allowed: {allowed})"
        )
    settings: dict[str, Any] = {
        "host": parsed.hostname,
        "port": port,
        "user": unquote(parsed.username),
        "dbname": unquote(database),
        "schema": options.get("schema", ["public"])[-1] or "public",
    }
    sslmode = options.get("sslmode", [None])[-1]
    if sslmode is not None:
        if sslmode not in _SSLMODES:
            raise WarehouseURLError(
                f"warehouse URL {shown!r}: sslmode `{sslmode}` is not one of "
                + ", ".join(sorted(_SSLMODES))
            )
        settings["sslmode"] = sslmode
    timeout = options.get("connect_timeout", [None])[-1]
    if timeout is not None:
        if not timeout.isdigit() or not 0 < int(timeout) <= 3600:
            raise WarehouseURLError(
                f"warehouse URL {shown!r}: connect_timeout is whole seconds, 1 to 3600"
            )
        settings["connect_timeout"] = int(timeout)
    return settings


def _without_password(parsed: Any) -> str:
    """The URL as it may be shown: any password replaced by `***`."""
    if parsed.password is None:
        return str(parsed.geturl())
    netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@", 1)
    return str(parsed._replace(netloc=netloc).geturl())


def absolute_url(url: str, base: str | None = None) -> str:
    """A checked warehouse URL with a relative DuckDB path made absolute (against `base`,
    default the working directory): tasks run in the project folder, not where the user
    typed the command."""
    check_url(url)
    if url.startswith(_DUCKDB) and not url[len(_DUCKDB) :].startswith(("/", ":memory:")):
        relative = url[len(_DUCKDB) :]
        return _DUCKDB + os.path.abspath(os.path.join(base or os.getcwd(), relative))
    return url

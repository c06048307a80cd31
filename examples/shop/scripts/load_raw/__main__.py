"""Load the shop's CSV seed files into the ``raw`` schema of a DuckDB warehouse.

Every ``data/<stem>.csv`` file becomes the table ``raw.<stem>``; existing tables are
replaced, so the script can be re-run safely.

Usage::

    python scripts/load_raw/__main__.py [AS_OF]

The warehouse is taken from the ``KASCADE_WAREHOUSE`` environment variable, a URL of the
form ``duckdb:///path/to/file.duckdb`` (default: ``duckdb:///shop.duckdb``). The optional
``AS_OF`` argument is only echoed; the seed data is static. The number of tables and
rows loaded is published as the task's outputs (a JSON object written to the file named
by ``KASCADE_OUTPUTS``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import duckdb

DEFAULT_WAREHOUSE = "duckdb:///shop.duckdb"
URL_PREFIX = "duckdb:///"
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def warehouse_path(url: str) -> str:
    """Return the database file path of a ``duckdb:///`` warehouse URL."""
    if not url.startswith(URL_PREFIX):
        raise ValueError(f"unsupported warehouse URL {url!r}: expected {URL_PREFIX}<path>")
    path = url.removeprefix(URL_PREFIX)
    if not path:
        raise ValueError(f"warehouse URL {url!r} has no database path")
    return path


def load_csv(con: duckdb.DuckDBPyConnection, csv_path: Path) -> int:
    """Replace ``raw.<stem>`` with the contents of ``csv_path`` and return its row count."""
    table = f'raw."{csv_path.stem}"'
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_csv_auto(?, header = true)",
        [str(csv_path)],
    )
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])


def main(argv: list[str]) -> int:
    """Load all seed files and print one line per table."""
    as_of = argv[0] if argv else None
    db_path = warehouse_path(os.environ.get("KASCADE_WAREHOUSE") or DEFAULT_WAREHOUSE)
    csv_files = sorted(DATA_DIR.glob("*.csv"))
    if not csv_files:
        print(f"no CSV files found in {DATA_DIR}", file=sys.stderr)
        return 1

    print(f"loading {len(csv_files)} file(s) from {DATA_DIR} into {db_path}")
    if as_of:
        print(f"as of {as_of}")
    total = 0
    with duckdb.connect(db_path) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        for csv_path in csv_files:
            rows = load_csv(con, csv_path)
            total += rows
            print(f"raw.{csv_path.stem}: {rows} rows")
    publish_outputs({"tables": len(csv_files), "rows": total})
    return 0


def publish_outputs(outputs: dict[str, int]) -> None:
    """Hand outputs to kascade (downstream tasks read {{ tasks.load.outputs.rows }})."""
    path = os.environ.get("KASCADE_OUTPUTS")
    if path:
        Path(path).write_text(json.dumps(outputs), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

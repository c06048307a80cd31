"""The example run by kascade (one task per resource, a warm dbt worker) leaves exactly the
relations `dbt build` leaves on the same target: the same names, kinds, rows and
contents (a snapshot's own bookkeeping columns aside, which hold the time it ran)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
BIN = Path(sys.executable).parent


def copy_shop(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".kascade", "*.duckdb*", "__pycache__", "target", "logs")
    shutil.copytree(SHOP, target, ignore=ignore)
    return target


def dbt_build(project: Path, profiles: Path, env: dict[str, str] | None = None) -> None:
    """`dbt build` of a project as a user runs it, with the profiles of `profiles`."""
    built = subprocess.run(
        [
            str(BIN / "dbt"),
            "build",
            "--profiles-dir",
            str(profiles),
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert built.returncode == 0, built.stdout[-3000:]


def relations(connection: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    rows = connection.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_catalog = ? order by 1, 2",
        [catalog],
    ).fetchall()
    return {f"{schema}.{name}": kind for schema, name, kind in rows}


def differing_rows(connection: duckdb.DuckDBPyConnection, relation: str) -> int:
    """Rows in one database's relation and not the other's, both ways (dbt's snapshot
    columns, which hold run times, left out)."""
    columns = "columns(lambda c: c not like 'dbt_%')"
    left = f"select {columns} from ours.{relation}"
    right = f"select {columns} from theirs.{relation}"
    both_ways = f"({left} except all {right}) union all ({right} except all {left})"
    query = f"select count(*) from ({both_ways})"
    return int(connection.execute(query).fetchone()[0])


def test_kascade_leaves_the_relations_dbt_build_leaves(tmp_path: Path):
    theirs_project = copy_shop(tmp_path / "dbt")
    theirs = tmp_path / "theirs.duckdb"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n"
        f"    dev: {{type: duckdb, path: '{theirs}', schema: main, threads: 4}}\n",
        encoding="utf-8",
    )
    dbt_build(theirs_project, profiles)

    ours_project = copy_shop(tmp_path / "kascade")
    state = tmp_path / "state"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "kascade",
            "run",
            str(ours_project / "flow.yaml"),
            "--local",
            "--state-dir",
            str(state),
            "-o",
            "json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]

    with duckdb.connect() as connection:
        connection.execute(f"attach '{state / 'warehouse.duckdb'}' as ours (read_only)")
        connection.execute(f"attach '{theirs}' as theirs (read_only)")
        ours_relations = relations(connection, "ours")
        assert ours_relations == relations(connection, "theirs")
        # 5 seeds, 5 staging views, 2 intermediate views, 4 marts, 1 snapshot
        assert len(ours_relations) == 17
        for relation in ours_relations:
            assert differing_rows(connection, relation) == 0, relation
            counted = f"select count(*) from {{}}.{relation}"
            assert (
                connection.execute(counted.format("ours")).fetchone()
                == connection.execute(counted.format("theirs")).fetchone()
            ), relation

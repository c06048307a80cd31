"""dbt's parse state pushed with a project (real dbt): a task pod that unpacks the project
into another folder starts from it instead of parsing, seeds included; the operator plans
refs only dbt can tell from it; a project dbt cannot parse, or one too big for a
ConfigMap with its state, is pushed without it and the push says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kascade.contract.archive import pack, unpack
from kascade.engine.project import load_project
from kascade.runtime.dbtparsestate import (
    DBT_STATE,
    STATE_DIR,
    STATE_FILE,
    pack_with_parse_state,
    relocate,
    restore_parse_state,
)
from tests.projects import write_project

FILES = {
    "dbt_project.yml": "name: p\n",
    "seeds/raw.csv": "id,name\n1,a\n2,b\n",
    "macros/pick.sql": "{% macro pick() %}{{ ref('raw') }}{% endmacro %}",
    "models/a.sql": "select id from {{ ref('raw') }}",
    "models/b.sql": "select count(*) as n\nfrom {{ pick() }}",
}


def task(kind: str, name: str, archive: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """A task run as a pod runs it: the archive unpacked into a fresh project folder."""
    env = {
        **os.environ,
        "KASCADE_PROJECT_ARCHIVE": str(archive),
        "KASCADE_PROJECT": str(work / f"project-{name}"),
        "KASCADE_WAREHOUSE": f"duckdb:///{work}/warehouse.duckdb",
        "KASCADE_OUTPUTS": str(work / "outputs.json"),
    }
    command = [sys.executable, "-m", "kascade.runtime", kind, name]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=120)


def test_a_pod_starts_from_the_pushed_parse_state_in_another_folder(tmp_path: Path) -> None:
    source = write_project(tmp_path / "source", FILES)
    work = tmp_path / "pod"
    work.mkdir()
    packed, note = pack_with_parse_state(source, f"duckdb:///{work}/warehouse.duckdb")
    assert note.startswith("dbt parse state included (")
    archive = tmp_path / "project.tar.gz"
    archive.write_bytes(packed)
    seed = task("seed", "raw", archive, work)  # dbt reads the seed file through the state
    assert seed.returncode == 0, seed.stderr[-3000:]
    model = task("model", "b", archive, work)
    assert model.returncode == 0, model.stderr[-3000:]
    for done in (seed, model):
        log = done.stdout + done.stderr
        assert "kascade: dbt starts from the parse state pushed with the project" in log
        assert "Unable to do partial parsing" not in log
    assert not list(source.glob("target")), "the push wrote into the user's project"


def test_a_state_made_for_another_warehouse_is_ignored_by_dbt(tmp_path: Path) -> None:
    source = write_project(tmp_path / "source", FILES)
    work = tmp_path / "pod"
    work.mkdir()
    packed, _ = pack_with_parse_state(source, "duckdb:////elsewhere/warehouse.duckdb")
    archive = tmp_path / "project.tar.gz"
    archive.write_bytes(packed)
    done = task("seed", "raw", archive, work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Unable to do partial parsing because profile has changed" in done.stdout + done.stderr


def test_the_operator_plans_computed_refs_from_the_pushed_manifest(tmp_path: Path) -> None:
    source = write_project(tmp_path / "source", FILES)
    assert any("refs of model `b` are computed" in p for p in load_project(source).problems)
    packed, _ = pack_with_parse_state(source, "duckdb:///w.duckdb")
    unpacked = tmp_path / "operator"
    unpack(packed, unpacked)
    project = load_project(unpacked)
    assert project.problems == ()
    assert project.graph.parents("model.p.b") == ("seed.p.raw",)


def test_a_project_dbt_cannot_parse_is_pushed_without_state_naming_dbts_error(
    tmp_path: Path,
) -> None:
    broken = {**FILES, "models/c.sql": "select {{ ref('a' }}"}
    source = write_project(tmp_path / "source", broken)
    packed, note = pack_with_parse_state(source, "duckdb:///w.duckdb")
    assert note.startswith("no dbt parse state (")
    assert "models/c.sql" in note
    assert note.endswith("each task parses the project")
    unpack(packed, tmp_path / "out")
    assert not (tmp_path / "out" / STATE_DIR).exists()
    assert (tmp_path / "out" / "models" / "c.sql").read_text() == "select {{ ref('a' }}"


def test_a_state_that_would_not_fit_in_a_configmap_is_left_out(tmp_path: Path) -> None:
    source = write_project(tmp_path / "source", FILES)
    project_alone = pack(source)
    # room for the project, not for dbt's state (tens of kilobytes even for this one)
    packed, note = pack_with_parse_state(source, "duckdb:///w.duckdb", len(project_alone) + 100)
    assert packed == project_alone
    assert "would not fit in a ConfigMap" in note


def test_a_project_without_dbt_gets_no_state(tmp_path: Path) -> None:
    source = write_project(tmp_path / "source", {"scripts/load.py": "print(1)\n"})
    _, note = pack_with_parse_state(source, "duckdb:///w.duckdb")
    assert note == "not a dbt project: no dbt parse state"


def test_a_damaged_state_is_reported_and_left_to_dbt(tmp_path: Path) -> None:
    shipped = tmp_path / STATE_DIR
    shipped.mkdir(parents=True)
    (shipped / STATE_FILE).write_bytes(b"\xc1 not msgpack")
    (shipped / "origin.json").write_text('{"root": "/x", "dbt": "1.11"}')
    note = restore_parse_state(str(tmp_path))
    assert note is not None
    assert "not usable" in note
    assert not (tmp_path / DBT_STATE).exists()
    assert restore_parse_state(str(tmp_path / "elsewhere")) is None


@pytest.mark.parametrize(
    ("value", "moved"),
    [
        ("/a/p", "/b/q"),
        ("/a/p/seeds/x.csv", "/b/q/seeds/x.csv"),
        ("/a/pp/seeds/x.csv", "/a/pp/seeds/x.csv"),
        ("seeds/x.csv", "seeds/x.csv"),
    ],
)
def test_relocate_moves_paths_under_the_old_root_only(value: str, moved: str) -> None:
    import msgpack

    state = msgpack.packb({"files": {value: [value, 1, None]}}, use_bin_type=True)
    assert msgpack.unpackb(relocate(state, "/a/p", "/b/q"), raw=False) == {
        "files": {moved: [moved, 1, None]}
    }

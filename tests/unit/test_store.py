"""Run records on disk: atomic writes, clear errors for missing or broken records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kascade.local.records import RunRecord
from kascade.local.store import RunStore, StoreError

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def record(run_id: str, minute: int = 0) -> RunRecord:
    return RunRecord(
        id=run_id,
        flow="f",
        project="/p",
        warehouse="duckdb:///w",
        created_at=NOW.replace(minute=minute),
    )


def test_records_round_trip_and_list_oldest_first(tmp_path: Path):
    store = RunStore(tmp_path / "state")
    store.ensure_writable()
    store.save(record("b", minute=2))
    store.save(record("a", minute=1))
    assert store.load("a") == record("a", minute=1)
    assert [r.id for r in store.list()] == ["a", "b"]


def test_a_save_replaces_the_record_whole(tmp_path: Path):
    store = RunStore(tmp_path)
    first = record("a")
    store.save(first)
    first.message = "x" * 10_000
    store.save(first)
    leftovers = [p.name for p in (tmp_path / "runs" / "a").iterdir()]
    assert leftovers == ["run.json"]
    assert store.load("a").message == "x" * 10_000


def test_a_broken_record_is_named_and_left_out_of_the_list(tmp_path: Path):
    store = RunStore(tmp_path)
    store.save(record("good"))
    (tmp_path / "runs" / "bad").mkdir()
    (tmp_path / "runs" / "bad" / "run.json").write_text('{"id": "bad", "flo')
    with pytest.raises(StoreError, match=r"run record .*bad/run.json cannot be read"):
        store.load("bad")
    assert [r.id for r in store.list()] == ["good"]


def test_a_missing_run_lists_recent_ones(tmp_path: Path):
    store = RunStore(tmp_path)
    store.save(record("r1"))
    with pytest.raises(StoreError, match=r"no local run `r9` in .* \(recent runs: r1\)"):
        store.load("r9")


def test_an_unwritable_state_dir_is_named(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"state dir {blocker}/state is not writable"):
        RunStore(blocker / "state").ensure_writable()


def test_run_ids_are_sortable_and_distinct(tmp_path: Path):
    store = RunStore(tmp_path)
    ids = {store.new_id("shop", NOW) for _ in range(20)}
    assert len(ids) > 1
    assert all(i.startswith("shop-20261122-100000-") for i in ids)

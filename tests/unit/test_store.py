"""Run records on disk: atomic writes, clear errors for missing or broken records, run ids
that stay inside the state dir, and runs whose runner died ended with a reason."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kascade.api import RunPhase, TaskPhase, TaskType
from kascade.engine.plan import PlannedTask
from kascade.host.records import AttemptRecord, RunRecord, task_record
from kascade.local.store import StateDir, StoreError

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
    store = StateDir(tmp_path / "state")
    store.ensure_writable()
    store.save(record("b", minute=2))
    store.save(record("a", minute=1))
    assert store.load("a") == record("a", minute=1)
    assert [r.id for r in store.records()] == ["a", "b"]


def test_a_save_replaces_the_record_whole(tmp_path: Path):
    store = StateDir(tmp_path)
    first = record("a")
    store.save(first)
    first.message = "x" * 10_000
    store.save(first)
    leftovers = [p.name for p in (tmp_path / "runs" / "a").iterdir()]
    assert leftovers == ["run.json"]
    assert store.load("a").message == "x" * 10_000


def test_a_broken_record_is_named_and_left_out_of_the_list(tmp_path: Path):
    store = StateDir(tmp_path)
    store.save(record("good"))
    (tmp_path / "runs" / "bad").mkdir()
    (tmp_path / "runs" / "bad" / "run.json").write_text('{"id": "bad", "flo')
    with pytest.raises(StoreError, match=r"run record .*bad/run.json cannot be read"):
        store.load("bad")
    assert [r.id for r in store.records()] == ["good"]


def test_a_missing_run_lists_recent_ones(tmp_path: Path):
    store = StateDir(tmp_path)
    store.save(record("r1"))
    with pytest.raises(StoreError, match=r"no local run `r9` in .* \(recent runs: r1\)"):
        store.load("r9")


def test_an_unwritable_state_dir_is_named(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"state dir {blocker}/state is not writable"):
        StateDir(blocker / "state").ensure_writable()


def test_run_ids_are_sortable_and_distinct(tmp_path: Path):
    store = StateDir(tmp_path)
    ids = {store.new_id("shop", NOW) for _ in range(20)}
    assert len(ids) > 1
    assert all(i.startswith("shop-20261122-100000-") for i in ids)


def running_record(run_id: str) -> RunRecord:
    planned = [PlannedTask(id=t, node=t, type=TaskType.SCRIPT, target=t) for t in ("a", "b", "c")]
    made = RunRecord(
        id=run_id,
        flow="f",
        created_at=NOW,
        phase=RunPhase.RUNNING,
        started_at=NOW,
        tasks=[task_record(t, {}) for t in planned],
    )
    made.tasks[0].phase = TaskPhase.SUCCEEDED
    made.tasks[1].phase = TaskPhase.RUNNING
    made.tasks[1].attempts = [AttemptRecord(number=1, start_time=NOW)]
    return made


def test_a_run_whose_runner_is_gone_is_ended_with_a_reason(tmp_path: Path):
    store = StateDir(tmp_path)
    store.create(running_record("lost")).release()  # the runner ended without finishing
    ended = store.recover(NOW.replace(minute=5))
    assert [r.id for r in ended] == ["lost"]
    record = store.load("lost")
    assert record.phase == RunPhase.ABORTED
    assert record.reason == "RunnerLost"
    assert f"its runner (pid {os.getpid()}) ended without finishing the run" in (
        record.message or ""
    )
    assert [h.phase for h in record.history] == [RunPhase.ABORTING, RunPhase.ABORTED]
    a, b, c = record.tasks
    assert a.phase == TaskPhase.SUCCEEDED  # finished work stays as it was
    assert (b.phase, b.attempts[0].reason) == (TaskPhase.ABORTED, "RunnerLost")
    assert b.attempts[0].end_time == NOW.replace(minute=5)
    assert (c.phase, c.reason) == (TaskPhase.ABORTED, "RunnerLost")
    assert store.recover(NOW.replace(minute=6)) == []  # once


def test_a_run_whose_runner_works_is_left_alone(tmp_path: Path):
    store = StateDir(tmp_path)
    lock = store.create(running_record("alive"))
    try:
        assert store.recover(NOW) == []
        assert store.load("alive").phase == RunPhase.RUNNING
        assert store.lock("alive") is None  # nobody else can take it
    finally:
        lock.release()


@pytest.mark.parametrize("run_id", ["../../x", "/etc", "a/b", "..", "", "UPPER", "a" * 254, "-a"])
def test_a_run_id_is_never_a_way_out_of_the_state_dir(tmp_path: Path, run_id: str):
    store = StateDir(tmp_path / "state")
    with pytest.raises(StoreError, match="is not a run id"):
        store.load(run_id)
    with pytest.raises(StoreError, match="is not a run id"):
        store.run_dir(run_id)
    assert not (tmp_path / "x").exists()


def test_a_run_cannot_be_created_twice(tmp_path: Path):
    store = StateDir(tmp_path)
    store.create(record("once")).release()
    with pytest.raises(StoreError, match="run `once` exists already"):
        store.create(record("once"))

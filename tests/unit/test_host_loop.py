"""The host loop on an adapter kept in memory: a scripted store, attempts that end when
the test says, and a clock the test moves. What it shows is what both hosts record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kascade.api import RunPhase, TaskPhase, TaskType
from kascade.engine.attempts import Observation, Progress
from kascade.engine.launch import Launch
from kascade.engine.plan import PlannedTask
from kascade.host.loop import RunLoop
from kascade.host.ports import Requests, StartFailed
from kascade.host.records import Changes, RunRecord, TaskRecord, task_record

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def planned(task_id: str, *deps: str, **fields) -> PlannedTask:
    return PlannedTask(
        id=task_id, node=task_id, type=TaskType.SCRIPT, target=task_id, depends_on=deps, **fields
    )


@dataclass
class Memory:
    """A run kept in memory. `outcomes` says how each attempt ends (by its name): an exit
    code and outputs, "run" to keep it running, or "gone" for an attempt nobody sees."""

    record: RunRecord
    outcomes: dict[str, object] = field(default_factory=dict)
    now_at: datetime = T0
    abort: bool = False
    seen_before_load: dict[str, Observation] = field(default_factory=dict)
    started: list[Launch] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)
    saves: list[Changes] = field(default_factory=list)
    closed: bool = False
    refuse: str | None = None

    async def load(self) -> RunRecord:
        return self.record

    def requests(self, record: RunRecord) -> Requests:
        return Requests(abort=self.abort)

    async def save(self, record: RunRecord, changes: Changes) -> None:
        self.saves.append(changes)

    async def close(self, record: RunRecord) -> None:
        self.closed = True

    def attempt_name(self, task: TaskRecord, attempt: int) -> str:
        return f"{task.id}-{attempt}"

    async def start(self, task: TaskRecord, launch: Launch) -> str | None:
        if self.refuse == task.id:
            raise StartFailed("the Job was refused: forbidden")
        self.started.append(launch)
        return f"/logs/{task.id}.{launch.attempt}"

    async def stop(self, task: TaskRecord, attempt: int, reason: str) -> None:
        self.stopped.append((f"{task.id}-{attempt}", reason))
        self.outcomes[f"{task.id}-{attempt}"] = (143, None)

    def observe(self, task: TaskRecord, attempt: int) -> Observation:
        name = f"{task.id}-{attempt}"
        if name in self.seen_before_load:
            return self.seen_before_load.pop(name)
        if not any(s.task == task.id and s.attempt == attempt for s in self.started):
            return Observation(Progress.UNSEEN)
        outcome = self.outcomes.get(name, (0, {}))
        if outcome == "run":
            return Observation(Progress.RUNNING, started=self.now_at)
        if outcome == "gone":
            return Observation(Progress.UNSEEN)
        code, outputs = outcome  # type: ignore[misc]
        return Observation(
            Progress.ENDED,
            started=self.now_at,
            ended=self.now_at,
            exit_code=code,
            reason="Completed" if code == 0 else "Error",
            message=None if code == 0 else f"exit {code} log tail",
            outputs=outputs if code == 0 else None,
        )

    def now(self) -> datetime:
        return self.now_at

    async def wait(self, timeout: float) -> None:
        self.now_at += timedelta(seconds=max(timeout, 0.1))


def record_of(*tasks: PlannedTask, settings: dict[str, dict] | None = None, **run) -> RunRecord:
    given = settings or {}
    return RunRecord(
        id="r1",
        flow="f",
        created_at=T0,
        tasks=[task_record(t, given.get(t.id, {})) for t in tasks],
        **run,
    )


def drive(memory: Memory, **options) -> RunRecord:
    loop = RunLoop(memory, memory, memory, warehouse="duckdb:///w", **options)
    final = asyncio.run(asyncio.wait_for(loop.run(), timeout=30))
    assert final is not None
    return final


def test_a_run_goes_through_its_phases_and_outputs_reach_downstream_templates():
    memory = Memory(
        record_of(
            planned("a"),
            planned("b", "a"),
            settings={"b": {"args": ["{{ tasks.a.outputs.rows }}", "{{ params.day }}"]}},
            parameters={"day": "2026-11-01"},
        ),
        outcomes={"a-1": (0, {"rows": 7})},
    )
    final = drive(memory)
    assert final.phase == RunPhase.SUCCEEDED
    assert [h.phase for h in final.history] == [
        RunPhase.QUEUED,
        RunPhase.RUNNING,
        RunPhase.SUCCEEDING,
        RunPhase.SUCCEEDED,
    ]
    assert [t.phase for t in final.tasks] == [TaskPhase.SUCCEEDED, TaskPhase.SUCCEEDED]
    assert final.task("a").outputs == {"rows": 7}
    assert memory.started[1].args == ("7", "2026-11-01")
    assert memory.started[0].contract["KASCADE_WAREHOUSE"] == "duckdb:///w"
    attempt = final.task("a").attempts[0]
    assert (attempt.job, attempt.log, attempt.exit_code, attempt.reason) == (
        "a-1",
        "/logs/a.1",
        0,
        "Completed",
    )
    assert memory.closed


def test_a_failure_message_joins_the_decision_and_the_attempt():
    memory = Memory(record_of(planned("a")), outcomes={"a-1": (3, None)})
    final = drive(memory)
    task = final.task("a")
    assert task.phase == TaskPhase.FAILED
    assert task.message == "attempt 1 failed (exit code 3): exit 3 log tail"
    assert final.phase == RunPhase.FAILED
    assert final.message == "task `a` failed"


def test_an_attempt_that_cannot_start_fails_with_its_reason_not_the_loop():
    memory = Memory(
        record_of(planned("a"), planned("b"), settings={"a": {"args": ["{{ params.nope }}"]}}),
        refuse="b",
    )
    final = drive(memory)
    a, b = final.task("a"), final.task("b")
    assert (a.phase, a.attempts[0].reason) == (TaskPhase.FAILED, "StartError")
    assert "task `a`: args[0]: template" in (a.message or "")
    assert (b.phase, b.attempts[0].reason) == (TaskPhase.FAILED, "StartError")
    assert b.attempts[0].message == "the Job was refused: forbidden"
    assert final.phase == RunPhase.FAILED


def test_an_attempt_nobody_sees_any_more_is_lost_and_retried():
    memory = Memory(
        record_of(planned("a", retries=1, retry_delay_seconds=5)), outcomes={"a-1": "gone"}
    )
    final = drive(memory, lost_after_seconds=30)
    task = final.task("a")
    assert [a.reason for a in task.attempts] == ["AttemptLost", "Completed"]
    assert task.attempts[0].message == "its Job or process disappeared"
    assert task.phase == TaskPhase.SUCCEEDED


def test_an_attempt_no_record_shows_is_adopted_not_started_again():
    memory = Memory(
        record_of(planned("a")),
        seen_before_load={"a-1": Observation(Progress.RUNNING, started=T0)},
    )
    memory.started.append(Launch(task="a", attempt=1, kind=TaskType.SCRIPT, target="a"))
    final = drive(memory)
    assert [(s.task, s.attempt) for s in memory.started] == [("a", 1)]  # only the adopted one
    assert final.task("a").phase == TaskPhase.SUCCEEDED
    assert final.task("a").attempts[0].job == "a-1"


def test_an_abort_stops_running_attempts_with_its_reason():
    memory = Memory(record_of(planned("a"), planned("b", "a")), outcomes={"a-1": "run"})

    async def abort_later() -> RunRecord | None:
        loop = RunLoop(memory, memory, memory)
        running = asyncio.get_running_loop().create_task(loop.run())
        while not memory.started:
            await asyncio.sleep(0)
        memory.abort = True
        return await asyncio.wait_for(running, timeout=30)

    final = asyncio.run(abort_later())
    assert final is not None
    assert memory.stopped == [("a-1", "Aborted")]
    assert final.phase == RunPhase.ABORTED
    assert final.task("a").phase == TaskPhase.ABORTED
    assert final.task("a").attempts[0].reason == "Aborted"
    assert final.task("b").phase == TaskPhase.ABORTED
    assert final.task("b").attempts == []


def test_a_record_is_saved_with_what_changed():
    memory = Memory(record_of(planned("a")))
    drive(memory)
    changed = [(c.task, c.phase) for save in memory.saves for c in save.tasks]
    assert changed == [("a", TaskPhase.RUNNING), ("a", TaskPhase.SUCCEEDED)]
    phases = [c.phase for save in memory.saves for c in save.run]
    assert phases == [RunPhase.QUEUED, RunPhase.RUNNING, RunPhase.SUCCEEDING, RunPhase.SUCCEEDED]

"""How a local run in progress is shown: a live panel on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kascade.host.records import Changes, RunRecord

PHASE_STYLE = {
    "SUCCEEDED": "green",
    "REUSED": "green",
    "FAILED": "red",
    "UPSTREAM_FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "yellow",
    "SKIPPED": "dim",
    "RUNNING": "cyan",
    "RETRYING": "magenta",
    "QUEUED": "blue",
    "PENDING": "dim",
}
_FAILURES = ("FAILED", "UPSTREAM_FAILED", "TIMED_OUT", "RETRYING")


def elapsed(record: RunRecord, now: datetime | None = None) -> float:
    """Seconds since the run started (to its end once it ended)."""
    if record.started_at is None:
        return 0.0
    end = record.finished_at or now or datetime.now(record.started_at.tzinfo)
    return max(0.0, (end - record.started_at).total_seconds())


def format_seconds(seconds: float) -> str:
    """1.2s, 4m05s, 2h03m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LineReporter:
    """One plain line per change, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def changed(self, record: RunRecord, changes: Changes) -> None:
        stamp = changes.time.astimezone().strftime("%H:%M:%S")
        lines = [
            f"task {change.task} {change.phase.value}"
            + (f"  {change.message}" if change.message else "")
            for change in changes.tasks
        ]
        lines += [
            f"run {record.id} {change.phase.value}"
            + (f"  {change.message}" if change.message else "")
            for change in changes.run
        ]
        for line in lines:
            print(f"{stamp} {line}", file=self.stream, flush=True)

    def tick(self, record: RunRecord) -> None:
        """Plain output has nothing to refresh."""

    def close(self) -> None:
        """Nothing to tear down."""


class LiveReporter:
    """A panel redrawn in place: run phase, elapsed time, tasks by phase, running tasks;
    failures are printed above it as they happen."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, refresh_per_second=4, transient=True)
        self.live.start()
        self._last = 0.0

    def changed(self, record: RunRecord, changes: Changes) -> None:
        for change in changes.tasks:
            phase = change.phase.value
            if phase in _FAILURES:
                style = PHASE_STYLE.get(phase, "")
                self.console.print(
                    Text.assemble(
                        (f"{phase:<15}", style), f" {change.task}  {change.message or ''}"
                    )
                )
        self._draw(record)

    def tick(self, record: RunRecord) -> None:
        if time.monotonic() - self._last >= 0.25:
            self._draw(record)

    def _draw(self, record: RunRecord) -> None:
        self._last = time.monotonic()
        counts = Counter(t.phase.value for t in record.tasks if t.hook is None)
        phase = record.phase.value if record.phase else "NEW"
        header = Text.assemble(
            ("run ", "bold"),
            record.id,
            "  ",
            (phase, PHASE_STYLE.get(phase, "bold")),
            f"  {format_seconds(elapsed(record))}",
        )
        summary = Text(
            "  ".join(f"{name.lower()} {count}" for name, count in sorted(counts.items()))
        )
        running = [t.id for t in record.tasks if t.phase.value == "RUNNING"]
        lines: list[Text | Table] = [header, summary]
        if running:
            shown = ", ".join(running[:8]) + (f" (+{len(running) - 8})" if len(running) > 8 else "")
            lines.append(Text(f"running: {shown}", style="cyan"))
        self.live.update(Group(*lines))

    def close(self) -> None:
        self.live.stop()

"""The end of a task's log, as a task's message shows it."""

from __future__ import annotations

import os
from pathlib import Path


def tail(path: Path, lines: int = 3, limit: int = 400) -> str:
    """The last non-empty lines of a log, for a task's message."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "…" + joined[-limit:]

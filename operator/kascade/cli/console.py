"""Rich consoles for command output: wide lines when piped, not a table wrapped at 80."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PIPE_WIDTH = 200


def console_for(stream: TextIO | None = None) -> Console:
    """A console on `stream` (default stdout); a pipe or file gets 200 columns."""
    target = stream or sys.stdout
    return Console(
        file=target,
        soft_wrap=True,
        highlight=False,
        width=None if target.isatty() else PIPE_WIDTH,
    )


stderr = Console(stderr=True, highlight=False, soft_wrap=True)

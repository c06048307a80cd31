"""The guardian of a host's task processes: a small process that reads `+PGID` and
`-PGID` lines from its parent through a pipe and, when the pipe closes (the parent
ended, even by SIGKILL), kills every process group still listed. So no task outlives
the local runner or the operator that started it.

Run as `python -m kascade.host.guardian`; it ignores Ctrl-C and SIGTERM sent to the
terminal's process group: only its parent's end stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> int:
    """Keep the list of live groups until stdin closes, then kill them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip()
        if len(text) > 1 and text[1:].isdigit():
            group = int(text[1:])
            if text[:1] == b"+":
                groups.add(group)
            elif text[:1] == b"-":
                groups.discard(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())

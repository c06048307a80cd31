"""Tiny flow hook: print a one-line notification about the current kascade run.

Usage::

    python scripts/notify/__main__.py [WORD ...]

The flow and run names come from the ``KASCADE_FLOW`` and ``KASCADE_RUN`` environment
variables; the arguments (for example ``failed``) are appended to the message.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    """Print the notification line."""
    flow = os.environ.get("KASCADE_FLOW", "<unknown flow>")
    run = os.environ.get("KASCADE_RUN", "<unknown run>")
    detail = " ".join(argv) if argv else "finished"
    print(f"[notify] flow={flow} run={run}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The `kascade` console script. It imports nothing but sys at first, so that Ctrl-C
while the rest of kascade loads (about half a second) ends the command with
"interrupted" and exit code 130, as Ctrl-C does later, instead of a traceback."""

import sys


def main() -> None:
    """Load the command line and run it; Ctrl-C at any point is exit code 130."""
    try:
        from kascade.cli.main import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)

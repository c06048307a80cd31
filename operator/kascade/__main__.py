"""`python -m kascade` runs the command line, through the same entry as `kascade`."""

from kascade.cli.entry import main

main()

"""`python -m kascade` runs the command line."""

from kascade.cli.main import main

main()

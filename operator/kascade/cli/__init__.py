"""The `kascade` command line: argument parsing and presentation only."""

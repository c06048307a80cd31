"""Running flows on this machine: tasks as local processes, run records on disk."""

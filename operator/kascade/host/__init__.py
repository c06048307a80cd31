"""The run host: the one observe → decide → act → record loop, and the interface of what
it runs on (where a run's record lives, how attempts start and are seen, how time
passes). The local runner and the operator are adapters of it."""

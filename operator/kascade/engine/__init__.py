"""kascade's pure core: project loading, selectors, the DAG, plans, state machines, decisions."""

"""The ancestry of a run: the chain of flows from the top-level run down to it, through
the flow tasks that started each child run. A flow task may not start a flow already in
its run's chain (a flow that runs itself, or flows that start each other, would nest
without end), nor nest child runs deeper than a maximum."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

MAX_FLOW_DEPTH = 5
"""How many child runs deep a run may be below its top-level run by default (the
operator's --max-flow-depth): a → b → c → d → e → f, no further."""
MAX_FLOW_DEPTH_LIMIT = 100
"""The largest --max-flow-depth the operator takes (a run's status holds its chain)."""
ARROW = " → "


def lineage_of(parent: Sequence[str] | None, flow: str) -> tuple[str, ...]:
    """The chain of a run of `flow`: its parent run's chain (none for a top-level run)
    followed by its own flow."""
    return (*(parent or ()), flow)


def child_flow_problem(lineage: Sequence[str], target: str, max_depth: int) -> str | None:
    """Why a flow task of a run with chain `lineage` may not start a run of `target`;
    None when it may."""
    chain = ARROW.join([*lineage, target])
    if target in lineage:
        return (
            f"flow recursion: {chain} (flow `{target}` is already running in this chain, "
            "so it would start itself again without end)"
        )
    depth = len(lineage)
    if depth > max_depth:
        return (
            f"child flows nested too deeply: {chain} would run {depth} levels below its "
            f"top-level run, more than the maximum of {max_depth} (operator flag "
            "--max-flow-depth)"
        )
    return None


def flow_cycle(start: str, children: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """A shortest chain of flows that leads from `start` back to itself, following the
    flows each flow's flow nodes and hooks start (`children`); None without one."""
    previous: dict[str, str] = {}
    pending = deque([start])
    while pending:
        flow = pending.popleft()
        for child in children.get(flow, ()):
            if child == start:
                chain = [flow]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return (*reversed(chain), start)
            if child not in previous:
                previous[child] = flow
                pending.append(child)
    return None

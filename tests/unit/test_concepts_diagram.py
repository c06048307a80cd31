"""The state diagrams in docs/concepts.md draw exactly the transition tables of
kascade.engine.statemachine: every allowed transition is an arrow, every arrow is allowed,
and exactly the terminal phases lead to the end state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kascade.api import RunPhase, TaskPhase
from kascade.engine.statemachine import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    TASK_TERMINAL,
    TASK_TRANSITIONS,
)

CONCEPTS = Path(__file__).resolve().parents[2] / "docs" / "concepts.md"
START = "[*]"
_ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")

Edge = tuple[str, str]


def state_diagram(marker: str) -> list[str]:
    """The lines of the stateDiagram-v2 block of concepts.md that carries `%% kascade: X`."""
    blocks = re.findall(r"```mermaid\n(.*?)```", CONCEPTS.read_text(encoding="utf-8"), re.S)
    chosen = [b for b in blocks if f"%% kascade: {marker}\n" in b]
    assert len(chosen) == 1, f"expected one Mermaid block marked `%% kascade: {marker}`"
    lines = chosen[0].splitlines()
    assert lines[0].strip() == "stateDiagram-v2"
    return lines[1:]


def arrows(lines: list[str]) -> list[Edge]:
    """Every `A --> B` (labels dropped); any other line must be a comment."""
    found: list[Edge] = []
    for line in lines:
        match = _ARROW.match(line)
        if match:
            found.append((match[1], match[2]))
        else:
            assert not line.strip() or line.strip().startswith("%%"), f"unexpected line {line!r}"
    return found


def table_edges(table: dict[object, frozenset[object]]) -> set[Edge]:
    """The transition table as (from, to) names, `None` (a new object) as the start."""
    return {
        (START if old is None else str(old), str(new))
        for old, targets in table.items()
        for new in targets
    }


@pytest.mark.parametrize(
    ("marker", "table", "terminal", "phases"),
    [
        ("Run", RUN_TRANSITIONS, RUN_TERMINAL, RunPhase),
        ("Task", TASK_TRANSITIONS, TASK_TERMINAL, TaskPhase),
    ],
)
def test_diagram_draws_exactly_the_transition_table(marker, table, terminal, phases):
    drawn = arrows(state_diagram(marker))
    assert len(drawn) == len(set(drawn)), f"{marker}: an arrow is drawn twice"
    transitions = {edge for edge in drawn if edge[1] != START}
    endings = {old for old, new in drawn if new == START}
    expected = table_edges(table)
    assert transitions - expected == set(), f"{marker}: drawn but not allowed by the engine"
    assert expected - transitions == set(), f"{marker}: allowed by the engine but not drawn"
    assert endings == {str(phase) for phase in terminal}
    names = {name for edge in drawn for name in edge} - {START}
    assert names == {str(phase) for phase in phases}


def test_a_missing_or_extra_arrow_is_noticed():
    drawn = set(arrows(["    [*] --> QUEUED: created", "    QUEUED --> SUCCEEDED"]))
    expected = table_edges(RUN_TRANSITIONS)
    assert ("QUEUED", "SUCCEEDED") in drawn - expected
    assert ("RUNNING", "FAILING") in expected - drawn

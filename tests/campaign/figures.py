"""The campaign's figures: counted by the tests, printed at the end of the session and
written to .artifacts/campaign.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.cluster import ROOT

ARTIFACT = ROOT / ".artifacts" / "campaign.json"
ORDER = (
    "manifests_tried",
    "manifests_rejected_at_admission",
    "manifests_rejected_naming_the_field",
    "manifests_accepted",
    "manifests_accepted_but_invalid",
    "manifests_invalid_condition_naming_the_field",
    "manifests_accepted_without_condition",
    "runs_tried",
    "runs_rejected_at_admission",
    "runs_rejected_naming_the_field",
    "runs_ended_with_reasons",
    "hangs",
    "max_recursive_runs",
    "kills",
    "jobs_seen",
    "duplicate_jobs",
    "lost_tasks",
    "incomplete_histories",
    "task_count_checks",
    "task_count_violations",
    "apiserver_restarts",
    "apiserver_downtime_seconds",
    "operator_recovery_seconds",
)


class Figures:
    """Counters and a few measured values, one instance for the session."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.values: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    def maximum(self, name: str, value: int) -> None:
        self.values[name] = max(int(self.values.get(name, 0)), value)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def empty(self) -> bool:
        return not self.counts and not self.values and not self.notes

    def as_dict(self) -> dict[str, Any]:
        merged: dict[str, Any] = {name: self.counts.get(name, 0) for name in ORDER}
        merged.update({k: v for k, v in self.counts.items() if k not in merged})
        merged.update(self.values)
        return {"figures": merged, "notes": self.notes}

    def lines(self) -> list[str]:
        data = self.as_dict()
        width = max(len(name) for name in data["figures"])
        out = [f"{name:<{width}}  {value}" for name, value in data["figures"].items()]
        out += [f"note: {text}" for text in data["notes"]]
        return out

    def write(self, path: Path = ARTIFACT) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n")


FIGURES = Figures()

"""A. Generated bad manifests: a good Flow mutated one field at a time, and bad Run specs.

A Flow the API server refuses must be refused naming the field; one it accepts although
kascade's own model (the oracle) rejects it must be marked Valid=False by the operator
within 30 s, naming the field. A bad Run is refused naming the field, or ends FAILED
with a reason and an Event within 60 s. Spec fields of a Run cannot be added later."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.campaign.figures import FIGURES
from tests.campaign.generators import (
    PROJECT_CONFIG_MAP,
    RUN_FLOW,
    FlowCase,
    base_flow,
    flow_cases,
    names_field,
    oracle,
    run_cases,
    target_flow,
)
from tests.campaign.support import Api, brief, one_line, phase, push_project, run_manifest
from tests.integration.cluster import Cluster
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_operator import TERMINAL
from tests.integration.waiting import wait_for

FLOW_CONDITION_SECONDS = 30
RUN_END_SECONDS = 60
SHOWN = 40


@dataclass
class FlowOutcome:
    case: FlowCase
    name: str
    valid: bool
    refusal: str | None
    created: float
    condition: dict[str, Any] | None = None
    seen_after: float | None = None


def valid_condition(body: dict[str, Any]) -> dict[str, Any] | None:
    """The Valid condition, when it is for the Flow's current generation."""
    generation = body["metadata"].get("generation")
    for condition in (body.get("status") or {}).get("conditions") or []:
        observed = condition.get("observedGeneration")
        if condition.get("type") == "Valid" and observed in (None, generation):
            return dict(condition)
    return None


def report(title: str, problems: list[str]) -> str:
    shown = problems[:SHOWN]
    more = f"\n... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return f"{title} ({len(problems)}):\n" + "\n".join(shown) + more


def test_generated_bad_flows_are_refused_or_marked_invalid_naming_the_field(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    api = Api(cluster)
    push_project(cluster, namespace, tmp_path, PROJECT_CONFIG_MAP)
    assert api.create(namespace, "flows", base_flow("base")) is None
    outcomes: list[FlowOutcome] = []
    for index, case in enumerate(flow_cases()):
        name = f"m-{index:03d}"
        body = case.manifest(name)
        refused = api.create(namespace, "flows", body)
        outcomes.append(FlowOutcome(case, name, oracle(body), refused, time.monotonic()))
    accepted = {o.name: o for o in outcomes if o.refusal is None}
    accepted_at = time.monotonic()

    def conditions() -> dict[str, dict[str, Any] | None]:
        now = time.monotonic()
        found = {body["metadata"]["name"]: body for body in api.items(namespace, "flows")}
        for name, outcome in accepted.items():
            if outcome.condition is None and name in found:
                outcome.condition = valid_condition(found[name])
                outcome.seen_after = now - outcome.created if outcome.condition else None
        return {"base": valid_condition(found["base"]) if "base" in found else None}

    base = _settle(conditions, accepted, accepted_at)

    problems: list[str] = []
    refused_naming = 0
    invalid_naming = 0
    for outcome in outcomes:
        what = f"{outcome.name} {outcome.case.describe()}"
        if outcome.refusal is not None:
            if names_field(outcome.refusal, outcome.case.field):
                refused_naming += 1
            else:
                problems.append(
                    f"{what}: refused without naming {outcome.case.field}: "
                    f"{one_line(outcome.refusal)}"
                )
            continue
        condition = outcome.condition
        if condition is None:
            problems.append(f"{what}: accepted, no Valid condition after {FLOW_CONDITION_SECONDS}s")
            FIGURES.add("manifests_accepted_without_condition")
            continue
        if outcome.valid:
            continue
        late = (outcome.seen_after or 0) > FLOW_CONDITION_SECONDS
        message = str(condition.get("message") or "")
        if condition.get("status") != "False" or not condition.get("reason"):
            problems.append(
                f"{what}: the model rejects it, the operator says Valid={condition.get('status')} "
                f"reason={condition.get('reason')!r}: {one_line(message)}"
            )
        elif not names_field(message, outcome.case.field):
            problems.append(
                f"{what}: Valid=False without naming {outcome.case.field}: {one_line(message)}"
            )
        elif late:
            problems.append(f"{what}: Valid=False after {outcome.seen_after:.0f}s")
        else:
            invalid_naming += 1

    FIGURES.add("manifests_tried", len(outcomes))
    FIGURES.add("manifests_rejected_at_admission", len(outcomes) - len(accepted))
    FIGURES.add("manifests_rejected_naming_the_field", refused_naming)
    FIGURES.add("manifests_accepted", len(accepted))
    FIGURES.add("manifests_accepted_but_invalid", sum(1 for o in accepted.values() if not o.valid))
    FIGURES.add("manifests_invalid_condition_naming_the_field", invalid_naming)
    admission_only = [o for o in outcomes if o.refusal is not None and o.valid]
    FIGURES.set("manifests_refused_though_the_model_accepts", len(admission_only))
    stricter = ", ".join(o.case.describe() for o in admission_only[:10])
    FIGURES.note(f"refused at admission though the model accepts: {stricter}")
    by_kind = Counter(p.split(" ")[1] for p in problems)
    FIGURES.note(f"flow cases failing by kind: {dict(by_kind)}")

    assert base is not None, "the good Flow got no Valid condition"
    assert base["status"] == "True", f"the good Flow is not Valid: {base}"
    assert operator.alive, f"the operator died:\n{operator.log()[-3000:]}"
    assert not problems, report("bad Flows handled wrongly", problems)


def _settle(
    observe: Callable[[], dict[str, dict[str, Any] | None]],
    accepted: dict[str, FlowOutcome],
    since: float,
) -> dict[str, Any] | None:
    """Poll until every accepted Flow has a Valid condition, or 30 s passed since the last
    was created; the good Flow's condition."""
    deadline = since + FLOW_CONDITION_SECONDS
    while True:
        seen = observe()
        if seen["base"] is not None and all(o.condition is not None for o in accepted.values()):
            return seen["base"]
        if time.monotonic() >= deadline:
            return seen["base"]
        time.sleep(0.5)


@dataclass
class RunOutcome:
    label: str
    name: str
    field: str
    refusal: str | None
    body: dict[str, Any] | None = None
    events: int = 0


def test_generated_bad_runs_are_refused_or_end_failed_with_a_reason(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    api = Api(cluster)
    push_project(cluster, namespace, tmp_path, PROJECT_CONFIG_MAP)
    assert api.create(namespace, "flows", target_flow()) is None
    outcomes = []
    for index, case in enumerate(run_cases()):
        name = f"r-{index:02d}"
        outcomes.append(
            RunOutcome(
                case.label, name, case.field, api.create(namespace, "runs", case.manifest(name))
            )
        )
    accepted = [o for o in outcomes if o.refusal is None]
    deadline = time.monotonic() + RUN_END_SECONDS

    def unfinished() -> list[str]:
        runs = {r["metadata"]["name"]: r for r in api.items(namespace, "runs")}
        for outcome in accepted:
            outcome.body = runs.get(outcome.name)
        return [o.name for o in accepted if o.body is not None and phase(o.body) not in TERMINAL]

    while unfinished() and time.monotonic() < deadline:
        time.sleep(0.5)
    for outcome in accepted:
        outcome.events = len(api.events_of(namespace, outcome.name))

    problems = []
    refused_naming = 0
    ended_with_reason = 0
    for outcome in outcomes:
        what = f"{outcome.name} ({outcome.label})"
        if outcome.refusal is not None:
            if names_field(outcome.refusal, outcome.field):
                refused_naming += 1
            else:
                problems.append(
                    f"{what}: refused without naming {outcome.field}: {one_line(outcome.refusal)}"
                )
            continue
        status = (outcome.body or {}).get("status") or {}
        if outcome.body is None:
            problems.append(f"{what}: accepted, then deleted before it could be checked")
        elif status.get("phase") not in TERMINAL:
            FIGURES.add("hangs")
            problems.append(
                f"{what}: accepted and not ended after {RUN_END_SECONDS}s: {brief(outcome.body)}"
            )
        elif status.get("phase") != "FAILED" or not status.get("reason"):
            problems.append(
                f"{what}: accepted and ended {brief(outcome.body)}, not FAILED with a reason"
            )
        elif not outcome.events:
            problems.append(f"{what}: FAILED ({status.get('reason')}) without an Event on the Run")
        else:
            ended_with_reason += 1
    FIGURES.add("runs_tried", len(outcomes))
    FIGURES.add("runs_rejected_at_admission", len(outcomes) - len(accepted))
    FIGURES.add("runs_rejected_naming_the_field", refused_naming)
    FIGURES.add("runs_ended_with_reasons", ended_with_reason)
    assert operator.alive, f"the operator died:\n{operator.log()[-3000:]}"
    assert not problems, report("bad Runs handled wrongly", problems)


def test_only_abort_may_change_on_a_run(cluster: Cluster, namespace: str) -> None:
    """Fields left out at creation cannot be added later; abort goes false -> true only."""
    api = Api(cluster)
    assert api.create(namespace, "runs", run_manifest("r", RUN_FLOW)) is None

    def patched(spec: dict[str, Any]) -> str | None:
        try:
            api.custom.patch_namespaced_custom_object(
                "kascade.io", "v1alpha1", namespace, "runs", "r", {"spec": spec}
            )
        except Exception as err:  # ApiException: the refusal is the point
            return str(getattr(err, "body", err))
        return None

    outcomes = {
        "scheduledTime": patched({"scheduledTime": "2030-01-01T00:00:00Z"}),
        "parameters": patched({"parameters": {"n": 4}}),
        "flowRef": patched({"flowRef": {"name": "other"}}),
        "type": patched({"type": "ORCHESTRATED"}),
    }
    kept = wait_for(
        lambda: api.get(namespace, "runs", "r"), lambda body: body is not None, timeout=10
    )
    assert kept is not None
    added = {k: v for k, v in outcomes.items() if v is None}
    assert not added, (
        f"fields were changed after creation: {sorted(added)}; the Run is now {kept['spec']}"
    )
    for field_name, message in outcomes.items():
        assert message is not None
        assert field_name in message, f"{field_name} refused without naming it: {message}"
    assert patched({"abort": True}) is None
    withdrawn = patched({"abort": False})
    assert withdrawn is not None
    assert "abort" in withdrawn

"""Generated Flows and projects through `kascade lint`, `plan` and `run --local`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import SCALE
from tests.fuzz.harness import Result, Sandbox, kascade
from tests.fuzz.strategies import ProjectTree, describe, manifest_texts, project_trees

PLANNING_EXAMPLES = max(1, int(250 * SCALE))
RUN_EXAMPLES = max(1, int(25 * SCALE))


def check(sandbox: Sandbox, tree: ProjectTree, manifest: str, *command: str) -> Result:
    """Run one command on a fresh sandbox and hold it to the rules."""
    flow_file = sandbox.make(tree, manifest)
    before = sandbox.snapshot()
    args = [part.replace("{flow}", str(flow_file)) for part in command]
    args = [part.replace("{state}", str(sandbox.state)) for part in args]
    result = kascade(*args, cwd=sandbox.cwd)
    event(f"{command[0]}: exit {result.code}")
    after = sandbox.snapshot()
    shown = f"\n--- manifest ---\n{manifest}\n--- project ---\n{describe(tree)}"
    shown += f"\n--- exit {result.code} ---\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert not result.problems(), "; ".join(result.problems()) + shown
    written = sandbox.writes_outside(before, after)
    assert not written, f"wrote outside the project and state dir: {written}" + shown
    leaked = "secret" in result.stdout and "secret" not in manifest
    assert not leaked, "printed a file from outside the project" + shown
    return result


def fresh() -> Sandbox:
    # Deep enough that `../../..` from the state dir or the project stays in the sandbox.
    return Sandbox(Path(tempfile.mkdtemp(prefix="kascade-fuzz-")) / "a" / "b" / "c" / "case")


@settings(max_examples=PLANNING_EXAMPLES)
@given(
    tree=project_trees(),
    manifest=manifest_texts(),
    command=st.sampled_from(
        (
            ("lint", "{flow}"),
            ("plan", "{flow}", "-o", "json"),
            ("plan", "{flow}"),
            ("diagram", "{flow}"),
        )
    ),
)
def test_lint_and_plan_end_with_a_message(
    tree: ProjectTree, manifest: str, command: tuple[str, ...]
):
    sandbox = fresh()
    try:
        check(sandbox, tree, manifest, *command)
    finally:
        shutil.rmtree(sandbox.root.parents[3], ignore_errors=True)


@settings(max_examples=RUN_EXAMPLES)
@given(tree=project_trees(), manifest=manifest_texts())
def test_a_local_run_ends_with_a_phase_or_a_message(tree: ProjectTree, manifest: str):
    sandbox = fresh()
    try:
        result = check(
            sandbox,
            tree,
            manifest,
            "run",
            "{flow}",
            "--local",
            "--state-dir",
            "{state}",
            "-o",
            "json",
        )
        if result.code == 0:
            assert '"phase": "SUCCEEDED"' in result.stdout
    finally:
        shutil.rmtree(sandbox.root.parents[3], ignore_errors=True)

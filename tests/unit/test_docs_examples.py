"""What docs/selectors.md and docs/concepts.md claim about examples/shop is what kascade
does: every row of the selector table, the transitive-dependency example, the error
messages shown, and the plan rows of the concepts page."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from kascade.cli.main import cli
from kascade.engine.manifests import load_flow
from kascade.engine.plan import Plan, build_plan
from kascade.engine.project import Project, load_project
from tests.projects import flow, manifest

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
SELECTORS = ROOT / "docs" / "selectors.md"
CONCEPTS = ROOT / "docs" / "concepts.md"
CHECKED_TABLE = "<!-- The rows below are checked by tests/unit/test_docs_examples.py. -->"


@pytest.fixture(scope="module")
def shop() -> Project:
    return load_project(SHOP)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_after(text: str, marker: str) -> list[list[str]]:
    """The body rows of the first Markdown table after `marker`."""
    lines = text[text.index(marker) + len(marker) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:  # after the header and the separator
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def selector_rows() -> list[tuple[str, str, set[str]]]:
    rows = table_after(SELECTORS.read_text(encoding="utf-8"), CHECKED_TABLE)
    return [
        (include.strip("`"), exclude.strip("`"), set(selected.split(", ")))
        for include, exclude, selected in rows
    ]


def plan_one_node(project: Project, include: str, exclude: str) -> Plan:
    transformation = {"include": [include]} | ({"exclude": [exclude]} if exclude else {})
    return build_plan(flow([{"name": "models", "transformation": transformation}]), project)


def test_the_selector_table_has_rows():
    assert len(selector_rows()) >= 15


@pytest.mark.parametrize(
    ("include", "exclude", "selected"), selector_rows(), ids=lambda v: str(v)[:40]
)
def test_selector_example_selects_what_the_doc_says(shop, include, exclude, selected):
    plan = plan_one_node(shop, include, exclude)
    assert {task.id for task in plan.tasks if task.type.value != "test"} == selected


def test_transitive_dependency_example(shop):
    text = SELECTORS.read_text(encoding="utf-8")
    section = text[text.index("## Dependencies between selected models") :]
    nodes = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S)[1])["nodes"]
    plan = build_plan(flow(nodes), shop)
    assert plan.by_id["fct_revenue_daily"].depends_on == ("stg_orders",)
    assert {task.id for task in plan.tasks} == {"stg_orders", "fct_revenue_daily"}


def test_error_messages_are_the_ones_lint_prints(tmp_path: Path):
    text = SELECTORS.read_text(encoding="utf-8")
    section = text[text.index("## Errors and warnings") :]
    shown = re.search(r"```text\n(.*?)```", section, re.S)[1].strip().splitlines()
    empty = re.search(r"``\s*(error: node `b` selects no models.*?)\s*``", section)[1]
    nodes = [
        {"name": "a", "transformation": {"include": ["tag:", "@stg_orders+"]}},
        {"name": "b", "transformation": {"include": ["tag:nothing"]}},
    ]
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(yaml.safe_dump(manifest(nodes)), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "kascade", "lint", str(flow_file), "--project", str(SHOP)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    printed = result.stderr.splitlines()
    for line in [*shown, empty]:
        assert line in printed, f"{line!r} not in lint's output:\n{result.stderr}"


def test_plan_rows_of_the_concepts_page(shop):
    plan = build_plan(load_flow(SHOP / "flow.yaml"), shop)
    text = CONCEPTS.read_text(encoding="utf-8")
    rows = table_after(text, "`kascade plan examples/shop/flow.yaml` prints")
    assert len(rows) >= 5
    for task_id, node, kind, target, depends_on in rows:
        task = plan.by_id[task_id.strip("`")]
        assert node.split(" ")[0] == task.node
        assert kind == task.type.value
        assert target == task.target
        assert set(filter(None, depends_on.split(", "))) == set(task.depends_on)


# --- every kascade and make command shown in these pages exists -------------------------

COMMAND_PAGES = sorted(
    p.relative_to(ROOT).as_posix() for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
)


def shell_commands(page: Path) -> list[list[str]]:
    """The commands of a page's sh blocks: comments, `&` and continuations handled, and
    `a && b`, `a | b`, `a; b` split into their commands."""
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            text = re.sub(r"(^|\s)#.*$", "", line).strip().removesuffix("&").strip()
            if not text:
                continue
            words: list[str] = []
            for word in shlex.split(text.replace("<RUN>", "some-run"), comments=False):
                if word in ("&&", "||", ";", "|"):
                    commands.append(words)
                    words = []
                else:
                    words.append(word)
            commands.append(words)
    return [words for words in commands if words]


def check_kascade_command(args: list[str]) -> None:
    """Parse a command line with kascade's own parser (nothing runs); UsageError if bad."""
    command: click.Command = cli
    ctx = click.Context(cli, info_name="kascade")
    words = list(args)
    while isinstance(command, click.Group):
        assert words, "a command group needs a subcommand"
        name = words.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"unknown command {name}"
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, words, parent=ctx.parent)


@pytest.mark.parametrize("page", COMMAND_PAGES)
def test_commands_shown_are_real(page: str):
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    commands = shell_commands(ROOT / page)
    for words in commands:
        if words[0] == "kascade":
            try:
                check_kascade_command(words[1:])
            except click.UsageError as err:
                pytest.fail(f"{page}: `{shlex.join(words)}`: {err.format_message()}")
        elif words[0] == "make":
            for target in words[1:]:
                if "=" not in target:
                    assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (
                        f"{page}: make has no target {target}"
                    )


def test_a_wrong_kascade_command_is_noticed():
    check_kascade_command(["trigger", "shop-daily", "-n", "x", "--wait"])
    with pytest.raises(click.UsageError):
        check_kascade_command(["trigger", "shop-daily", "--no-such-option"])
    with pytest.raises(click.UsageError):
        check_kascade_command(["project", "push", "examples/shop"])  # --name is required

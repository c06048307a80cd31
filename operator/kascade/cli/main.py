"""The `kascade` entry point: commands, options and exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.markup import escape
from rich.table import Table

from kascade import __version__
from kascade.api.crd import crd_files, render_all
from kascade.cli.cluster_commands import COMMANDS as CLUSTER_COMMANDS
from kascade.cli.console import console_for, stderr
from kascade.cli.loading import plan_flow
from kascade.cli.local_commands import COMMANDS as LOCAL_COMMANDS
from kascade.cli.mermaid import render_mermaid
from kascade.contract import ContractError
from kascade.engine.errors import KascadeError, PlanError
from kascade.engine.lint import lint_flow
from kascade.runtime.dbtnames import installed_dbt_names
from kascade.runtime.errors import TaskError

# Missing files are reported by the loaders (exit 1, naming the file), not as usage errors.
FLOW_FILE = click.Path(path_type=Path)
PROJECT_DIR = click.Path(path_type=Path)


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}", markup=True)


def _fail(problems: tuple[str, ...] | list[str]) -> NoReturn:
    for problem in problems:
        stderr.print(f"[red]error:[/] {escape(problem)}", markup=True)
    raise SystemExit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kascade")
def cli() -> None:
    """kascade: data flows (ingestion, SQL models, Python scripts) on Kubernetes."""


@cli.command()
@click.argument("flow", type=FLOW_FILE)
@click.option("--project", type=PROJECT_DIR, help="Project directory (default: the flow's folder).")
def lint(flow: Path, project: Path | None) -> None:
    """Validate a flow and its project; exit 1 naming every error.

    Beyond planning, every model's Jinja is parsed and rendered, every template of the flow
    (args, env values, child-flow parameters, parameter defaults) rendered for a sample
    run, and every parameter default checked against its type.
    """
    try:
        planned = plan_flow(flow, project)
    except PlanError as err:
        _warn(err.warnings)
        _fail(err.problems)
    _warn(planned.plan.warnings)
    dbt = installed_dbt_names() if planned.project.models else None  # dbt costs a second
    problems = lint_flow(planned.flow, planned.project, planned.plan, dbt)
    if problems:
        _fail(problems)
    plan = planned.plan
    counts = [_count(len(plan.tasks), "task")]
    counts += [_count(len(plan.hooks), "hook")] if plan.hooks else []
    counts += [_count(len(plan.warnings), "warning")] if plan.warnings else []
    click.echo(f"{flow}: flow `{plan.flow}` is valid: {', '.join(counts)}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@cli.command()
@click.argument("flow", type=FLOW_FILE)
@click.option("--project", type=PROJECT_DIR, help="Project directory (default: the flow's folder).")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def plan(flow: Path, project: Path | None, output: str) -> None:
    """Expand a flow into its tasks, in dependency order; nothing runs."""
    planned = plan_flow(flow, project)
    _warn(planned.plan.warnings)
    if output == "json":
        click.echo(json.dumps(planned.plan.to_json(), indent=2))
        return
    table = Table(title=f"flow {planned.plan.flow}: {len(planned.plan.tasks)} tasks")
    for column in ("ID", "NODE", "TYPE", "TARGET", "DEPENDS ON"):
        table.add_column(column)
    for task in (*planned.plan.tasks, *planned.plan.hooks):
        node = task.node if task.hook is None else f"{task.node} ({task.hook})"
        table.add_row(task.id, node, task.type.value, task.target, ", ".join(task.depends_on))
    console_for().print(table)


@cli.command()
@click.argument("flow", type=FLOW_FILE)
@click.option("--project", type=PROJECT_DIR, help="Project directory (default: the flow's folder).")
def diagram(flow: Path, project: Path | None) -> None:
    """Print a Mermaid flowchart of the flow's nodes and tasks."""
    planned = plan_flow(flow, project)
    _warn(planned.plan.warnings)
    click.echo(render_mermaid(planned.plan), nl=False)


@cli.command()
@click.option(
    "--write",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the files of crds/ (one per kind, and kopf's peering CRDs) into this "
    "directory instead of printing.",
)
def crds(directory: Path | None) -> None:
    """Print the CustomResourceDefinitions (identical to crds/)."""
    if directory is None:
        click.echo(render_all(), nl=False)
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in crd_files().items():
        (directory / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {directory / name}")


for command in (*LOCAL_COMMANDS, *CLUSTER_COMMANDS):
    cli.add_command(command)


def main() -> None:
    """Run the CLI; a KascadeError is a message and exit code 1, never a traceback.

    Exit codes: 0 success, 1 failure (one line naming what is wrong), 2 usage error, 130
    Ctrl-C, 143 SIGTERM (the commands that run flows set 130 and 143 themselves).
    """
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as err:
        interrupted = isinstance(err.__cause__, KeyboardInterrupt)
        stderr.print("interrupted" if interrupted else "aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        stderr.print("interrupted", markup=False)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (KascadeError, TaskError, ContractError) as err:
        stderr.print(f"error: {err}", markup=False)
        sys.exit(1)
    except Exception as err:
        if os.environ.get("KASCADE_DEBUG"):
            raise
        stderr.print(
            f"internal error: {type(err).__name__}: {err} (set KASCADE_DEBUG=1 for a traceback)",
            markup=False,
        )
        sys.exit(1)

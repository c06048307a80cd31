"""`kascade run --local`, `rerun --local`, `runs --local` and `tables`: flows on this machine."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from kascade.api import RunPhase, RunType
from kascade.cli.cluster import kubeconfig_option, namespace_option
from kascade.cli.cluster_commands import cluster_rerun
from kascade.cli.console import console_for, stderr
from kascade.cli.loading import project_dir
from kascade.cli.progress import PHASE_STYLE, LineReporter, LiveReporter, elapsed, format_seconds
from kascade.contract.warehouse import PASSWORD_ENV, absolute_url
from kascade.engine.manifests import load_flow
from kascade.engine.parameters import parse_assignments
from kascade.engine.progress import progress
from kascade.host.records import RunRecord
from kascade.local.preparation import default_warehouse, new_rerun, new_run
from kascade.local.runner import run_local
from kascade.local.store import RunLock, StateDir
from kascade.runtime.warehouse import open_warehouse

DEFAULT_STATE_DIR = ".kascade"

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where run records, logs and the embedded warehouse live.",
)
local_option = click.option("--local", is_flag=True, help="Run on this machine (no cluster).")


def _password_from_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Put the warehouse password of a file into the environment the tasks inherit
    (PGPASSWORD), never into a URL, a record or the output."""
    if value is None:
        return
    try:
        password = value.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise click.BadParameter(f"cannot read {value}: {err}", ctx, param) from err
    if not password:
        raise click.BadParameter(f"{value} is empty", ctx, param)
    os.environ[PASSWORD_ENV] = password


password_file_option = click.option(
    "--warehouse-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_password_from_file,
    expose_value=False,
    help=f"A file holding the warehouse's password (else ${PASSWORD_ENV} is used).",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["json"]),
    default=None,
    help="Print the final run record as JSON (progress goes to stderr).",
)


def _require_local(local: bool, command: str) -> None:
    if not local:
        raise click.UsageError(
            f"`kascade {command}` on a cluster is not available here yet; add --local to run "
            "on this machine"
        )


def _state_dir(path: Path) -> StateDir:
    """A usable state dir, its runs whose runner died ended first (RunnerLost)."""
    state = StateDir(path)
    state.ensure_writable()
    for lost in state.recover(datetime.now(UTC)):
        stderr.print(f"run {lost.id}: {lost.message}", markup=False, highlight=False)
    return state


def _execute(record: RunRecord, state: StateDir, lock: RunLock, output: str | None) -> None:
    """Run a stored record to its end, show it; exit 0 iff it SUCCEEDED (130 or 143 when
    Ctrl-C or SIGTERM aborted it)."""
    stream = sys.stderr if output == "json" else sys.stdout
    reporter: LineReporter | LiveReporter
    if stream.isatty():
        reporter = LiveReporter(Console(file=stream, highlight=False))
    else:
        reporter = LineReporter(stream)
    try:
        finished = run_local(record, state, reporter, lock)
    finally:
        reporter.close()
    final = finished.record
    if output == "json":
        click.echo(json.dumps(final.to_json(), indent=2))
    else:
        _summary(final, console_for(stream))
    if finished.signal is not None:
        raise SystemExit(128 + int(finished.signal))
    raise SystemExit(0 if final.phase == RunPhase.SUCCEEDED else 1)


def _summary(record: RunRecord, console: Console) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("TASK", "TYPE", "PHASE", "ATTEMPTS", "DURATION", "MESSAGE"):
        table.add_column(column)
    for task in record.tasks:
        if task.hook is not None and task.phase.value == "SKIPPED":
            continue
        seconds = sum(
            (a.end_time - a.start_time).total_seconds() for a in task.attempts if a.end_time
        )
        failed = task.phase.value not in ("SUCCEEDED", "REUSED", "SKIPPED")
        table.add_row(
            task.id + (f" ({task.hook})" if task.hook else ""),
            task.type.value,
            f"[{PHASE_STYLE.get(task.phase.value, '')}]{task.phase.value}[/]",
            str(len(task.attempts)),
            format_seconds(seconds) if task.attempts else "",
            (task.message or "") if failed else "",
        )
    console.print(table)
    phase = record.phase.value if record.phase else "NEW"
    console.print(
        f"run [bold]{record.id}[/] [{PHASE_STYLE.get(phase, 'bold')}]{phase}[/] in "
        f"{format_seconds(elapsed(record))}"
        + (f": {record.message}" if phase != "SUCCEEDED" else "")
    )


@click.command()
@click.argument("flow", type=click.Path(path_type=Path))
@local_option
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    help="Project directory (default: the flow's folder).",
)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter value.")
@click.option(
    "--warehouse", help="Warehouse URL (default: duckdb:///<state-dir>/warehouse.duckdb)."
)
@password_file_option
@state_dir_option
@output_option
def run(
    flow: Path,
    local: bool,
    project: Path | None,
    params: tuple[str, ...],
    warehouse: str | None,
    state_dir: Path,
    output: str | None,
) -> None:
    """Run a flow: the same engine and state machine as the operator, tasks as local
    processes. Exit 0 iff the run SUCCEEDED."""
    _require_local(local, "run")
    state = _state_dir(state_dir)
    loaded = load_flow(flow)
    url = absolute_url(warehouse) if warehouse else None  # refused before planning
    record = new_run(
        loaded, flow, project_dir(flow, project), parse_assignments(params), state, url
    )
    _execute(record, state, state.create(record), output)


@click.command()
@click.argument("run_id", metavar="RUN")
@local_option
@click.option("--failed", "mode", flag_value="failed", help="Rerun what did not succeed.")
@click.option("--all", "mode", flag_value="all", help="Rerun every task.")
@click.option("--task", "task", metavar="T", help="Rerun one task (the rest is reused).")
@click.option("--downstream", is_flag=True, help="With --task: also rerun its descendants.")
@click.option("--wait", is_flag=True, help="On a cluster: follow the rerun to its end.")
@password_file_option
@state_dir_option
@output_option
@namespace_option
@kubeconfig_option
def rerun(
    run_id: str,
    local: bool,
    mode: str | None,
    task: str | None,
    downstream: bool,
    wait: bool,
    state_dir: Path,
    output: str | None,
    namespace: str | None,
    kubeconfig: str | None,
) -> None:
    """Rerun a run with the project's current code, as a new run pointing at it: a local
    run with --local, else a Run on the cluster (prints its name)."""
    chosen = [m for m in (mode, "task" if task else None) if m]
    if len(chosen) != 1:
        raise click.UsageError("choose exactly one of --failed, --all, --task T")
    if downstream and not task:
        raise click.UsageError("--downstream goes with --task")
    kind = {"failed": RunType.RERUN_FAILED, "all": RunType.RERUN_ALL, "task": RunType.RERUN_TASK}[
        chosen[0]
    ]
    if not local:
        cluster_rerun(run_id, kind, task, downstream, wait, namespace, kubeconfig)
        return
    state = _state_dir(state_dir)
    original = state.load(run_id)
    record = new_rerun(original, kind, state, task, downstream)
    lock = state.create(record)
    state.add_rerun(original.id, record.id)
    _execute(record, state, lock, output)


@click.command()
@local_option
@state_dir_option
@output_option
def runs(local: bool, state_dir: Path, output: str | None) -> None:
    """List past local runs, oldest first."""
    _require_local(local, "runs")
    records = _state_dir(state_dir).records()
    if output == "json":
        click.echo(json.dumps([_brief(r) for r in records], indent=2))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("RUN", "FLOW", "TYPE", "PHASE", "TASKS", "STARTED", "DURATION"):
        table.add_column(column)
    for record in records:
        brief = _brief(record)
        started = (
            record.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            if record.started_at
            else ""
        )
        phase = brief["phase"] or "NEW"
        table.add_row(
            record.id,
            record.flow,
            record.type.value,
            f"[{PHASE_STYLE.get(phase, '')}]{phase}[/]",
            brief["tasks"],
            started,
            format_seconds(elapsed(record)) if record.started_at else "",
        )
    console_for().print(table)


def _brief(record: RunRecord) -> dict[str, str | None]:
    return {
        "id": record.id,
        "flow": record.flow,
        "type": record.type.value,
        "phase": record.phase.value if record.phase else None,
        "tasks": progress(t.phase for t in record.main_tasks),
        "rerunOf": record.rerun_of,
    }


@click.command()
@click.option("--warehouse", help="Warehouse URL (default: the state dir's embedded one).")
@password_file_option
@state_dir_option
def tables(warehouse: str | None, state_dir: Path) -> None:
    """List the tables and views of a warehouse with their row counts."""
    url = absolute_url(warehouse) if warehouse else default_warehouse(StateDir(state_dir))
    opened = open_warehouse(url)
    try:
        table = Table(show_edge=False, pad_edge=False, title=url)
        for column in ("RELATION", "KIND", "ROWS"):
            table.add_column(column)
        table.columns[2].justify = "right"
        for schema, name, kind in opened.relations():
            rows = opened.scalar(f"SELECT count(*) FROM {opened.quote(schema, name)}")
            table.add_row(f"{schema}.{name}", kind, str(rows))
    finally:
        opened.close()
    console_for().print(table)


COMMANDS = (run, rerun, runs, tables)

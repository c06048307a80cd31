"""Commands against a cluster: run the operator, push a project, trigger, follow, inspect,
abort, read logs; and `task exec`, the entrypoint of the runtime image."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import click
from kubernetes.client.exceptions import ApiException
from rich.tree import Tree

from kascade.api import RunPhase, RunType
from kascade.cli.cluster import (
    Cluster,
    ClusterError,
    api_error,
    connect,
    kubeconfig_option,
    namespace_option,
)
from kascade.cli.console import console_for
from kascade.cli.progress import PHASE_STYLE
from kascade.contract.archive import digest, pack, project_files
from kascade.engine.ancestry import MAX_FLOW_DEPTH, MAX_FLOW_DEPTH_LIMIT
from kascade.engine.naming import dns_name
from kascade.engine.parameters import parse_assignments
from kascade.engine.reruns import check_rerun_task, check_rerunnable
from kascade.engine.statemachine import run_is_terminal
from kascade.operator.config import (
    DEFAULT_IMAGE,
    EXECUTORS,
    OperatorConfig,
    default_operator_warehouse,
)
from kascade.operator.executors import local_attempt_log
from kascade.operator.jobs import POD_WAREHOUSE
from kascade.operator.labels import API_VERSION, GROUP, JOB_NAME, VERSION
from kascade.operator.metrics import parse_address
from kascade.operator.projects import project_config_map
from kascade.operator.reruns import rerun_body
from kascade.runtime.dbtparsestate import pack_with_parse_state

FOLLOW_INTERVAL_SECONDS = 0.5
PRIORITY_CEILING = 10**17  # above any start time in microseconds for millennia


@click.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable; default: all namespaces).",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="jobs",
    show_default=True,
    help="jobs: a Kubernetes Job per attempt; local: a process of this machine.",
)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Default task image.")
@click.option("--warehouse", help="Warehouse URL given to tasks that set none.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".kascade/operator"),
    show_default=True,
    help="Project cache (and, for the local executor, logs and warehouse).",
)
@click.option("--max-active-runs", type=click.IntRange(min=1), help="Operator-wide run limit.")
@click.option(
    "--max-flow-depth",
    type=click.IntRange(min=0, max=MAX_FLOW_DEPTH_LIMIT),
    default=MAX_FLOW_DEPTH,
    show_default=True,
    help="How many child runs deep a run may nest below its top-level run; a flow task "
    "that would go deeper, or start a flow already in its chain, fails.",
)
@click.option(
    "--liveness", metavar="URL", help="kopf health endpoint, e.g. http://0.0.0.0:8080/healthz."
)
@click.option(
    "--metrics-address",
    metavar="HOST:PORT",
    callback=lambda _ctx, _param, value: _metrics_address(value),
    help="Serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 0.0.0.0:8080.",
)
@click.option(
    "--peering",
    metavar="NAME",
    help="Run beside standby replicas: kopf peering object NAME (ClusterKopfPeering, or a "
    "KopfPeering per watched namespace) decides which one works; see docs/operations.md.",
)
@click.option(
    "--priority",
    type=int,
    help="Peering priority (highest works); default: earlier start wins, so a replica "
    "that starts later never takes over from a working one.",
)
@click.option(
    "--peering-lifetime",
    type=click.IntRange(min=5),
    default=60,
    show_default=True,
    help="Seconds a replica's peering record lives without a refresh: how long standbys "
    "wait before taking over from a replica that died without a word.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--clock-offset",
    type=float,
    default=0.0,
    hidden=True,
    help="Shift the operator's clock by this many seconds (tests of schedules).",
)
@kubeconfig_option
def operator(
    namespaces: tuple[str, ...],
    executor: str,
    image: str,
    warehouse: str | None,
    state_dir: Path,
    max_active_runs: int | None,
    max_flow_depth: int,
    liveness: str | None,
    metrics_address: str | None,
    peering: str | None,
    priority: int | None,
    peering_lifetime: int,
    verbose: bool,
    clock_offset: float,
    kubeconfig: str | None,
) -> None:
    """Run the operator (kopf): Runs become Tasks and Jobs, in dependency order."""
    import kopf

    from kascade.operator import handlers

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not verbose:  # kopf reports every handler call at INFO; ours say what matters
        logging.getLogger("kopf").setLevel(logging.WARNING)
    if kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(kubeconfig).absolute())
    handlers.KUBECONFIG = os.environ.get("KUBECONFIG")
    handlers.CONFIG = OperatorConfig(
        namespaces=namespaces,
        executor=executor,
        image=image,
        warehouse=warehouse or default_operator_warehouse(executor, state_dir),
        state_dir=state_dir.absolute(),
        max_active_runs=max_active_runs,
        max_flow_depth=max_flow_depth,
        clock_offset_seconds=clock_offset,
        metrics_address=metrics_address,
        peering=peering,
        peering_lifetime_seconds=peering_lifetime,
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    if peering:
        handlers.register_peering_guard(peering, clusterwide=not namespaces)
    kopf.run(
        standalone=not peering,
        peering_name=peering,
        priority=(priority if priority is not None else start_priority()) if peering else None,
        namespaces=list(namespaces),
        clusterwide=not namespaces,
        liveness_endpoint=liveness,
    )


def start_priority() -> int:
    """A peering priority that falls with the start time (microseconds): of two replicas,
    the one started first has the higher priority and keeps working."""
    return PRIORITY_CEILING - int(time.time() * 1_000_000)


def _metrics_address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_address(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


@click.group()
def project() -> None:
    """Projects stored in the cluster."""


@project.command("push")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="ConfigMap name (the Flow's spec.project.configMap).")
@click.option(
    "--warehouse",
    default=POD_WAREHOUSE,
    show_default=True,
    help="The warehouse URL the Flow's task pods use: dbt's parse state is made for it.",
)
@click.option(
    "--dbt-parse/--no-dbt-parse",
    default=True,
    help="Run `dbt parse` and store its state with the project, so tasks skip the parse.",
)
@namespace_option
@kubeconfig_option
def push(
    directory: Path,
    name: str,
    warehouse: str,
    dbt_parse: bool,
    namespace: str | None,
    kubeconfig: str | None,
) -> None:
    """Store a project directory in a ConfigMap, for spec.project.configMap."""
    if not directory.is_dir():
        raise ClusterError(f"project directory {directory} does not exist")
    if dbt_parse:
        packed, parsed = pack_with_parse_state(directory, warehouse)
    else:
        packed, parsed = pack(directory), "no dbt parse state (--no-dbt-parse)"
    cluster = connect(kubeconfig, namespace)
    body: Any = project_config_map(name, packed)
    try:
        cluster.core.replace_namespaced_config_map(name, cluster.namespace, body)
    except ApiException as err:
        if err.status != 404:
            raise api_error(err) from err
        try:
            cluster.core.create_namespaced_config_map(cluster.namespace, body)
        except ApiException as created:
            raise api_error(created) from created
    click.echo(
        f"configmap/{name} in {cluster.namespace}: {len(project_files(directory))} files, "
        f"{len(packed)} bytes, digest {digest(packed)}; {parsed}"
    )


@click.command()
@click.argument("flow")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter value.")
@click.option("--wait", is_flag=True, help="Follow the run to its end; exit 0 iff SUCCEEDED.")
@namespace_option
@kubeconfig_option
def trigger(
    flow: str, params: tuple[str, ...], wait: bool, namespace: str | None, kubeconfig: str | None
) -> None:
    """Start a MANUAL run of a Flow; prints the Run's name."""
    cluster = connect(kubeconfig, namespace)
    cluster.get("flows", flow)
    body = {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {"generateName": f"{dns_name(flow, 40)}-manual-"},
        "spec": {
            "flowRef": {"name": flow},
            "type": "MANUAL",
            "parameters": parse_assignments(params),
        },
    }
    start_run(cluster, body, wait)


def start_run(cluster: Cluster, body: dict[str, Any], wait: bool) -> None:
    """Create a Run and print its name; with `wait`, follow it and exit 0 iff it
    SUCCEEDED."""
    try:
        created: Any = cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, "runs", body
        )
    except ApiException as err:
        raise api_error(err) from err
    name = created["metadata"]["name"]
    click.echo(name)
    if wait:
        final = follow(cluster, name)
        raise SystemExit(0 if final == RunPhase.SUCCEEDED.value else 1)


def follow(cluster: Cluster, name: str) -> str | None:
    """Print each change of a run and its tasks until it ends; returns the final phase."""
    seen: dict[str, str] = {}
    started = time.monotonic()
    while True:
        run = cluster.get("runs", name)
        status = run.get("status") or {}
        for task in cluster.run_tasks(name):
            task_id, phase = task["spec"]["id"], (task.get("status") or {}).get("phase")
            if phase and seen.get(task_id) != phase:
                seen[task_id] = phase
                message = (task.get("status") or {}).get("message") or ""
                click.echo(
                    f"{time.monotonic() - started:6.1f}s task {task_id} {phase}  {message}",
                    err=True,
                )
        phase = status.get("phase")
        if phase and seen.get("") != phase:
            seen[""] = phase
            click.echo(
                f"{time.monotonic() - started:6.1f}s run {name} {phase}  "
                f"{status.get('message') or ''}",
                err=True,
            )
        if phase and run_is_terminal(RunPhase(phase)):
            return str(phase)
        time.sleep(FOLLOW_INTERVAL_SECONDS)


@click.command()
@click.argument("run")
@click.option("-o", "--output", type=click.Choice(["json"]), help="The Run and its Tasks as JSON.")
@namespace_option
@kubeconfig_option
def status(run: str, output: str | None, namespace: str | None, kubeconfig: str | None) -> None:
    """A run and its tasks, with phases and attempts."""
    cluster = connect(kubeconfig, namespace)
    body = cluster.get("runs", run)
    tasks = cluster.run_tasks(run)
    if output == "json":
        click.echo(json.dumps({"run": body, "tasks": tasks}, indent=2, default=str))
        return
    state = body.get("status") or {}
    phase = state.get("phase") or "NEW"
    tree = Tree(
        f"run [bold]{run}[/] [{PHASE_STYLE.get(phase, 'bold')}]{phase}[/]  "
        f"{state.get('progress') or ''}  {state.get('message') or ''}"
    )
    for task in tasks:
        task_status = task.get("status") or {}
        task_phase = task_status.get("phase") or "PENDING"
        hook = task["spec"].get("hook")
        branch = tree.add(
            f"{task['spec']['id']}{f' ({hook})' if hook else ''} [dim]{task['spec']['type']}[/] "
            f"[{PHASE_STYLE.get(task_phase, '')}]{task_phase}[/]"
        )
        for attempt in task_status.get("attempts") or []:
            code = attempt.get("exitCode")
            branch.add(
                f"attempt {attempt['number']} {attempt.get('jobName', '')} "
                f"{attempt.get('reason') or 'running'}"
                + (f" exit {code}" if code is not None else "")
                + (f": {attempt['message']}" if attempt.get("message") else "")
            )
    console_for().print(tree)


def cluster_rerun(
    run: str,
    kind: RunType,
    task: str | None,
    downstream: bool,
    wait: bool,
    namespace: str | None,
    kubeconfig: str | None,
) -> None:
    """Create a rerun Run of a finished run on the cluster; print its name."""
    cluster = connect(kubeconfig, namespace)
    original = cluster.get("runs", run)
    phase = (original.get("status") or {}).get("phase")
    check_rerunnable(run, RunPhase(phase) if phase else None)
    if kind == RunType.RERUN_TASK:
        check_rerun_task(run, task, [t["spec"]["id"] for t in cluster.run_tasks(run)])
    body = rerun_body(original, "", kind, task, downstream)
    body["metadata"] = {"generateName": f"{dns_name(run, 40)}-rerun-"}
    start_run(cluster, body, wait)


@click.command()
@click.argument("run")
@namespace_option
@kubeconfig_option
def abort(run: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Abort a run: running Jobs are deleted, the run ends ABORTED."""
    cluster = connect(kubeconfig, namespace)
    cluster.get("runs", run)
    try:
        cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, "runs", run, {"spec": {"abort": True}}
        )
    except ApiException as err:
        raise api_error(err) from err
    click.echo(f"run {run}: abort requested")


@click.command()
@click.argument("run")
@click.argument("task", required=False)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".kascade/operator"),
    show_default=True,
    help="The operator's state dir (logs of the local executor).",
)
@namespace_option
@kubeconfig_option
def logs(
    run: str, task: str | None, state_dir: Path, namespace: str | None, kubeconfig: str | None
) -> None:
    """Logs of a run's tasks (the last attempt of each): pod logs where the cluster has
    them, else the local executor's log files."""
    cluster = connect(kubeconfig, namespace)
    cluster.get("runs", run)
    tasks = [t for t in cluster.run_tasks(run) if task is None or t["spec"]["id"] == task]
    if task is not None and not tasks:
        raise ClusterError(f"run `{run}` has no task `{task}`")
    for item in tasks:
        attempts = (item.get("status") or {}).get("attempts") or []
        if not attempts:
            continue
        last = attempts[-1]
        click.echo(f"==> {item['spec']['id']} attempt {last['number']} <==")
        click.echo(_attempt_log(cluster, state_dir, run, item["spec"]["id"], last), nl=False)


def _attempt_log(
    cluster: Cluster, state_dir: Path, run: str, task_id: str, attempt: dict[str, Any]
) -> str:
    job = attempt.get("jobName")
    if job:
        try:
            pods = cluster.core.list_namespaced_pod(
                cluster.namespace, label_selector=f"{JOB_NAME}={job}"
            )
            for pod in pods.items:
                if pod.metadata is None or pod.metadata.name is None:
                    continue
                text = cluster.core.read_namespaced_pod_log(pod.metadata.name, cluster.namespace)
                if text:
                    return str(text)
        except ApiException:
            pass
    local = local_attempt_log(state_dir, cluster.namespace, run, task_id, int(attempt["number"]))
    if local.is_file():
        return str(local.read_text(encoding="utf-8", errors="replace"))
    return "(no log: the pod is gone and no local log exists)\n"


@click.group()
def task() -> None:
    """What runs inside a task's container."""


@task.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument(
    "kind", type=click.Choice(["model", "seed", "snapshot", "test", "script", "connector"])
)
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def task_exec(kind: str, name: str, args: tuple[str, ...]) -> None:
    """Run one task (the runtime image's entrypoint); exits with the task's code."""
    from kascade.runtime.__main__ import main as runtime_main

    raise SystemExit(runtime_main([kind, name, *args]))


COMMANDS = (operator, project, trigger, status, abort, logs, task)

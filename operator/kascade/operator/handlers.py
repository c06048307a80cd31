"""The kopf handlers: a few lines each. They keep the indexes, wake the right run, and
start or stop working on runs; every decision happens in the engine (through the host
loop each run is driven by)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from kascade.engine.statemachine import run_is_terminal
from kascade.operator.config import OperatorConfig
from kascade.operator.context import FlowFacts, Operations, facts_of_run
from kascade.operator.executors import ChildRunExecutor, JobsExecutor, LocalExecutor
from kascade.operator.facts import job_facts, pod_facts
from kascade.operator.flows import FlowStatusWriter
from kascade.operator.kube import Kube, api_client
from kascade.operator.labels import GROUP, MANAGED_BY, MANAGER, RUN, VERSION
from kascade.operator.metrics import METRICS, RunSample, TaskSample, in_loop
from kascade.operator.projects import ProjectCache
from kascade.operator.reruns import RERUN_ANNOTATION, rerun_from_annotation
from kascade.operator.scheduler import Scheduler

log = logging.getLogger("kascade.operator")
CONFIG = OperatorConfig()
KUBECONFIG: str | None = None
OURS = {MANAGED_BY: MANAGER}


class _NoDiffBase(kopf.DiffBaseStorage):
    """kascade has no change-detecting handlers (only event handlers and indexes), so it
    keeps no diff base; kopf's default deep-copies every object on every event for it."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class _Indexes:
    """The kopf indexes, as handed to handlers (live mappings, bound on first use)."""

    def __init__(self) -> None:
        self.jobs: Any = {}
        self.pods: Any = {}
        self.runs: Any = {}
        self.flows: Any = {}

    def bind(self, kwargs: dict[str, Any]) -> None:
        self.jobs = kwargs.get("jobs_by_name", self.jobs)
        self.pods = kwargs.get("pods_by_job", self.pods)
        self.runs = kwargs.get("runs_by_flow", self.runs)
        self.flows = kwargs.get("flows_by_name", self.flows)

    def values(self, index: Any, key: tuple[str, str]) -> list[Any]:
        try:
            return list(index[key])
        except KeyError:
            return []


INDEXES = _Indexes()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    settings.persistence.diffbase_storage = _NoDiffBase()
    settings.peering.lifetime = CONFIG.peering_lifetime_seconds
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    kube = Kube(api_client(KUBECONFIG), CONFIG.max_api_concurrency, METRICS)
    projects = ProjectCache(kube, CONFIG.state_dir)
    memo.flows = FlowStatusWriter(kube, projects, lambda key: INDEXES.values(INDEXES.runs, key))

    executor: Any
    if CONFIG.executor == "local":
        executor = LocalExecutor(CONFIG.state_dir, lambda ns, run: memo.ops.wake(ns, run), projects)
    else:
        executor = JobsExecutor(
            kube,
            CONFIG.image,
            lambda key: INDEXES.values(INDEXES.jobs, key),
            lambda key: INDEXES.values(INDEXES.pods, key),
        )
    ops = Operations(
        config=CONFIG,
        kube=kube,
        projects=projects,
        executor=executor,
        children=ChildRunExecutor(kube, lambda key: INDEXES.values(INDEXES.runs, key)),
        runs=lambda key: INDEXES.values(INDEXES.runs, key),
        flow_facts=_flow_facts,
    )
    memo.ops = ops
    memo.scheduler = Scheduler(ops, memo.flows)
    loop = asyncio.get_running_loop()
    METRICS.state.runs = in_loop(loop, _run_samples)
    METRICS.state.tasks = in_loop(loop, lambda: _task_samples(ops))
    if CONFIG.metrics_address:
        METRICS.serve(CONFIG.metrics_address)
    log.info(
        "event=started executor=%s namespaces=%s metrics=%s peering=%s",
        CONFIG.executor,
        ",".join(CONFIG.namespaces) or "all",
        CONFIG.metrics_address or "off",
        CONFIG.peering or "standalone",
    )


def _run_samples() -> list[RunSample]:
    return [
        RunSample(facts.namespace, facts.flow, facts.phase, facts.phase_since)
        for _, stored in list(INDEXES.runs.items())
        for facts in stored
    ]


def _task_samples(ops: Operations) -> list[TaskSample]:
    samples = []
    for run in ops.workers.values():
        state = run.state
        if state is not None and not run_is_terminal(state.phase):
            phases = tuple(task.phase for task in state.tasks.values())
            samples.append(TaskSample(run.namespace, run.flow, phases))
    return samples


async def active_while_leading(stopped: kopf.DaemonStopped, memo: Any, **_: Any) -> None:
    """With peering, kopf pauses this operator while a peer of higher priority works, and
    stops every daemon when it does: this daemon (on the peering object) lives exactly as
    long as this operator is the working one. On pause, every run and schedule
    stops; kopf's re-listing after the pause starts them again."""
    log.info("event=leading peering=%s", CONFIG.peering)
    await stopped.wait()
    if hasattr(memo, "ops"):
        memo.ops.stop_all()
        memo.scheduler.stop_all()
    log.info("event=standing-by peering=%s", CONFIG.peering)


def register_peering_guard(name: str, clusterwide: bool) -> None:
    """Watch our own peering object with a daemon (see `active_while_leading`)."""
    plural = "clusterkopfpeerings" if clusterwide else "kopfpeerings"

    def ours(**kwargs: Any) -> bool:
        return bool(kwargs.get("name") == name)

    kopf.daemon("kopf.dev", "v1", plural, when=ours, cancellation_timeout=5.0)(active_while_leading)


def _flow_facts(namespace: str, flow: str) -> FlowFacts | None:
    facts = INDEXES.values(INDEXES.flows, (namespace, flow))
    return facts[0] if facts else None


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG (read now, not at import)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    ops: Operations = memo.ops
    ops.stop_all()
    memo.scheduler.stop_all()
    if isinstance(ops.executor, LocalExecutor):
        await ops.executor.close()


@kopf.index("batch", "v1", "jobs", labels=OURS)
async def jobs_by_name(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> object:
    return {(namespace, name): job_facts(body)}


@kopf.index("", "v1", "pods", labels=OURS)
async def pods_by_job(namespace: str | None, body: kopf.Body, **_: Any) -> object:
    facts = pod_facts(body)
    return {(namespace, facts.job): facts} if facts is not None else None


@kopf.index(GROUP, VERSION, "runs")
async def runs_by_flow(namespace: str | None, body: kopf.Body, **_: Any) -> object:
    facts = facts_of_run(body)
    return {(namespace, facts.flow): facts}


@kopf.index(GROUP, VERSION, "flows")
async def flows_by_name(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> object:
    project = spec.get("project") or {}
    schedule = spec.get("schedule") or {}
    return {
        (namespace, name): FlowFacts(
            spec.get("maxActiveRuns"), project.get("configMap"), schedule.get("concurrencyPolicy")
        )
    }


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def job_event(
    namespace: str | None, labels: Mapping[str, str], memo: Any, **kwargs: Any
) -> None:
    INDEXES.bind(kwargs)
    if namespace:
        memo.ops.wake_by_label(namespace, labels.get(RUN, ""))


@kopf.on.event(GROUP, VERSION, "runs")
async def run_event(
    type: str, namespace: str | None, name: str, body: kopf.Body, memo: Any, **kwargs: Any
) -> None:
    INDEXES.bind(kwargs)
    if not namespace:
        return
    ops: Operations = memo.ops
    facts = facts_of_run(body)
    memo.flows.touch(namespace, facts.flow)
    if facts.parent:
        ops.wake(namespace, facts.parent)
    if type == "DELETED":
        ops.stop_worker(namespace, name)
        return
    if not run_is_terminal(facts.phase):
        ops.ensure_worker(namespace, name, facts.phase)
    if RERUN_ANNOTATION in (body.get("metadata", {}).get("annotations") or {}):
        try:
            await rerun_from_annotation(ops, dict(body))
        except Exception as err:  # an API hiccup: the annotation stays, the next event retries
            log.warning("run=%s/%s event=rerun-request-failed error=%s", namespace, name, err)


@kopf.on.event(GROUP, VERSION, "flows")
async def flow_event(
    type: str, namespace: str | None, name: str, body: kopf.Body, memo: Any, **kwargs: Any
) -> None:
    INDEXES.bind(kwargs)
    if not namespace:
        return
    memo.scheduler.flow_changed(namespace, name, deleted=type == "DELETED", body=dict(body))
    if type != "DELETED":
        memo.flows.touch(namespace, name)


@kopf.on.event("", "v1", "configmaps", labels=OURS)
async def project_event(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    INDEXES.bind(kwargs)
    for (flow_namespace, flow), facts_list in list(INDEXES.flows.items()):
        if flow_namespace == namespace and any(f.config_map == name for f in facts_list):
            memo.flows.touch(namespace, flow)

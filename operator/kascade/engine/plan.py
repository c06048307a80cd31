"""Expansion: a Flow and its project become a plan, the tasks of a run in dependency order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from kascade.api import Flow, FlowSpec, HookNode, Node, TaskSettings, TaskType, TriggerRule
from kascade.engine.errors import PlanError
from kascade.engine.graph import Graph, format_cycle
from kascade.engine.project import SCRIPT_ENTRY, SCRIPTS_DIR, Project
from kascade.engine.resources import Kind, Resource
from kascade.engine.resourcetasks import (
    Selections,
    TestGroup,
    resource_dependencies,
    select_nodes,
)

DEFAULT_RETRIES = 0
DEFAULT_RETRY_DELAY_SECONDS = 30


@dataclass(frozen=True)
class PlannedTask:
    """One task of a plan and the settings the decision function needs."""

    id: str
    node: str
    type: TaskType
    target: str
    depends_on: tuple[str, ...] = ()
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS
    retries: int = DEFAULT_RETRIES
    retry_delay_seconds: int = DEFAULT_RETRY_DELAY_SECONDS
    timeout_seconds: int | None = None
    hook: str | None = None
    path: str | None = None
    select: str | None = None
    """For a dbt task, the dbt selection that picks exactly its resources."""

    def to_json(self) -> dict[str, Any]:
        """The task as `kascade plan -o json` prints it."""
        return {
            "id": self.id,
            "node": self.node,
            "type": self.type.value,
            "target": self.target,
            "dependsOn": list(self.depends_on),
        }


@dataclass(frozen=True)
class Plan:
    """The tasks of a Flow in dependency order, its hooks, and warnings worth showing."""

    flow: str
    tasks: tuple[PlannedTask, ...]
    hooks: tuple[PlannedTask, ...] = ()
    warnings: tuple[str, ...] = ()

    @cached_property
    def by_id(self) -> Mapping[str, PlannedTask]:
        """Every task and hook by id."""
        return {task.id: task for task in (*self.tasks, *self.hooks)}

    def hooks_for(self, event: str) -> tuple[PlannedTask, ...]:
        """The hooks of one event: onSuccess, onFailure or onFinish."""
        return tuple(hook for hook in self.hooks if hook.hook == event)

    def to_json(self) -> dict[str, Any]:
        """What `kascade plan -o json` prints: {"flow", "tasks"} (and "hooks" when set)."""
        out: dict[str, Any] = {"flow": self.flow, "tasks": [t.to_json() for t in self.tasks]}
        if self.hooks:
            out["hooks"] = [{**hook.to_json(), "event": hook.hook} for hook in self.hooks]
        return out


def node_of(spec: FlowSpec, task: PlannedTask) -> Node | HookNode:
    """The Flow node (or hook) a planned task comes from."""
    if task.hook is not None and spec.hooks is not None:
        for hooks in spec.hooks.by_event().values():
            for hook in hooks:
                if hook.name == task.node:
                    return hook
    return next(node for node in spec.nodes if node.name == task.node)


@dataclass
class _Expansion:
    """Working state of one expansion: the tasks found so far and every problem."""

    project: Project
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    node_tasks: dict[str, list[PlannedTask]] = field(default_factory=dict)
    owner: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, node: str, task: PlannedTask) -> None:
        if task.id in self.owner:
            other_node, other_type = self.owner[task.id]
            self.problems.append(
                f"task id `{task.id}` is produced twice: by node `{other_node}` ({other_type}) "
                f"and by node `{node}` ({task.type.value}); rename one of them"
            )
            return
        self.owner[task.id] = (node, task.type.value)
        self.node_tasks.setdefault(node, []).append(task)


def build_plan(flow: Flow, project: Project) -> Plan:
    """Expand a Flow over its project (read with the Flow's vars); PlanError lists every
    problem that prevents a plan."""
    project = project.with_vars(flow.spec.vars)
    work = _Expansion(project=project, problems=list(project.problems))
    model_cycles = project.graph.cycles()
    work.problems += [
        f"cycle in model refs: {format_cycle([_short(uid) for uid in c])}" for c in model_cycles
    ]
    nodes = flow.spec.nodes
    node_problems = _check_node_dependencies(nodes)
    work.problems += node_problems
    selections = select_nodes(project, nodes, work.problems)
    for node in nodes:
        _expand_node(
            work,
            flow,
            node,
            selections.resources.get(node.name, []),
            selections.tests.get(node.name, []),
        )
    hooks: list[PlannedTask] = []
    for event, hook_nodes in (flow.spec.hooks.by_event() if flow.spec.hooks else {}).items():
        for hook in hook_nodes:
            task = _hook_task(work, flow, hook, event)
            hooks.append(task)
            work.add(hook.name, task)
    if model_cycles or node_problems:
        raise PlanError(work.problems, work.warnings)
    tasks = _order(work, nodes, selections)
    if work.problems:
        raise PlanError(work.problems, work.warnings)
    if not tasks:
        work.warnings.append(f"flow `{flow.metadata.name}` has no tasks")
    work.warnings += [
        f"task `{task.id}` starts flow `{task.target}`, this flow itself: every run fails "
        "there (flow recursion)"
        for task in (*tasks, *hooks)
        if task.type == TaskType.FLOW and task.target == flow.metadata.name
    ]
    return Plan(
        flow=flow.metadata.name or "",
        tasks=tuple(tasks),
        hooks=tuple(hooks),
        warnings=tuple(work.warnings),
    )


def _check_node_dependencies(nodes: Sequence[Node]) -> list[str]:
    names = [node.name for node in nodes]
    known = set(names)
    problems: list[str] = []
    for node in nodes:
        for upstream in node.depends_on or []:
            if upstream == node.name:
                problems.append(f"node `{node.name}` dependsOn itself")
            elif upstream not in known:
                problems.append(
                    f"node `{node.name}` dependsOn unknown node `{upstream}` "
                    f"(nodes: {', '.join(names)})"
                )
    graph = Graph(
        {node.name: [d for d in node.depends_on or [] if d != node.name] for node in nodes}
    )
    problems += [f"cycle in node dependsOn: {format_cycle(c)}" for c in graph.cycles()]
    return problems


def _short(uid: str) -> str:
    """The name part of a unique id: model.shop.stg_orders -> stg_orders."""
    return uid.split(".", 2)[-1]


def _settings(flow: Flow, node: TaskSettings) -> dict[str, Any]:
    defaults = flow.spec.defaults or TaskSettings()

    def pick(name: str, fallback: Any) -> Any:
        own = getattr(node, name)
        if own is not None:
            return own
        inherited = getattr(defaults, name)
        return fallback if inherited is None else inherited

    return {
        "retries": pick("retries", DEFAULT_RETRIES),
        "retry_delay_seconds": pick("retry_delay_seconds", DEFAULT_RETRY_DELAY_SECONDS),
        "timeout_seconds": pick("timeout_seconds", None),
    }


_TASK_TYPES = {
    Kind.MODEL: TaskType.MODEL,
    Kind.SEED: TaskType.SEED,
    Kind.SNAPSHOT: TaskType.SNAPSHOT,
}


def _expand_node(
    work: _Expansion, flow: Flow, node: Node, uids: list[str], tests: list[TestGroup]
) -> None:
    common = {"node": node.name, "trigger": node.trigger, **_settings(flow, node)}
    work.node_tasks.setdefault(node.name, [])
    resources = work.project.resources
    if node.transformation is not None:
        for uid in uids:
            resource = resources[uid]
            work.add(
                node.name,
                PlannedTask(
                    id=resource.name,
                    type=_TASK_TYPES[resource.kind],
                    target=resource.name,
                    path=resource.path,
                    select=_dbt_selection(resource),
                    **common,
                ),
            )
        for group in tests:
            names = sorted(resources[uid].name for uid in group.tests)
            work.add(
                node.name,
                PlannedTask(
                    id=group.id,
                    type=TaskType.TEST,
                    target=group.target,
                    path=resources[group.tests[0]].path,
                    select=" ".join(names),
                    **common,
                ),
            )
    elif node.connection is not None:
        for connector in node.connection.connectors:
            work.add(
                node.name,
                PlannedTask(id=connector, type=TaskType.CONNECTOR, target=connector, **common),
            )
    elif node.script is not None:
        _check_script(work, node.name, node.script.name)
        work.add(
            node.name,
            PlannedTask(id=node.name, type=TaskType.SCRIPT, target=node.script.name, **common),
        )
    elif node.flow is not None:
        work.add(
            node.name,
            PlannedTask(id=node.name, type=TaskType.FLOW, target=node.flow.name, **common),
        )


def _dbt_selection(resource: Resource) -> str:
    """The dbt selection of exactly one model, seed or snapshot: its file (a snapshot block
    by name, a file may hold several); a package's resource by package and fqn, since a
    path there is relative to the package."""
    if resource.in_package:
        return f"package:{resource.package},fqn:{'.'.join(resource.fqn)}"
    if resource.kind == Kind.SNAPSHOT:
        return resource.name
    return f"path:{resource.path}"


def _hook_task(work: _Expansion, flow: Flow, hook: HookNode, event: str) -> PlannedTask:
    if hook.script is not None:
        _check_script(work, hook.name, hook.script.name)
        kind, target = TaskType.SCRIPT, hook.script.name
    else:
        assert hook.flow is not None
        kind, target = TaskType.FLOW, hook.flow.name
    return PlannedTask(
        id=hook.name,
        node=hook.name,
        type=kind,
        target=target,
        hook=event,
        **_settings(flow, hook),
    )


def _check_script(work: _Expansion, node: str, script: str) -> None:
    if script not in work.project.scripts:
        work.problems.append(
            f"node `{node}`: script `{script}` not found "
            f"(expected {SCRIPTS_DIR}/{script}/{SCRIPT_ENTRY} in the project)"
        )


def _order(work: _Expansion, nodes: Sequence[Node], selections: Selections) -> list[PlannedTask]:
    """Attach dependencies (the project graph, transitive through unselected resources;
    tests after what they test and before its descendants; node dependsOn) and return the
    tasks in a topological order."""
    resource_deps = resource_dependencies(work.project, selections)
    node_upstream = _node_upstream_tasks(nodes, work.node_tasks)
    parents: dict[str, list[str]] = {}
    tasks: dict[str, PlannedTask] = {}
    for node in nodes:
        for task in work.node_tasks.get(node.name, []):
            # resource_deps is keyed by resource and test task ids, which the plan checked
            # no other task repeats
            deps = [*resource_deps.get(task.id, ()), *node_upstream[node.name]]
            parents[task.id] = list(dict.fromkeys(deps))
            tasks[task.id] = task
    graph = Graph(parents)
    cycles = graph.cycles()
    if cycles:
        work.problems += [f"cycle in task dependencies: {format_cycle(c)}" for c in cycles]
        return []
    order = graph.topological_order()
    position = {task_id: index for index, task_id in enumerate(order)}
    return [
        replace(
            tasks[task_id],
            depends_on=tuple(sorted(graph.parents(task_id), key=position.__getitem__)),
        )
        for task_id in order
    ]


def _node_upstream_tasks(
    nodes: Sequence[Node], node_tasks: Mapping[str, list[PlannedTask]]
) -> dict[str, list[str]]:
    """Task ids every task of each node waits for; a node with no tasks passes its own
    dependsOn through, so ordering between its neighbours is kept."""
    by_name = {node.name: node for node in nodes}
    memo: dict[str, list[str]] = {}

    def upstream_of(name: str) -> list[str]:
        if name not in memo:
            found: dict[str, None] = {}
            for upstream in by_name[name].depends_on or []:
                own = node_tasks.get(upstream, [])
                found.update(
                    dict.fromkeys(t.id for t in own)
                    if own
                    else dict.fromkeys(upstream_of(upstream))
                )
            memo[name] = list(found)
        return memo[name]

    return {node.name: upstream_of(node.name) for node in nodes}

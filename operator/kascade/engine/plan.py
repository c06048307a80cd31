"""Expansion: a Flow and its project become a plan, the tasks of a run in dependency order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from kascade.api import Flow, FlowSpec, HookNode, Node, TaskSettings, TaskType, TriggerRule
from kascade.engine.errors import PlanError, SelectorError
from kascade.engine.graph import Graph, format_cycle
from kascade.engine.project import SCRIPT_ENTRY, SCRIPTS_DIR, Project
from kascade.engine.selectors import parse_selection, select

DEFAULT_RETRIES = 0
DEFAULT_RETRY_DELAY_SECONDS = 30
_LISTED = 10


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
    """Expand a Flow over its project; PlanError lists every problem that prevents a plan."""
    work = _Expansion(project=project, problems=list(project.problems))
    model_cycles = project.graph.cycles()
    work.problems += [f"cycle in model refs: {format_cycle(c)}" for c in model_cycles]
    nodes = flow.spec.nodes
    node_problems = _check_node_dependencies(nodes)
    work.problems += node_problems
    selections = _select_models(work, nodes)
    _check_overlaps(work, nodes, selections)
    for node in nodes:
        _expand_node(work, flow, node, selections.get(node.name, []))
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


def _select_models(work: _Expansion, nodes: Sequence[Node]) -> dict[str, list[str]]:
    selections: dict[str, list[str]] = {}
    for node in nodes:
        if node.transformation is None:
            continue
        include, exclude = node.transformation.include, node.transformation.exclude
        broken = False
        for label, entries in (("include", include or []), ("exclude", exclude or [])):
            for index, entry in enumerate(entries):
                try:
                    parse_selection([entry])
                except SelectorError as err:
                    work.problems.append(f"node `{node.name}`: {label}[{index}]: {err}")
                    broken = True
        if broken:
            continue
        chosen = select(work.project, include, exclude)
        if not chosen and not node.transformation.allow_empty:
            work.problems.append(
                f"node `{node.name}` selects no models "
                f"(include: {_show(include) if include is not None else 'all'}"
                f"{'; exclude: ' + _show(exclude) if exclude else ''}); "
                "set transformation.allowEmpty: true if that is intended"
            )
        selections[node.name] = sorted(chosen, key=lambda name: work.project.models[name].path)
    return selections


def _show(entries: Sequence[str] | None) -> str:
    return ", ".join(entries or [])


def _check_overlaps(
    work: _Expansion, nodes: Sequence[Node], selections: dict[str, list[str]]
) -> None:
    """Report models selected by two nodes, and keep each only in the first node."""
    chosen_by: dict[str, str] = {}
    shared: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        own: list[str] = []
        for model in selections.get(node.name, []):
            if model in chosen_by:
                shared.setdefault((chosen_by[model], node.name), []).append(model)
            else:
                chosen_by[model] = node.name
                own.append(model)
        if node.name in selections:
            selections[node.name] = own
    for (first, second), models in shared.items():
        listed = ", ".join(f"`{m}`" for m in models[:_LISTED])
        more = f" and {len(models) - _LISTED} more" if len(models) > _LISTED else ""
        noun = "model" if len(models) == 1 else "models"
        work.problems.append(
            f"{noun} {listed}{more} selected by two nodes: `{first}` and `{second}`; "
            "a model may belong to one node only"
        )


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


def _expand_node(work: _Expansion, flow: Flow, node: Node, models: list[str]) -> None:
    common = {"node": node.name, "trigger": node.trigger, **_settings(flow, node)}
    work.node_tasks.setdefault(node.name, [])
    if node.transformation is not None:
        for name in models:
            path = work.project.models[name].path
            work.add(
                node.name,
                PlannedTask(id=name, type=TaskType.MODEL, target=name, path=path, **common),
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


def _order(
    work: _Expansion, nodes: Sequence[Node], selections: Mapping[str, list[str]]
) -> list[PlannedTask]:
    """Attach dependencies (model refs, transitive through unselected models, and node
    dependsOn) and return the tasks in a topological order."""
    selected = {model for models in selections.values() for model in models}
    model_parents = _nearest_selected_parents(work.project.graph, selected)
    node_upstream = _node_upstream_tasks(nodes, work.node_tasks)
    parents: dict[str, list[str]] = {}
    tasks: dict[str, PlannedTask] = {}
    for node in nodes:
        for task in work.node_tasks.get(node.name, []):
            # model_parents is keyed by selected model names, which no other task id repeats
            deps = [*model_parents.get(task.id, ()), *node_upstream[node.name]]
            parents[task.id] = deps
            tasks[task.id] = task
    graph = Graph(parents)
    cycles = graph.cycles()
    if cycles:
        work.problems += [f"cycle in task dependencies: {format_cycle(c)}" for c in cycles]
        return []
    order = graph.topological_order()
    position = {task_id: index for index, task_id in enumerate(order)}
    return [
        _with_dependencies(tasks[task_id], sorted(graph.parents(task_id), key=position.__getitem__))
        for task_id in order
    ]


def _with_dependencies(task: PlannedTask, depends_on: list[str]) -> PlannedTask:
    return replace(task, depends_on=tuple(depends_on))


def _nearest_selected_parents(graph: Graph, selected: set[str]) -> dict[str, tuple[str, ...]]:
    """For each selected model, the selected models it depends on, looking through
    unselected models: if c refs b refs a and only a and c are selected, c depends on a."""
    through: dict[str, frozenset[str]] = {}
    for model in graph.topological_order():
        if model in selected:
            continue
        reach: set[str] = set()
        for parent in graph.parents(model):
            if parent in selected:
                reach.add(parent)
            else:
                reach |= through[parent]
        through[model] = frozenset(reach)
    result: dict[str, tuple[str, ...]] = {}
    for model in selected:
        deps: dict[str, None] = {}
        for parent in graph.parents(model):
            if parent in selected:
                deps[parent] = None
            else:
                deps.update(dict.fromkeys(sorted(through[parent])))
        result[model] = tuple(deps)
    return result


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

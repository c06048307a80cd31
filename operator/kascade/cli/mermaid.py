"""A plan drawn as a Mermaid flowchart: one subgraph per node, one box per task."""

from __future__ import annotations

from collections import defaultdict

from kascade.engine.plan import Plan, PlannedTask


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def render_mermaid(plan: Plan) -> str:
    """Mermaid source. When every task of a node waits for every task of another node
    (a dependsOn), one edge joins the two subgraphs instead of all the task pairs."""
    lines = ["flowchart LR"]
    task_ids = {task.id: f"t{index}" for index, task in enumerate((*plan.tasks, *plan.hooks))}
    nodes: dict[str, list[PlannedTask]] = defaultdict(list)
    for task in plan.tasks:
        nodes[task.node].append(task)
    node_ids = {name: f"n{index}" for index, name in enumerate(nodes)}
    for name, tasks in nodes.items():
        kind = tasks[0].type.value
        lines.append(f'  subgraph {node_ids[name]}["{_label(name)} ({kind})"]')
        lines += [f'    {task_ids[t.id]}["{_label(t.target)}"]' for t in tasks]
        lines.append("  end")
    owner = {task.id: task.node for task in plan.tasks}
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for task in plan.tasks:
        for dep in task.depends_on:
            pairs[(owner[dep], task.node)].append((dep, task.id))
    for (upstream, downstream), edges in pairs.items():
        complete = len(edges) == len(nodes[upstream]) * len(nodes[downstream])
        if upstream != downstream and complete and len(edges) > 1:
            lines.append(f"  {node_ids[upstream]} --> {node_ids[downstream]}")
        else:
            lines += [f"  {task_ids[dep]} --> {task_ids[task]}" for dep, task in edges]
    for event in ("onSuccess", "onFailure", "onFinish"):
        hooks = plan.hooks_for(event)
        if hooks:
            lines.append(f'  subgraph hooks_{event}["hooks: {event}"]')
            lines += [f'    {task_ids[h.id]}(["{_label(h.id)}"])' for h in hooks]
            lines.append("  end")
    return "\n".join(lines) + "\n"

"""Reading what a command works on: a Flow manifest, its project, and the plan of both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kascade.api import Flow
from kascade.engine.manifests import load_flow
from kascade.engine.plan import Plan, build_plan
from kascade.engine.project import Project, load_project


@dataclass(frozen=True)
class Planned:
    """A flow, its project and its plan."""

    flow: Flow
    project: Project
    plan: Plan


def project_dir(flow_path: Path, project: Path | None) -> Path:
    """The project directory: --project, or the folder holding the flow manifest."""
    return project if project is not None else flow_path.resolve().parent


def plan_flow(flow_path: Path, project: Path | None) -> Planned:
    """Load the flow and its project and expand them; KascadeError on any problem."""
    flow = load_flow(flow_path)
    loaded = load_project(project_dir(flow_path, project))
    return Planned(flow=flow, project=loaded, plan=build_plan(flow, loaded))

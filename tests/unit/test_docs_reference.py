"""docs/reference/ is what hack/docs/reference.py generates from the code, and it covers
every field of the CRDs in crds/ and every visible command and option of the CLI."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml

from kascade.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
REGENERATE = ".venv/bin/python hack/docs/reference.py --write"
CRD_PAGES = {
    "kascade.io_flows.yaml": "flow.md",
    "kascade.io_runs.yaml": "run.md",
    "kascade.io_tasks.yaml": "task.md",
}


def generator() -> ModuleType:
    """hack/docs/reference.py, imported from its file (hack/ is not a package)."""
    name = "kascade_docs_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "hack/docs/reference.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- the checked-in pages are the generator's output ------------------------------------


@pytest.mark.parametrize("page", ["flow.md", "run.md", "task.md", "cli.md"])
def test_checked_in_page_is_what_the_generator_writes(page: str):
    generated = {path.name: text for path, text in generator().render_all().items()}
    path = REFERENCE / page
    assert path.is_file(), f"docs/reference/{page} is missing; run {REGENERATE}"
    assert path.read_text(encoding="utf-8") == generated[page], (
        f"docs/reference/{page} is out of date; run {REGENERATE}"
    )


def test_the_generator_writes_exactly_the_reference_pages():
    written = {path.as_posix() for path in generator().render_all()}
    on_disk = {f"docs/reference/{p.name}" for p in REFERENCE.glob("*.md")}
    assert written == on_disk


def test_check_mode_names_stale_pages(tmp_path: Path):
    stale = generator().stale_pages(tmp_path)
    assert sorted(p.name for p in stale) == [
        "cli.md",
        "flow.md",
        "run.md",
        "task.md",
    ]


# --- every CRD field is in the reference ---------------------------------------------


def crd_fields(schema: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    """(object path, field name) of every field of an openAPIV3Schema, walked on its own."""
    found: list[tuple[str, str]] = []
    for name, sub in (schema.get("properties") or {}).items():
        found.append((path, name))
        found += crd_fields(sub, f"{path}.{name}" if path else name)
    items = schema.get("items")
    if isinstance(items, dict):
        found += crd_fields(items, f"{path}[]")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found += crd_fields(extra, f"{path}.*")
    return found


class ReferencePage:
    """A generated kind page read back: its objects, their fields, and shared objects."""

    def __init__(self, text: str, root_heading: str) -> None:
        self.fields: dict[str, dict[str, list[str]]] = {}  # object path -> field -> row
        self.same_as: dict[str, str] = {}  # another place of an object -> its documented path
        current: str | None = None
        for line in text.splitlines():
            heading = re.fullmatch(r"## `([^`]+)`", line)
            if heading:
                current = "" if heading[1] == root_heading else heading[1]
                self.fields[current] = {}
            elif current is not None and line.startswith("| `"):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
                field_path = cells[0].strip("`")
                name = field_path.removeprefix(current).lstrip(".") if current else field_path
                self.fields[current][name] = cells
            elif current is not None and line.startswith("Same fields at: "):
                for place in re.findall(r"`([^`]+)`", line):
                    self.same_as[place] = current

    def documented_object(self, path: str) -> str | None:
        """The path whose table documents the object at `path`, following shared objects."""
        for _ in range(20):
            if path in self.fields:
                return path
            for place, documented in self.same_as.items():
                if path == place or path.startswith((place + ".", place + "[")):
                    path = documented + path[len(place) :]
                    break
            else:
                return None
        return None


@pytest.mark.parametrize(("crd_file", "page"), sorted(CRD_PAGES.items()))
def test_every_crd_field_is_in_the_reference(crd_file: str, page: str):
    crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text(encoding="utf-8"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    reference = ReferencePage(
        (REFERENCE / page).read_text(encoding="utf-8"), crd["spec"]["names"]["singular"]
    )
    missing = []
    fields = crd_fields(schema)
    for parent, name in fields:
        documented = reference.documented_object(parent)
        if documented is None or name not in reference.fields[documented]:
            missing.append(f"{parent}.{name}" if parent else name)
    assert len(fields) > 20
    assert not missing, f"docs/reference/{page} lacks {missing}; run {REGENERATE}"


@pytest.mark.parametrize(("crd_file", "page"), sorted(CRD_PAGES.items()))
def test_every_documented_field_has_a_type_and_a_description(crd_file: str, page: str):
    crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text(encoding="utf-8"))
    reference = ReferencePage(
        (REFERENCE / page).read_text(encoding="utf-8"), crd["spec"]["names"]["singular"]
    )
    undescribed = [
        row[0]
        for table in reference.fields.values()
        for row in table.values()
        if not row[1].strip() or not row[-1].strip()
    ]
    assert not undescribed, f"fields without a type or description: {undescribed}"


def test_enum_values_defaults_and_constraints_are_shown():
    flow = (REFERENCE / "flow.md").read_text(encoding="utf-8")
    policy = next(line for line in flow.splitlines() if "`spec.schedule.concurrencyPolicy`" in line)
    assert "`Allow`, `Forbid`, `Replace`" in policy
    assert "| `Allow` |" in policy
    parallel = next(line for line in flow.splitlines() if "`spec.maxParallelTasks`" in line)
    assert "`8`" in parallel
    assert "≥ 1" in parallel
    name = next(line for line in flow.splitlines() if line.startswith("| `spec.nodes[].name`"))
    assert "| yes |" in name
    assert "pattern `^[a-z0-9]" in name
    run = (REFERENCE / "run.md").read_text(encoding="utf-8")
    assert "rerunOf is required by the RERUN\\_\\* types and allowed only there" in run


# --- every visible command and option is in the CLI reference --------------------------


def visible_commands(
    command: click.Command, path: str = "kascade"
) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                found += visible_commands(sub, f"{path} {name}")
    return found


def cli_sections() -> dict[str, str]:
    text = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `([^`]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_and_option_is_in_the_cli_reference():
    sections = cli_sections()
    commands = visible_commands(cli)
    assert {path for path, _ in commands} == set(sections)
    for path, command in commands:
        body = sections[path]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and param.name != "help":
                for option in param.opts:
                    assert f"`{option}`" in body, f"{path}: option {option} is not documented"
                if param.help:
                    assert param.help.split()[0] in body
            elif isinstance(param, click.Argument):
                assert f"`{param.human_readable_name}`" in body, f"{path}: {param.name}"


def test_hidden_options_are_left_out():
    hidden = [
        option
        for _, command in visible_commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and param.hidden
        for option in param.opts
    ]
    assert hidden, "no hidden option to check against (the operator's --clock-offset)"
    text = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    assert not [option for option in hidden if f"`{option}`" in text]

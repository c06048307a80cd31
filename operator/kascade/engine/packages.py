"""A project's dbt packages, as dbt finds them: every folder of `packages-install-path`
(`dbt_packages/`) is an installed package, a dbt project with its own dbt_project.yml;
`packages.yml` (or `dependencies.yml`) only says which packages should be there.

dbt never reads a package from anywhere else: a `local:` package too is used from
`dbt_packages/`, where `dbt deps` links it. No task runs `dbt deps` (none may reach the
dbt package hub or a git server), so every package must be installed in the project:
`dbt deps` run beforehand and `dbt_packages/` kept. Like dbt, fewer installed packages than
packages.yml lists is a problem; here it names the packages that are not there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import ProjectRoot, ProjectSettings, load_yaml, read_settings
from kascade.engine.dbtvars import Vars

_SPECIFIED = ("packages.yml", "dependencies.yml")
_LOCK = "package-lock.yml"
_KINDS = ("local", "package", "git", "tarball", "private")


@dataclass(frozen=True)
class Package:
    """An installed package: its project name, its folder (relative to the project, with
    `/`) and its settings."""

    name: str
    folder: str
    settings: ProjectSettings


@dataclass(frozen=True)
class _Wanted:
    """One entry of packages.yml: its kind, as written, and the folder name it installs to
    when that can be known."""

    kind: str
    spec: str
    name: str | None


def installed_packages(
    root: Path, settings: ProjectSettings, vars: Vars, problems: list[str]
) -> list[Package]:
    """The packages installed in the project, each read like a project; problems name
    packages.yml, the package and its folder."""
    inside = ProjectRoot(root)
    packages = _installed(root, settings, vars, inside, problems)
    names = {package.name for package in packages}
    for file, wanted in _specified(root, inside, problems):
        missing = [entry for entry in wanted if entry.name is not None and entry.name not in names]
        if len(wanted) > len(packages):
            missing = [entry for entry in wanted if entry.name not in names]
        problems += [_not_installed(file, entry, settings.install_path) for entry in missing]
    return packages


def _installed(
    root: Path, settings: ProjectSettings, vars: Vars, inside: ProjectRoot, problems: list[str]
) -> list[Package]:
    folder = settings.install_path
    base = os.path.join(root, folder)
    if not os.path.isdir(base):
        return []
    found: list[Package] = []
    seen: dict[str, str] = {settings.name: "the project itself"}
    for entry in sorted(os.scandir(base), key=lambda entry: entry.name):
        shown = f"{folder}/{entry.name}"
        real = os.path.realpath(entry.path)
        if entry.is_symlink() and not os.path.exists(entry.path):
            problems.append(f"{shown}: a link to {real}, which does not exist")
            continue
        if entry.name.startswith("__") or not entry.is_dir():
            continue
        if not inside.holds(real):
            problems.append(f"{shown}: a link to {real}, outside the project; not read")
            continue
        if not os.path.isfile(os.path.join(entry.path, "dbt_project.yml")):
            problems.append(f"{shown}: an installed package without dbt_project.yml")
            continue
        package_settings = read_settings(
            Path(entry.path), problems, vars, shown=f"{shown}/dbt_project.yml"
        )
        name = package_settings.name
        if name in seen:
            problems.append(f"{shown}: package `{name}` is defined twice ({seen[name]} too)")
            continue
        seen[name] = shown
        found.append(Package(name, shown, package_settings))
    return found


def _specified(
    root: Path, inside: ProjectRoot, problems: list[str]
) -> list[tuple[str, list[_Wanted]]]:
    """The packages each file lists (packages.yml, else dependencies.yml)."""
    for file in _SPECIFIED:
        path = root / file
        problem = inside.file_problem(str(path), file)
        if problem is not None:
            problems.append(problem)
            continue
        if not path.is_file():
            continue
        document = load_yaml(path, problems, file)
        entries = document.get("packages") if isinstance(document, dict) else None
        if entries is None:
            continue
        if not isinstance(entries, list):
            problems.append(f"{file}: `packages` must be a list")
            return []
        locked = _locked_names(root, problems)
        return [(file, [_wanted(root, inside, entry, locked) for entry in entries])]
    return []


def _locked_names(root: Path, problems: list[str]) -> dict[tuple[str, str], str]:
    """(kind, spec) -> installed name, from the package-lock.yml `dbt deps` writes."""
    path = root / _LOCK
    if not path.is_file():
        return {}
    document = load_yaml(path, problems, _LOCK)
    entries = document.get("packages") if isinstance(document, dict) else None
    names: dict[tuple[str, str], str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            kind = next((key for key in _KINDS if key in entry), None)
            if kind is not None:
                names[(kind, str(entry[kind]))] = entry["name"]
    return names


def _wanted(
    root: Path, inside: ProjectRoot, entry: Any, locked: Mapping[tuple[str, str], str]
) -> _Wanted:
    if not isinstance(entry, dict):
        return _Wanted("package", str(entry), None)
    kind = next((key for key in _KINDS if key in entry), "package")
    spec = str(entry.get(kind, ""))
    name = locked.get((kind, spec))
    if name is None and kind == "local":
        name = _local_name(root, inside, spec)
    return _Wanted(kind, spec, name)


def _local_name(root: Path, inside: ProjectRoot, spec: str) -> str | None:
    """The project name of a local package inside the project, if it can be read."""
    path = root / spec / "dbt_project.yml"
    if os.path.isabs(spec) or not inside.holds(os.path.realpath(path)) or not path.is_file():
        return None
    document = load_yaml(path, [], f"{spec}/dbt_project.yml")
    name = document.get("name") if isinstance(document, dict) else None
    return str(name) if name else None


def _not_installed(file: str, entry: _Wanted, install_path: str) -> str:
    if entry.kind == "local":
        return (
            f"{file}: local package `{entry.spec}` is not installed in {install_path}/: run "
            f"`dbt deps` (it links the folder there) and keep {install_path}/ in the project; "
            "dbt reads packages only from there"
        )
    return (
        f"{file}: package `{entry.spec}` is not vendored in {install_path}/: run `dbt deps` "
        f"and keep {install_path}/ in the project (no task may reach the dbt package hub or "
        "a git server)"
    )

"""Finding a project's files without leaving it: regular files under its folders, and its
script packages. A link out of the project (or to nothing) and a file that is not a regular
file (a FIFO, a device) are problems naming the path, never followed or read. Links inside
the project are followed, each real folder read once."""

from __future__ import annotations

import os
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from kascade.engine.dbtconfig import ProjectRoot

SCRIPTS_DIR = "scripts"
SCRIPT_ENTRY = "__main__.py"


@dataclass(frozen=True)
class ProjectFile:
    """A file found under a folder of the project."""

    absolute: str
    path: str
    """Relative to the project, with `/`: models/marts/fct_orders.sql."""
    folders: tuple[str, ...]
    """The folders between the model path and the file: ("marts",)."""
    name: str
    """The name without its suffix: fct_orders."""


class Walker:
    """Regular files under folders of the project, read without leaving it.

    Uses os.scandir, whose entries know without a system call whether they are links,
    folders or files: this runs for every model of a big project. Plain folders are read
    first; folders reached through links inside the project come after, each real folder
    once (so a link loop ends, and two links to one folder are a problem).
    """

    def __init__(self, root: Path, problems: list[str]) -> None:
        self.root = str(root)
        self.inside = ProjectRoot(root)
        self.problems = problems

    def files(self, folder: str, suffixes: tuple[str, ...]) -> list[ProjectFile]:
        """Every regular file under `folder` whose name ends with one of `suffixes`."""
        base = os.path.join(self.root, folder)
        top = self._real_folder(base, folder)
        if top is None:
            return []
        found: list[ProjectFile] = []
        visited = {top}
        pending: list[tuple[str, str, tuple[str, ...]]] = [(base, top, ())]
        links: deque[tuple[str, str, tuple[str, ...]]] = deque()
        while pending or links:
            if not pending:
                path, target, folders = links.popleft()
                if target in visited:
                    self.problems.append(
                        f"{'/'.join((folder, *folders))}: a link to {target}, a folder read "
                        "already; not read again"
                    )
                else:
                    visited.add(target)
                    pending.append((path, target, folders))
                continue
            directory, real, folders = pending.pop()
            for entry in self._entries(directory, "/".join((folder, *folders))):
                shown = "/".join((folder, *folders, entry.name))
                wanted = entry.name.endswith(suffixes)
                if entry.is_symlink():
                    mode = self._link_mode(entry.path, shown, wanted)
                    if mode is not None and stat.S_ISDIR(mode):
                        target = os.path.realpath(entry.path)
                        links.append((entry.path, target, (*folders, entry.name)))
                        continue
                    regular = mode is not None and stat.S_ISREG(mode)
                    if mode is None:
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    below = os.path.join(real, entry.name)
                    if below not in visited:
                        visited.add(below)
                        pending.append((entry.path, below, (*folders, entry.name)))
                    continue
                else:
                    regular = entry.is_file(follow_symlinks=False)
                if not wanted:
                    continue
                if not regular:
                    self.problems.append(f"{shown}: not a regular file; not read")
                    continue
                stem = os.path.splitext(entry.name)[0]
                found.append(ProjectFile(entry.path, shown, folders, stem))
        return found

    def scripts(self) -> dict[str, str]:
        """Script packages: scripts/<name>/__main__.py, each inside the project."""
        base = os.path.join(self.root, SCRIPTS_DIR)
        if self._real_folder(base, SCRIPTS_DIR) is None:
            return {}
        found: dict[str, str] = {}
        for entry in self._entries(base, SCRIPTS_DIR):
            if entry.name.startswith("."):  # as a shell glob, hidden names are no scripts
                continue
            shown = f"{SCRIPTS_DIR}/{entry.name}"
            if entry.is_symlink():
                mode = self._link_mode(entry.path, shown, wanted=False)
                if mode is None or not stat.S_ISDIR(mode):
                    continue
            elif not entry.is_dir(follow_symlinks=False):
                continue
            script = f"{shown}/{SCRIPT_ENTRY}"
            problem = self.inside.file_problem(os.path.join(entry.path, SCRIPT_ENTRY), script)
            if problem is not None:
                self.problems.append(problem)
            elif os.path.lexists(os.path.join(entry.path, SCRIPT_ENTRY)):
                found[entry.name] = script
        return found

    def _real_folder(self, path: str, shown: str) -> str | None:
        """The real path of a folder to read, or None: absent, not a folder, or (a problem)
        reached through a link out of the project."""
        if not os.path.lexists(path):
            return None
        real = os.path.realpath(path)
        if not self.inside.holds(real):
            self.problems.append(f"{shown}: a link to {real}, outside the project; not read")
            return None
        return real if os.path.isdir(real) else None

    def _link_mode(self, path: str, shown: str, wanted: bool) -> int | None:
        """The mode of what a link inside the project points to; None (and a problem when the
        link is a folder or a wanted file) when it leaves the project or points nowhere."""
        real = os.path.realpath(path)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            if wanted:
                self.problems.append(f"{shown}: a link to {real}, which does not exist")
            return None
        if not self.inside.holds(real):
            if wanted or stat.S_ISDIR(mode):
                self.problems.append(f"{shown}: a link to {real}, outside the project; not read")
            return None
        return mode

    def _entries(self, directory: str, shown: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as listing:
                return sorted(listing, key=lambda entry: entry.name)
        except OSError as err:
            self.problems.append(f"{shown}: cannot read: {err.strerror or err}")
            return []

"""Running the `kascade` command in-process on a sandbox, the way the fuzz tier checks
it: the exit code, what it printed, a hang detector, and every file it wrote."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tests.fuzz.strategies import ProjectTree

# Generous: a hang detector, not a speed assertion (a run starts real task processes).
HANG_SECONDS = 60.0
EXIT_CODES = frozenset({0, 1, 2})


class Hang(Exception):
    """A command that did not end within HANG_SECONDS."""


@dataclass(frozen=True)
class Result:
    """What one command did."""

    code: int
    stdout: str
    stderr: str

    def problems(self) -> list[str]:
        """Ways the result breaks the rules of bad input: a traceback, an internal error,
        an exit code outside the documented ones."""
        found = []
        text = self.stdout + self.stderr
        if "Traceback" in text:
            found.append("printed a traceback")
        if "internal error" in text:
            found.append("reported an internal error")
        if self.code not in EXIT_CODES:
            found.append(f"exited {self.code}")
        return found


@dataclass(frozen=True)
class Sandbox:
    """A folder holding the project, the state dir, a working dir and files outside the
    project that nothing may read into a plan or write."""

    root: Path

    @property
    def project(self) -> Path:
        return self.root / "work" / "project"

    @property
    def state(self) -> Path:
        return self.root / "work" / "state"

    @property
    def cwd(self) -> Path:
        return self.root / "work" / "cwd"

    @property
    def outside(self) -> Path:
        return self.root / "work" / "outside"

    def make(self, tree: ProjectTree, manifest: str) -> Path:
        """Write the project and its flow; returns the flow file."""
        for folder in (self.project, self.state, self.cwd, self.outside):
            folder.mkdir(parents=True, exist_ok=True)
        (self.outside / "secret.sql").write_text("select 'secret' as leaked\n")
        (self.outside / "secret.csv").write_text("secret\n1\n")
        for relative, text in tree.files.items():
            path = self.project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="surrogateescape")
        for relative, target in tree.links.items():
            path = self.project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target)
        for relative in tree.fifos:
            path = self.project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)
        flow_file = self.project / "flow.yaml"
        flow_file.write_text(manifest, encoding="utf-8", errors="surrogateescape")
        return flow_file

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every path under the sandbox's root (and its parent) with size and mtime."""
        seen: dict[str, tuple[int, int]] = {}
        for base in (self.root.parents[3],):
            for directory, folders, files in os.walk(base, followlinks=False):
                for name in [*folders, *files]:
                    path = os.path.join(directory, name)
                    try:
                        info = os.lstat(path)
                    except OSError:
                        continue
                    seen[path] = (info.st_size, info.st_mtime_ns)
        return seen

    def writes_outside(
        self, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
    ) -> list[str]:
        """Paths created or changed outside the project and the state dir."""
        allowed = (str(self.project) + os.sep, str(self.state) + os.sep)
        changed = [p for p, info in after.items() if before.get(p) != info]
        return sorted(
            p
            for p in changed
            if not p.startswith(allowed)
            and p not in (str(self.project), str(self.state))
            and not os.path.isdir(p)
        )


def _raise_hang(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"the command did not end within {HANG_SECONDS:.0f}s")


@contextlib.contextmanager
def _hang_detector() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _raise_hang)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def kascade(*args: str, cwd: Path) -> Result:
    """`kascade ARGS...` in this process, as its console entry point runs it."""
    from kascade.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv, here = sys.argv, os.getcwd()
    sys.argv = ["kascade", *args]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _hang_detector():
            try:
                main()
            except SystemExit as ended:
                code = (
                    ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
                )
    finally:
        sys.argv = argv
        os.chdir(here)
    return Result(code, out.getvalue(), err.getvalue())

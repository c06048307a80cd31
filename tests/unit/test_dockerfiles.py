"""The two images, checked without a Docker engine: the Dockerfiles are parsed here (with
line continuations, ARG/ENV substitution and .dockerignore rules as BuildKit applies them),
every rule names the Dockerfile line it finds wrong, and the builder stage's wheel build
is run for real on exactly the files its COPY instructions would put in the image."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import click
import pytest

from kascade.api import TaskType
from kascade.cli.main import cli
from kascade.engine.launch import Launch
from kascade.operator import jobs

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "operator": ROOT / "operator" / "Dockerfile",
    "runtime": ROOT / "runtime-image" / "Dockerfile",
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# What the Helm chart expects of the operator container: metrics Service and probes.
CHART_PORTS = {8080, 8081}
NON_ROOT_USER = "65532:65532"
REQUIRED_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
OCI_LABELS = ("source", "title", "version", "licenses")
# Installers and compilers: none of them may run in a final stage.
BUILD_TOOLS = frozenset(
    {"apt-get", "apt", "aptitude", "dpkg", "apk", "yum", "dnf", "microdnf", "pip", "pip3"}
    | {"uv", "poetry", "conda", "gcc", "g++", "cc", "c++", "clang", "make", "cmake"}
)
PINNED_TAG = re.compile(r"\d+\.\d+\.\d+(?:[-.]|$)")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


# ---------------------------------------------------------------- the Dockerfile parser


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["a", "b"]`, or None for the shell form."""
        if not self.value.startswith("["):
            return None
        try:
            words = json.loads(self.value)
        except json.JSONDecodeError:
            return None
        return words if isinstance(words, list) else None


@dataclass
class Stage:
    index: int
    line: int
    base: str
    name: str | None
    global_args: dict[str, str]
    instructions: list[Instruction] = field(default_factory=list)

    def scope(self, upto: Instruction | None = None) -> dict[str, str]:
        """ARG and ENV values in force before `upto` (all of them without it)."""
        values: dict[str, str] = {}
        for ins in self.instructions:
            if ins is upto:
                break
            if ins.keyword == "ARG":
                for key, value in key_values(ins.value).items():
                    values[key] = value if value is not None else self.global_args.get(key, "")
            elif ins.keyword == "ENV":
                values.update(
                    {k: substitute(v or "", values) for k, v in key_values(ins.value).items()}
                )
        return values

    def all(self, keyword: str) -> list[Instruction]:
        return [ins for ins in self.instructions if ins.keyword == keyword]


@dataclass
class Dockerfile:
    name: str
    global_args: dict[str, str]
    stages: list[Stage]

    def at(self, line: int) -> str:
        return f"{self.name}:{line}"

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_named(self, reference: str, before: int) -> Stage | None:
        for stage in self.stages[:before]:
            if reference in (stage.name, str(stage.index)):
                return stage
        return None


def parse_instructions(text: str) -> list[Instruction]:
    """Instructions with their first line number; `\\` continues a line, comment lines
    (also inside a continuation) are dropped, as Docker's parser does."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, value = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), value.strip()))
        pending = []
    if pending:
        raise ValueError(f"line {start}: a line continuation runs past the end of the file")
    return instructions


def parse_dockerfile(text: str, name: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in parse_instructions(text):
        if ins.keyword == "FROM":
            words = [word for word in ins.value.split() if not word.startswith("--")]
            alias = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            base = substitute(words[0], global_args)
            stages.append(Stage(len(stages), ins.line, base, alias, global_args))
        elif stages:
            stages[-1].instructions.append(ins)
        elif ins.keyword == "ARG":
            global_args.update({k: v or "" for k, v in key_values(ins.value).items()})
        else:
            raise ValueError(f"{name}:{ins.line}: {ins.keyword} before the first FROM")
    return Dockerfile(name, global_args, stages)


def key_values(value: str) -> dict[str, str | None]:
    """`A=1 B="two words" C` as {A: 1, B: two words, C: None}; `ENV A value` as {A: value}."""
    words = shlex.split(value)
    if words and "=" not in words[0] and len(words) > 1:
        return {words[0]: " ".join(words[1:])}
    pairs: dict[str, str | None] = {}
    for word in words:
        key, equals, rest = word.partition("=")
        pairs[key] = rest if equals else None
    return pairs


def substitute(text: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values.get(m[1] or m[2], m[0]), text)


def shell_words(command: str) -> list[str]:
    """A shell command split into words, with `&&`, `;` and `|` as words of their own."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def segments(words: list[str]) -> list[list[str]]:
    """The simple commands of `a && b ; c`."""
    found: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "||", ";", "|", "&"):
            found.append([])
        else:
            found[-1].append(word)
    return [segment for segment in found if segment]


@dataclass(frozen=True)
class Copy:
    instruction: Instruction
    from_stage: str | None
    sources: list[str]
    destination: str


def copy_of(ins: Instruction, stage: Stage) -> Copy:
    words = ins.exec_form() or shlex.split(ins.value)
    flags = [word for word in words if word.startswith("--")]
    paths = [substitute(word, stage.scope(ins)) for word in words if not word.startswith("--")]
    source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return Copy(ins, source_stage, paths[:-1], paths[-1])


def load(image: str) -> Dockerfile:
    path = DOCKERFILES[image]
    return parse_dockerfile(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


# ------------------------------------------------------------ the build context (.dockerignore)


@dataclass(frozen=True)
class IgnoreRule:
    line: int
    text: str
    regex: re.Pattern[str]
    reinclude: bool


def ignore_rule(line: int, text: str) -> IgnoreRule:
    """One .dockerignore line compiled the way moby's patternmatcher does: `*` and `?` stop
    at `/`, `**` spans folders, a leading `!` re-includes, paths are cleaned of `/` and `./`."""
    reinclude = text.startswith("!")
    pattern = posixpath.normpath(text[1:] if reinclude else text).lstrip("/")
    regex, index = "^", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern[index : index + 1] == "/":
                index += 1
            regex += ".*" if index >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", index)
            regex += pattern[index : end + 1]
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        else:
            regex += re.escape(char)
        index += 1
    return IgnoreRule(line, text, re.compile(regex + "$"), reinclude)


@dataclass
class Context:
    root: Path
    rules: list[IgnoreRule]

    @classmethod
    def of(cls, dockerfile: Path, extra: tuple[str, ...] = ()) -> Context:
        """The context of `docker build -f DOCKERFILE .` run at the root: BuildKit reads
        DOCKERFILE.dockerignore when it exists, else the root's .dockerignore."""
        own = dockerfile.with_name(dockerfile.name + ".dockerignore")
        ignore = own if own.exists() else ROOT / ".dockerignore"
        lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
        numbered = [*enumerate(lines, 1), *((0, text) for text in extra)]
        rules = [
            ignore_rule(number, text.strip())
            for number, text in numbered
            if text.strip() and not text.strip().startswith("#")
        ]
        return cls(ROOT, rules)

    def deciding_rule(self, relative: str) -> IgnoreRule | None:
        """The last rule that matches the path or one of its folders: it decides."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        decided = None
        for rule in self.rules:
            if any(rule.regex.match(candidate) for candidate in candidates):
                decided = rule
        return decided

    def excluded(self, relative: str) -> bool:
        rule = self.deciding_rule(relative)
        return rule is not None and not rule.reinclude

    def may_reinclude_below(self, folder: str) -> bool:
        """Whether a `!` rule could bring back something inside an excluded folder."""
        parts = folder.split("/")
        for rule in (r for r in self.rules if r.reinclude):
            pattern = posixpath.normpath(rule.text[1:]).lstrip("/").split("/")
            for depth, part in enumerate(parts):
                if depth >= len(pattern) or "**" in pattern[depth]:
                    return True
                if not fnmatchcase(part, pattern[depth]):
                    break
            else:
                return True
        return False

    def files(self, under: str = "") -> list[str]:
        """Every file of the context below `under` (the whole context by default)."""
        start = self.root / under
        if start.is_file():
            return [under] if not self.excluded(under) else []
        found: list[str] = []
        for folder, subfolders, names in os.walk(start):
            relative = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if relative == "." else f"{relative}/"
            subfolders[:] = sorted(
                name
                for name in subfolders
                if not self.excluded(prefix + name) or self.may_reinclude_below(prefix + name)
            )
            found += [prefix + name for name in sorted(names) if not self.excluded(prefix + name)]
        return found


def repository_files(under: str) -> list[str]:
    """Files git tracks or would add below `under` (what a clone has; caches left out)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "--", under],
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (ROOT / name).exists()]


# ------------------------------------------------------------------------ the rules


def copy_problems(df: Dockerfile, context: Context) -> list[str]:
    """COPY/ADD sources exist in the context and survive .dockerignore; --from names an
    earlier stage."""
    problems: list[str] = []
    for stage in df.stages:
        for ins in stage.all("COPY") + stage.all("ADD"):
            copy = copy_of(ins, stage)
            if copy.from_stage is not None:
                if df.stage_named(copy.from_stage, stage.index) is None:
                    problems.append(
                        f"{df.at(ins.line)}: {ins.keyword} --from={copy.from_stage} names no "
                        "stage defined before it"
                    )
                continue
            for source in copy.sources:
                relative = posixpath.normpath(source).lstrip("/")
                if not (ROOT / relative).exists():
                    problems.append(
                        f"{df.at(ins.line)}: {ins.keyword} source `{source}` is not in the "
                        "build context (the repository root)"
                    )
                    continue
                lost = [f for f in repository_files(relative) if context.excluded(f)]
                if lost:
                    rule = context.deciding_rule(lost[0])
                    problems.append(
                        f"{df.at(ins.line)}: {ins.keyword} source `{source}` is excluded by "
                        f".dockerignore line {rule.line if rule else '?'} "
                        f"(`{rule.text if rule else '?'}`): {len(lost)} files, e.g. {lost[0]}"
                    )
    return problems


def pin_problems(df: Dockerfile) -> list[str]:
    """Every base image is pinned by digest or by a full x.y.z tag; never `latest`."""
    problems: list[str] = []
    for stage in df.stages:
        if df.stage_named(stage.base, stage.index) is not None:
            continue
        image = stage.base
        tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
        if "$" in image:
            problems.append(f"{df.at(stage.line)}: FROM {image} has an unresolved variable")
        elif tag == "latest" or not (DIGEST.search(image) or PINNED_TAG.match(tag)):
            problems.append(
                f"{df.at(stage.line)}: FROM {image} is not pinned (a sha256 digest or a full "
                "x.y.z version tag, never latest)"
            )
    return problems


def final_stage_problems(df: Dockerfile) -> list[str]:
    """The final stage: same base as the builder, only the venv copied in, no build tools
    run, a numeric non-root USER, the Python env, OCI labels matching pyproject."""
    final, problems = df.final, []
    if final.base != df.stages[0].base:
        problems.append(
            f"{df.at(final.line)}: FROM {final.base} differs from the builder's "
            f"{df.stages[0].base}; the venv's python links into the base, they must be the same"
        )
    for ins in final.all("RUN"):
        words = shell_words(ins.value)
        tools = {posixpath.basename(word) for word in words} & BUILD_TOOLS
        if any(words[i : i + 2] == ["-m", "pip"] for i in range(len(words))):
            tools.add("python -m pip")
        if tools:
            problems.append(
                f"{df.at(ins.line)}: RUN in the final stage runs {', '.join(sorted(tools))}; "
                "install and compile in the builder stage"
            )
    for ins in final.all("COPY") + final.all("ADD"):
        copy = copy_of(ins, final)
        if copy.from_stage is None or copy.sources != ["/opt/venv"]:
            problems.append(
                f"{df.at(ins.line)}: the final stage may copy only /opt/venv from the builder, "
                f"not {' '.join(copy.sources)}"
            )
    users = final.all("USER")
    user = substitute(users[-1].value, final.scope(users[-1])) if users else "(none: root)"
    if user != NON_ROOT_USER:
        problems.append(
            f"{df.at(users[-1].line if users else final.line)}: the final stage runs as "
            f"{user}; it must be USER {NON_ROOT_USER} (numeric, so runAsNonRoot can verify it)"
        )
    scope = final.scope()
    for name, value in REQUIRED_ENV.items():
        if scope.get(name) != value:
            problems.append(f"{df.at(final.line)}: the final stage lacks ENV {name}={value}")
    if not scope.get("PATH", "").startswith("/opt/venv/bin:"):
        problems.append(f"{df.at(final.line)}: ENV PATH must start with /opt/venv/bin")
    labels: dict[str, str] = {}
    for ins in final.all("LABEL"):
        pairs = key_values(ins.value).items()
        labels.update({k: substitute(v or "", final.scope(ins)) for k, v in pairs})
    expected = {
        "version": PYPROJECT["project"]["version"],
        "licenses": PYPROJECT["project"]["license"],
    }
    for key in OCI_LABELS:
        value = labels.get(f"org.opencontainers.image.{key}")
        if not value or (key in expected and value != expected[key]):
            problems.append(
                f"{df.at(final.line)}: LABEL org.opencontainers.image.{key} is {value!r}"
                + (f", pyproject.toml says {expected[key]!r}" if key in expected else "")
            )
    return problems


def build_inputs() -> list[str]:
    """What `pip wheel .` reads: pyproject.toml, its readme, the packages it finds."""
    project, find = PYPROJECT["project"], PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    readme = project.get("readme")
    inputs = ["pyproject.toml", *([readme] if isinstance(readme, str) else [])]
    for where in find.get("where", ["."]):
        for package in sorted((ROOT / where).iterdir()):
            included = any(fnmatchcase(package.name, p) for p in find.get("include", ["*"]))
            if included and (package / "__init__.py").is_file():
                inputs.append(package.relative_to(ROOT).as_posix())
    return inputs


def copy_targets(copy: Copy, workdir: str) -> list[tuple[str, str, bool]]:
    """(context source, image path, source is a folder) of each COPY source: a folder's
    contents land in the destination, a file lands in it when it names a folder."""
    destination = posixpath.join(workdir, copy.destination)
    into_folder = copy.destination.endswith("/") or copy.destination in (".", "./")
    into_folder = into_folder or len(copy.sources) > 1
    targets = []
    for source in copy.sources:
        source = posixpath.normpath(source).lstrip("/")
        is_folder = (ROOT / source).is_dir()
        placed = destination
        if into_folder and not is_folder:
            placed = posixpath.join(destination, posixpath.basename(source))
        targets.append((source, posixpath.normpath(placed), is_folder))
    return targets


def copied_source(copies: list[tuple[Copy, str]], image_path: str) -> str | None:
    """Which context path ends up at `image_path`, given the COPY instructions so far (each
    with the WORKDIR it ran in)."""
    found = None
    for copy, workdir in copies:
        for source, target, is_folder in copy_targets(copy, workdir):
            inside = image_path[len(target) + 1 :] if image_path.startswith(target + "/") else None
            if image_path == target:
                found = source
            elif is_folder and inside and (ROOT / source / inside).exists():
                found = posixpath.join(source, inside)
    return found


def builder_run_problems(df: Dockerfile) -> list[str]:
    """A builder RUN may only use repository files already COPYed to the same place; `.`
    (pip's project) needs everything the wheel is built from."""
    problems: list[str] = []
    for stage in df.stages[:-1]:
        copies: list[tuple[Copy, str]] = []
        workdir = "/"
        for ins in stage.instructions:
            if ins.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, substitute(ins.value, stage.scope(ins)))
            elif ins.keyword in ("COPY", "ADD") and copy_of(ins, stage).from_stage is None:
                copies.append((copy_of(ins, stage), workdir))
            elif ins.keyword == "RUN":
                for word in shell_words(ins.value):
                    if word in (".", "./"):
                        needed = build_inputs()
                    elif not word.startswith(("-", "/")) and (ROOT / word).exists():
                        needed = [posixpath.normpath(word)]
                    else:
                        continue
                    for path in needed:
                        image_path = posixpath.normpath(posixpath.join(workdir, path))
                        if copied_source(copies, image_path) != path:
                            problems.append(
                                f"{df.at(ins.line)}: RUN uses `{word}` but {path} was not "
                                f"copied to {image_path} before it"
                            )
    return problems


def venv_problems(df: Dockerfile) -> list[str]:
    """The builder makes /opt/venv and installs the wheel it built into it."""
    commands = [
        segment
        for stage in df.stages[:-1]
        for ins in stage.all("RUN")
        for segment in segments(shell_words(ins.value))
    ]
    wheel = next((c for c in commands if "wheel" in c and "pip" in c), None)
    where = f"{df.at(df.stages[0].line)}: the builder stage"
    if wheel is None or "-w" not in wheel:
        return [f"{where} runs no `pip wheel ... -w DIR`"]
    wheels = wheel[wheel.index("-w") + 1]
    problems = []
    if not any(c[-2:] == ["venv", "/opt/venv"] for c in commands):
        problems.append(f"{where} makes no venv at /opt/venv (`python -m venv /opt/venv`)")
    installs = [c for c in commands if c[0].startswith("/opt/venv/bin/") and "install" in c]
    if not any(w.startswith(f"{wheels}/") and w.endswith(".whl") for c in installs for w in c):
        problems.append(f"{where} does not install the wheel from {wheels} into /opt/venv")
    return problems


def resolve(argv: list[str]) -> tuple[str, str | None]:
    """The `kascade` command that `argv` (after `kascade`) runs and a parse problem, if any."""
    command: click.Command = cli
    path, rest = ["kascade"], list(argv)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            return " ".join(path), f"`{' '.join(path)}` has no command `{rest[0]}`"
        command, path, rest = sub, [*path, rest.pop(0)], rest
    name = " ".join(path)
    if "--help" in rest or "-h" in rest:
        return name, None
    if isinstance(command, click.Group):
        return name, f"`{name}` is a group, it runs nothing"
    try:
        command.make_context(name, rest)
    except click.UsageError as err:
        return name, f"`{name} {' '.join(rest)}`: {err.format_message()}"
    return name, None


def entrypoint_problems(df: Dockerfile) -> list[str]:
    """ENTRYPOINT/CMD in exec form; the program is a console script of pyproject, the
    arguments a real command of `kascade`."""
    problems: list[str] = []
    forms: dict[str, list[str]] = {}
    for keyword in ("ENTRYPOINT", "CMD"):
        found = df.final.all(keyword)
        if not found or found[-1].exec_form() is None:
            line = found[-1].line if found else df.final.line
            problems.append(f"{df.at(line)}: the final stage needs {keyword} in exec form [..]")
            continue
        forms[keyword] = found[-1].exec_form() or []
    if problems:
        return problems
    argv = forms["ENTRYPOINT"] + forms["CMD"]
    line = df.final.all("ENTRYPOINT")[-1].line
    scripts = PYPROJECT["project"].get("scripts", {})
    if argv[0] not in scripts:
        return [f"{df.at(line)}: ENTRYPOINT runs `{argv[0]}`, not a [project.scripts] entry"]
    _, problem = resolve(argv[1:])
    if problem:
        problems.append(f"{df.at(df.final.all('CMD')[-1].line)}: ENTRYPOINT+CMD: {problem}")
    return problems


def exposed(stage: Stage) -> set[int]:
    return {int(w.split("/")[0]) for ins in stage.all("EXPOSE") for w in ins.value.split()}


def operator_problems(df: Dockerfile) -> list[str]:
    """The chart scrapes metrics on 8080 and probes health on 8081."""
    ports = df.final.all("EXPOSE")
    if exposed(df.final) != CHART_PORTS:
        line = ports[-1].line if ports else df.final.line
        return [f"{df.at(line)}: EXPOSE {sorted(exposed(df.final))}, the chart expects 8080 8081"]
    return []


def job_argv(df: Dockerfile) -> list[str]:
    """What the container of an operator-made Job runs with this image."""
    attempt = jobs.ClusterAttempt(
        namespace="data",
        run="daily-1",
        flow="daily",
        task_object="daily-1-stg-orders",
        task_uid="uid-1",
        task_id="stg_orders",
        attempt=1,
        job="daily-1-stg-orders-1",
    )
    launch = Launch(
        task="stg_orders", attempt=1, kind=TaskType.MODEL, target="stg_orders", args=("--x",)
    )
    body = jobs.job_body(attempt, launch, "runtime:test")
    container = body["spec"]["template"]["spec"]["containers"][0]
    entrypoints, cmds = df.final.all("ENTRYPOINT"), df.final.all("CMD")
    entrypoint = (entrypoints[-1].exec_form() or []) if entrypoints else []
    cmd = (cmds[-1].exec_form() or []) if cmds else []
    # Kubernetes: `command` replaces ENTRYPOINT and drops CMD; `args` replaces CMD.
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*entrypoint, *container.get("args", cmd)]


def runtime_problems(df: Dockerfile) -> list[str]:
    """Jobs (operator/kascade/operator/jobs.py) run `task exec` as uid 65532 in /kascade/work."""
    final, problems = df.final, []
    entrypoints = final.all("ENTRYPOINT")
    at = df.at(entrypoints[-1].line if entrypoints else final.line)
    argv = job_argv(df)
    if not argv or argv[0] not in PYPROJECT["project"]["scripts"]:
        problems.append(f"{at}: a Job would run {argv}, not the `kascade` console script")
    else:
        command, problem = resolve(argv[1:])
        if command != "kascade task exec" or problem:
            problems.append(f"{at}: a Job would run `{' '.join(argv)}`: {problem or command}")
    own = (entrypoints[-1].exec_form() or []) if entrypoints else []
    if own != list(jobs.TASK_COMMAND):
        problems.append(f"{at}: ENTRYPOINT must be {list(jobs.TASK_COMMAND)}, as Jobs run it")
    workdirs = final.all("WORKDIR")
    if not workdirs or workdirs[-1].value != jobs.WORK_DIR:
        line = workdirs[-1].line if workdirs else final.line
        problems.append(f"{df.at(line)}: WORKDIR must be the Job's work volume {jobs.WORK_DIR}")
    if final.scope().get("HOME") != jobs.WORK_DIR:
        problems.append(f"{df.at(final.line)}: ENV HOME must be {jobs.WORK_DIR} (writable)")
    users = final.all("USER")
    if users and users[-1].value.split(":")[0] != str(jobs.RUNTIME_USER):
        problems.append(f"{df.at(users[-1].line)}: jobs.py runs pods as {jobs.RUNTIME_USER}")
    if final.all("EXPOSE"):
        problems.append(f"{df.at(final.all('EXPOSE')[0].line)}: a task serves nothing")
    return problems


IMAGE_RULES = {"operator": operator_problems, "runtime": runtime_problems}


def all_problems(image: str, df: Dockerfile, context: Context) -> list[str]:
    return [
        *copy_problems(df, context),
        *pin_problems(df),
        *final_stage_problems(df),
        *builder_run_problems(df),
        *venv_problems(df),
        *entrypoint_problems(df),
        *IMAGE_RULES[image](df),
    ]


# ------------------------------------------------------------------------ the tests


def test_the_parser_joins_continuations_and_keeps_first_line_numbers():
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11.14-slim\n\n"
        "FROM ${BASE} AS build\n"
        "RUN a \\\n"
        "    # a comment inside the continuation\n"
        " && b\n"
        'CMD ["x", "y"]\n'
        "FROM $BASE\n"
        "ENV P=/v/bin:$PATH Q=1\n"
    )
    df = parse_dockerfile(text, "t")
    assert [(s.name, s.base, s.line) for s in df.stages] == [
        ("build", "python:3.11.14-slim", 4),
        (None, "python:3.11.14-slim", 9),
    ]
    run, cmd = df.stages[0].instructions
    assert (run.line, run.value) == (5, "a && b")
    assert cmd.exec_form() == ["x", "y"]
    assert df.final.scope() == {"P": "/v/bin:$PATH", "Q": "1"}
    with pytest.raises(ValueError, match="line 2"):
        parse_instructions("FROM x\nRUN a \\\n")


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        (["*"], "operator/kascade/cli/main.py", True),  # a parent folder matches
        (["*", "!operator/kascade"], "operator/kascade/cli/main.py", False),
        (["*", "!operator/kascade"], "operator/kascade.egg-info/PKG-INFO", True),
        (["**/__pycache__"], "operator/kascade/__pycache__/x.pyc", True),
        (["**/*.py[cod]"], "a/b.pyc", True),
        (["*.md"], "docs/images.md", False),  # `*` stops at `/`
        (["/README.md"], "README.md", True),
    ],
)
def test_dockerignore_rules_match_as_buildkit_matches(rules, path, excluded):
    context = Context(ROOT, [ignore_rule(n, text) for n, text in enumerate(rules, 1)])
    assert context.excluded(path) is excluded


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_dockerfile_keeps_every_rule(image):
    df = load(image)
    assert len(df.stages) >= 2, f"{df.name}: needs a builder stage and a final stage"
    problems = all_problems(image, df, Context.of(DOCKERFILES[image]))
    assert problems == [], "\n".join(problems)


# `args` of the chart's operator Deployment (charts/kascade/templates/deployment.yaml).
CHART_ARGS = [
    *("operator", "-n", "data", "--executor", "jobs", "--image", "ghcr.io/kascade/runtime:0.1.0"),
    *("--state-dir", "/var/lib/kascade", "--liveness", "http://0.0.0.0:8081/healthz"),
    *("--metrics-address", "0.0.0.0:8080"),
]


def test_the_operator_image_runs_the_chart_s_arguments_on_the_ports_it_exposes():
    df = load("operator")
    entrypoint = df.final.all("ENTRYPOINT")[-1].exec_form() or []
    assert resolve([*entrypoint[1:], *CHART_ARGS]) == ("kascade operator", None)
    served = {
        int(CHART_ARGS[CHART_ARGS.index(flag) + 1].split(":")[-1].split("/")[0])
        for flag in ("--liveness", "--metrics-address")
    }
    assert served == exposed(df.final) == CHART_PORTS


def test_the_build_context_holds_only_what_the_images_copy():
    copied = {
        source
        for image in DOCKERFILES
        for stage in load(image).stages
        for ins in stage.all("COPY")
        if copy_of(ins, stage).from_stage is None
        for source, _, _ in copy_targets(copy_of(ins, stage), "/")
    }
    for image, dockerfile in DOCKERFILES.items():
        context = Context.of(dockerfile)
        files = context.files()
        stray = [f for f in files if not any(f == c or f.startswith(f"{c}/") for c in copied)]
        assert stray == [], f"{image}: .dockerignore lets in files no COPY uses: {stray[:10]}"
        assert "operator/kascade/cli/main.py" in files, f"{image}: the package is not in it"
        assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


BASE = "<the pinned base image>"
BREAKAGES = [
    # (image, text replaced, its replacement, what the problem says, the line it names)
    ("operator", "COPY pyproject.toml README.md", "COPY pyproject.toml", "README.md", "RUN"),
    ("operator", "README.md ./", "README.md LICENSE ./", "`LICENSE` is not in", "COPY pyp"),
    ("operator", "--from=builder", "--from=build", "names no stage", "COPY --from"),
    ("runtime", "USER 65532:65532", "USER kascade", "runs as kascade", "USER"),
    ("runtime", "USER 65532:65532", "USER 0", "runs as 0", "USER"),
    ("runtime", BASE, "python:3.11-slim-bookworm", "not pinned", r"FROM \S+ AS"),
    ("operator", "FROM ${PYTHON_IMAGE}\n", "FROM python:latest\n", "never latest", "FROM py"),
    ("operator", "FROM ${PYTHON_IMAGE}\n", "FROM debian:12.8\n", "must be the same", "FROM deb"),
    ("operator", 'CMD ["operator"]', 'CMD ["operatr"]', "no command `operatr`", "CMD"),
    ("operator", 'ENTRYPOINT ["kascade"]', 'ENTRYPOINT ["kctl"]', "[project.scripts]", "ENTRY"),
    ("operator", "EXPOSE 8080 8081", "EXPOSE 8080", "chart expects", "EXPOSE"),
    ("operator", 'CMD ["operator"]', "CMD operator", "exec form", "CMD"),
    (
        "runtime",
        'ENTRYPOINT ["kascade", "task", "exec"]',
        'ENTRYPOINT ["kascade"]',
        "ENTRYPOINT must be ['kascade', 'task', 'exec']",
        "ENTRYPOINT",
    ),
    ("runtime", "WORKDIR /kascade/work", "WORKDIR /work", "work volume", "WORKDIR /work"),
    (
        "runtime",
        "USER 65532",
        "RUN apt-get update && apt-get install -y gcc\nUSER 65532",
        "apt-get, gcc",
        "RUN apt-get",
    ),
    (
        "runtime",
        "USER 65532",
        "RUN python -m pip install wheel\nUSER 65532",
        "-m pip",
        "RUN python -m pip install w",
    ),
    ("operator", "builder /opt/venv /opt/venv", "builder /src /src", "only /opt/venv", "COPY --"),
    ("operator", "    PYTHONUNBUFFERED=1 \\\n", "", "PYTHONUNBUFFERED=1", r"FROM \S+$"),
    (
        "operator",
        "ARG VERSION=0.1.0",
        "ARG VERSION=9.9",
        "pyproject.toml says '0.1.0'",
        "FROM .*}$",
    ),
    ("runtime", "-w /wheels", "-w /dist", "does not install the wheel", r"FROM \S+ AS"),
    ("runtime", "kascade ./operator/kascade", "kascade ./", "operator/kascade was not", "RUN"),
    ("runtime", "WORKDIR /src", "WORKDIR /src\nCOPY x.toml ./", "`x.toml` is not in", "COPY x"),
]


@pytest.mark.parametrize(
    ("image", "old", "new", "says", "line_of"),
    BREAKAGES,
    ids=[f"{b[0]}: {b[3]}" for b in BREAKAGES],
)
def test_every_rule_catches_its_breakage_and_names_the_line(image, old, new, says, line_of):
    text = DOCKERFILES[image].read_text(encoding="utf-8")
    old = load(image).global_args["PYTHON_IMAGE"] if old == BASE else old
    assert old in text, f"the breakage no longer applies to {image}: {old!r}"
    broken = text.replace(old, new, 1)
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if re.match(line_of, t))
    df = parse_dockerfile(broken, str(DOCKERFILES[image].relative_to(ROOT)))
    problems = all_problems(image, df, Context.of(DOCKERFILES[image]))
    assert any(says in p and p.startswith(f"{df.at(line)}:") for p in problems), problems


def test_a_source_excluded_by_dockerignore_is_reported_at_its_copy_line():
    df = load("runtime")
    context = Context.of(DOCKERFILES["runtime"], extra=("operator/kascade/cli",))
    line = next(c.line for c in df.stages[0].all("COPY") if "operator/kascade" in c.value)
    problems = copy_problems(df, context)
    at_line = [p for p in problems if p.startswith(f"{df.at(line)}: COPY source")]
    assert at_line, problems
    assert "excluded by .dockerignore line 0 (`operator/kascade/cli`)" in at_line[0]


def rebuild_builder_copies(df: Dockerfile, context: Context, rootfs: Path) -> Path:
    """Lay out what the builder stage's COPY instructions put in the image under `rootfs`,
    from the filtered context only; returns the WORKDIR of its first RUN there."""
    builder, workdir = df.stages[0], "/"
    for ins in builder.instructions:
        if ins.keyword == "RUN":
            break
        if ins.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, substitute(ins.value, builder.scope(ins)))
        if ins.keyword != "COPY":
            continue
        for source, target, is_folder in copy_targets(copy_of(ins, builder), workdir):
            for name in context.files(source):
                inside = posixpath.relpath(name, source) if is_folder else "."
                placed = rootfs / posixpath.normpath(posixpath.join(target, inside)).lstrip("/")
                placed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / name, placed)
    return rootfs / workdir.lstrip("/")


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_builder_stage_copies_enough_to_build_the_wheel(image, tmp_path):
    df = load(image)
    workdir = rebuild_builder_copies(df, Context.of(DOCKERFILES[image]), tmp_path / "rootfs")
    run = df.stages[0].all("RUN")[0]
    wheel_command = next(c for c in segments(shell_words(run.value)) if "wheel" in c)
    out = tmp_path / "wheels"
    argv = [sys.executable if w == "python" else w for w in wheel_command]
    argv[argv.index("-w") + 1] = str(out)
    # Run as the Dockerfile runs it (build isolation: setuptools from pyproject's
    # [build-system]); the local pip cache is kept, so only a first run downloads.
    built = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, f"{df.at(run.line)}: {' '.join(wheel_command)}\n{built.stderr}"
    (wheel,) = out.glob("kascade-*.whl")
    info = f"kascade-{PYPROJECT['project']['version']}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
    assert {"kascade/cli/main.py", "kascade/runtime/__main__.py", "kascade/py.typed"} <= names
    assert {name.split("/")[0] for name in names} == {"kascade", info}
    for script, target in PYPROJECT["project"]["scripts"].items():
        assert f"{script} = {target}" in entry_points, entry_points
    readme = (ROOT / PYPROJECT["project"]["readme"]).read_text(encoding="utf-8")
    assert readme.splitlines()[0] in metadata, "the wheel lost its long description (README)"
    for requirement in ("duckdb", "kopf", "click"):
        assert f"Requires-Dist: {requirement}" in metadata

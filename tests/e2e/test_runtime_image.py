"""The runtime image built here without Docker (hack/image/build.sh) keeps the contract of
runtime-image/Dockerfile, the one users build: the same user, entrypoint, work dir and
environment, a venv holding this kascade, no pip; and the Job the operator makes agrees
with both. The image's pods are run for real by test_real_node.py."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from kascade import __version__
from kascade.operator import jobs
from tests.integration.cluster import ROOT

DOCKERFILE = ROOT / "runtime-image" / "Dockerfile"


@pytest.fixture(scope="module")
def archive() -> Path:
    built = subprocess.run(
        [str(ROOT / "hack" / "image" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=30 * 60,
        check=False,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
    printed = subprocess.run(
        [str(ROOT / "hack" / "image" / "build.sh"), "--print-archive"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(printed.stdout.strip())


def final_stage() -> dict[str, Any]:
    """USER, WORKDIR, ENTRYPOINT, ENV and the base image of the Dockerfile's last stage."""
    parser = DockerfileParser(path=str(DOCKERFILE), env_replace=True, parent_env={"PATH": ""})
    stage: dict[str, Any] = {}
    for instruction in parser.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "FROM":
            stage = {"FROM": value}
        elif kind in ("USER", "WORKDIR"):
            stage[kind] = value
        elif kind == "ENTRYPOINT":
            stage[kind] = json.loads(value)
    stage["ENV"] = dict(parser.envs)
    return stage


def image_parts(archive: Path) -> tuple[dict[str, Any], list[str]]:
    """The image config and its layer members' names, from the image archive."""
    with tarfile.open(archive) as outer:
        (manifest,) = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        return config, manifest["Layers"]


def read_layers(archive: Path, layers: list[str]) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Every member of the image's layers (the later layer wins), with the contents of
    the few files these tests read."""
    wanted = re.compile(r"^(etc/passwd|opt/venv/pyvenv\.cfg|.*kascade-.*\.dist-info/METADATA)$")
    found: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(archive) as outer:
        for layer in layers:
            stream = outer.extractfile(layer)
            assert stream is not None
            with tarfile.open(fileobj=stream, mode="r|gz") as inner:
                for member in inner:
                    name = member.name.removeprefix("./")
                    data = b""
                    if member.isfile() and wanted.match(name):
                        data = inner.extractfile(member).read()  # type: ignore[union-attr]
                    found[name] = (member, data)
    return found


def test_the_image_config_is_the_dockerfiles(archive: Path) -> None:
    config, _ = image_parts(archive)
    stage = final_stage()
    settings = config["config"]
    assert settings["User"] == stage["USER"] == f"{jobs.RUNTIME_USER}:{jobs.RUNTIME_USER}"
    assert settings["Entrypoint"] == stage["ENTRYPOINT"] == list(jobs.TASK_COMMAND)
    assert settings["WorkingDir"] == stage["WORKDIR"] == jobs.WORK_DIR
    env = dict(item.split("=", 1) for item in settings["Env"])
    for name, value in stage["ENV"].items():
        if name == "PATH":  # the Dockerfile puts the venv first on its base's PATH
            assert env["PATH"].startswith("/opt/venv/bin:")
        else:
            assert env[name] == value, name
    assert settings["Labels"]["org.opencontainers.image.version"] == __version__
    assert config["os"] == "linux"


def test_the_image_holds_this_kascade_as_the_dockerfile_installs_it(archive: Path) -> None:
    _, layers = image_parts(archive)
    files = read_layers(archive, layers)
    # the user and the work dir of the Dockerfile's RUN groupadd/useradd/install -d
    passwd = files["etc/passwd"][1].decode()
    assert re.search(rf"^kascade:x:{jobs.RUNTIME_USER}:{jobs.RUNTIME_USER}:", passwd, re.M)
    work, _ = files[jobs.WORK_DIR.lstrip("/")]
    assert work.isdir()
    assert (work.uid, work.gid, work.mode & 0o777) == (jobs.RUNTIME_USER, jobs.RUNTIME_USER, 0o750)
    # a venv at /opt/venv with this version of kascade and its command, without pip
    assert "opt/venv/bin/kascade" in files
    (metadata,) = [
        data for name, (_, data) in files.items() if re.search(r"/kascade-[^/]*/METADATA$", name)
    ]
    assert f"Version: {__version__}" in metadata.decode()
    assert not [name for name in files if re.search(r"site-packages/pip/", name)]
    # the Python minor version of the Dockerfile's base image
    base = DockerfileParser(path=str(DOCKERFILE)).baseimage
    minor = re.search(r"python:(\d+\.\d+)", base)
    assert minor is not None, base
    venv = files["opt/venv/pyvenv.cfg"][1].decode()
    assert re.search(rf"^version = {re.escape(minor.group(1))}\.\d+$", venv, re.M), venv

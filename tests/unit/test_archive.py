"""The project archive: packing stays inside the project (links out, dangling links and
special files are named, never followed or read), unpacking is bounded."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kascade.contract.archive import (
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    ArchiveError,
    pack,
    project_files,
    unpack,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "models" / "a.sql").write_text("select 1")
    (root / "scripts" / "s").mkdir(parents=True)
    (root / "scripts" / "s" / "__main__.py").write_text("print(1)")
    (tmp_path / "outside.txt").write_text("secret")
    return root


def test_a_project_packs_and_unpacks_the_same_files(project: Path, tmp_path: Path):
    (project / "models" / "b.sql").symlink_to("a.sql")  # a link inside the project
    packed = pack(project)
    assert pack(project) == packed  # deterministic
    unpack(packed, tmp_path / "out")
    assert (tmp_path / "out" / "models" / "b.sql").read_text() == "select 1"
    assert sorted(p.as_posix() for p in project_files(project)) == [
        "models/a.sql",
        "models/b.sql",
        "scripts/s/__main__.py",
    ]


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: (p / "models" / "leak.sql").symlink_to("../../outside.txt"), "links outside"),
        (lambda p: (p / "models" / "root").symlink_to("/"), r"links outside the project \(to /\)"),
        (lambda p: (p / "models" / "gone.sql").symlink_to("nowhere.sql"), "dangling symbolic"),
        (lambda p: os.mkfifo(p / "models" / "pipe.sql"), "is a FIFO, not a regular file"),
    ],
)
def test_what_a_project_cannot_hold_is_named_not_followed(project: Path, make, said: str):
    make(project)
    with pytest.raises(ArchiveError, match=said) as caught:
        pack(project)
    assert "models/" in str(caught.value)


def test_project_push_names_a_fifo_and_does_not_hang(project: Path):
    os.mkfifo(project / "models" / "pipe.sql")
    done = subprocess.run(
        [sys.executable, "-m", "kascade", "project", "push", str(project), "--name", "p"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": "/nonexistent"},
    )
    assert done.returncode == 1
    assert "project path models/pipe.sql is a FIFO" in done.stderr
    assert "Traceback" not in done.stderr


def _archive(members: dict[str, bytes], kind: bytes = tarfile.REGTYPE) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_archive_that_unpacks_to_too_much_is_refused(tmp_path: Path):
    bomb = _archive({"big.csv": b"\0" * (4 * 1024 * 1024)})
    assert len(bomb) < 10_000  # small on the wire
    with pytest.raises(ArchiveError, match="unpacks to more than 1048576 bytes"):
        unpack(bomb, tmp_path / "out", limit=1024 * 1024)
    assert not (tmp_path / "out").exists()
    assert 16 * 1024 * 1024 <= MAX_UNPACKED_BYTES <= 256 * 1024 * 1024


def test_an_archive_of_too_many_files_is_refused(tmp_path: Path):
    many = _archive({f"f{i}": b"" for i in range(MAX_MEMBERS + 1)})
    with pytest.raises(ArchiveError, match=f"holds {MAX_MEMBERS + 1} files"):
        unpack(many, tmp_path / "out")


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b"])
def test_an_entry_that_would_land_outside_is_refused(tmp_path: Path, name: str):
    with pytest.raises(ArchiveError, match="unsafe entry"):
        unpack(_archive({name: b"x"}), tmp_path / "out")


def test_a_link_entry_is_refused(tmp_path: Path):
    with pytest.raises(ArchiveError, match="unsafe entry"):
        unpack(_archive({"link": b""}, tarfile.SYMTYPE), tmp_path / "out")


@pytest.mark.parametrize("packed", [b"", b"not gzip", None])
def test_a_broken_archive_is_named(tmp_path: Path, project: Path, packed: bytes | None):
    data = pack(project)[:40] if packed is None else packed
    with pytest.raises(ArchiveError, match="cannot be unpacked"):
        unpack(data, tmp_path / "out")

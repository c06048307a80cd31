"""A project packed for the cluster: a deterministic tar.gz stored in a ConfigMap by
`kascade project push`, unpacked by the operator (to plan) and by each task (to run)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from kascade.runtime.errors import CannotStart

ARCHIVE_KEY = "project.tar.gz"
# A ConfigMap holds at most 1 MiB; leave room for its metadata.
MAX_ARCHIVE_BYTES = 1_000_000
_SKIPPED_DIRS = frozenset(
    {
        "__pycache__",
        "target",
        "dbt_packages",
        "logs",
        "node_modules",
        ".git",
        ".kascade",
        ".venv",
    }
)
_SKIPPED_SUFFIXES = (".duckdb", ".duckdb.wal", ".pyc")


class ArchiveError(CannotStart):
    """A project that cannot be packed or unpacked; the message says why."""


def project_files(root: Path) -> list[Path]:
    """The files that make up a project, in a stable order (hidden files, caches, build
    output and local warehouses left out)."""
    files: list[Path] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in _SKIPPED_DIRS and not d.startswith(".")
        )
        for name in sorted(names):
            if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                continue
            files.append(Path(directory, name).relative_to(root))
    return files


def pack(root: Path) -> bytes:
    """The project as a deterministic tar.gz (same files, same bytes)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative in project_files(root):
            data = (root / relative).read_bytes()
            info = tarfile.TarInfo(relative.as_posix())
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    packed = buffer.getvalue()
    if len(packed) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(
            f"project {root} packs to {len(packed)} bytes; a ConfigMap holds at most "
            f"{MAX_ARCHIVE_BYTES} (leave data files out of the project)"
        )
    return packed


def digest(packed: bytes) -> str:
    """A short content hash of a packed project."""
    return hashlib.sha256(packed).hexdigest()[:16]


def unpack(packed: bytes, destination: Path) -> None:
    """Unpack into `destination`; members that would land outside it are refused."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            for member in tar.getmembers():
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts or not member.isfile():
                    raise ArchiveError(f"project archive holds an unsafe entry {member.name!r}")
            tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArchiveError(f"project archive cannot be unpacked: {err}") from err

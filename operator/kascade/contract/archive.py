"""A project packed for the cluster: a deterministic tar.gz stored in a ConfigMap by
`kascade project push`, unpacked by the operator (to plan) and by each task (to run).

Packing stays inside the project: a symbolic link is followed only when it points at a
file or folder of the project; a link out of it, a dangling link, a FIFO, a socket or a
device is refused, naming the path. Unpacking is bounded (size and number of files), so
a small archive cannot fill a disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from kascade.contract import ContractError

ARCHIVE_KEY = "project.tar.gz"
# Members kascade adds to a project (dbt's parse state): never one of the project's files.
RESERVED_DIR = ".kascade-push"
# A ConfigMap holds at most 1 MiB; leave room for its metadata.
MAX_ARCHIVE_BYTES = 1_000_000
# What an archive may unpack to: far above any project that packs into a ConfigMap
# (text compresses about tenfold), far below what would hurt a node.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 20_000
_CHUNK = 1 << 20
_SKIPPED_DIRS = frozenset(
    {
        "__pycache__",
        "target",
        "logs",
        "node_modules",
        ".git",
        ".kascade",
        ".venv",
    }
)
_SKIPPED_SUFFIXES = (".duckdb", ".duckdb.wal", ".pyc")


class ArchiveError(ContractError):
    """A project that cannot be packed or unpacked; the message says why and names the path."""


def project_files(root: Path) -> list[Path]:
    """The files that make up a project, in a stable order (hidden files, caches, build
    output and local warehouses left out); ArchiveError names a path that cannot be packed."""
    real_root = os.path.realpath(root)
    files: list[Path] = []
    _walk(Path(root), PurePosixPath(), real_root, {real_root}, files)
    return files


def _walk(
    folder: Path, relative: PurePosixPath, real_root: str, seen: set[str], files: list[Path]
) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as err:
        raise ArchiveError(f"cannot read folder {folder}: {err.strerror or err}") from err
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        path = Path(entry.path)
        shown = relative / name
        if entry.is_symlink():
            target = _link_target(path, shown, real_root)
            mode = os.stat(target).st_mode
        else:
            target = entry.path
            mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if name in _SKIPPED_DIRS:
                continue
            real = os.path.realpath(target)
            if real in seen:  # a link back up the tree: its files are packed once already
                continue
            _walk(path, shown, real_root, seen | {real}, files)
        elif stat.S_ISREG(mode):
            if not name.endswith(_SKIPPED_SUFFIXES):
                files.append(Path(shown))
        else:
            raise ArchiveError(
                f"project path {shown} is {_kind(mode)}, not a regular file; "
                "remove it or move it out of the project"
            )


def _link_target(path: Path, shown: PurePosixPath, real_root: str) -> str:
    """Where a symbolic link of the project leads; ArchiveError when out of the project or
    nowhere."""
    target = os.path.realpath(path)
    if not os.path.lexists(target) or not os.path.exists(path):
        raise ArchiveError(
            f"project path {shown} is a dangling symbolic link (to {os.readlink(path)})"
        )
    if target != real_root and not target.startswith(real_root + os.sep):
        raise ArchiveError(
            f"project path {shown} links outside the project (to {target}); "
            "copy the file into the project instead"
        )
    return target


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def pack(root: Path, extra: Mapping[str, bytes] | None = None) -> bytes:
    """The project as a deterministic tar.gz (same files, same bytes), followed by the
    `extra` members, which live under `.kascade-push/` (a folder the project's own files never
    come from, since hidden files are left out)."""
    if not root.is_dir():
        raise ArchiveError(f"project directory {root} does not exist")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative in project_files(root):
            try:
                data = (root / relative).read_bytes()
            except OSError as err:
                raise ArchiveError(f"cannot read {relative}: {err.strerror or err}") from err
            _add(tar, relative.as_posix(), data)
            if buffer.tell() > MAX_ARCHIVE_BYTES:
                break
        for name, data in sorted((extra or {}).items()):
            if not name.startswith(RESERVED_DIR + "/"):
                raise ValueError(f"an extra archive member lives under {RESERVED_DIR}/: {name}")
            _add(tar, name, data)
    packed = buffer.getvalue()
    if len(packed) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(
            f"project {root} packs to more than {MAX_ARCHIVE_BYTES} bytes; a ConfigMap holds "
            f"at most {MAX_ARCHIVE_BYTES} (leave data files out of the project)"
        )
    return packed


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def digest(packed: bytes) -> str:
    """A short content hash of a packed project."""
    return hashlib.sha256(packed).hexdigest()[:16]


def _gunzip(packed: bytes, limit: int) -> bytes:
    """The decompressed archive; ArchiveError once it grows past `limit` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    data = packed
    try:
        while True:
            chunk = inflater.decompress(data, _CHUNK)
            size += len(chunk)
            if size > limit:
                raise ArchiveError(f"project archive unpacks to more than {limit} bytes")
            parts.append(chunk)
            data = inflater.unconsumed_tail
            if not data:
                break
        parts.append(inflater.flush())
    except zlib.error as err:
        raise ArchiveError(f"project archive cannot be unpacked: {err}") from err
    if not inflater.eof:
        raise ArchiveError("project archive cannot be unpacked: it is cut short")
    return b"".join(parts)


def unpack(packed: bytes, destination: Path, limit: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack into `destination`; members that would land outside it, that are not plain
    files, or that add up to more than `limit` bytes are refused."""
    raw = _gunzip(packed, limit)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise ArchiveError(
                    f"project archive holds {len(members)} files; the limit is {MAX_MEMBERS}"
                )
            for member in members:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts or not member.isfile():
                    raise ArchiveError(f"project archive holds an unsafe entry {member.name!r}")
            destination.mkdir(parents=True, exist_ok=True)
            # Written member by member with plain modes rather than tar.extractall(filter=...):
            # the checks above already refuse what that filter would, and its `filter`
            # argument is missing from Pythons before 3.11.4 (Debian 12's is 3.11.2).
            for member in members:
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveError(f"project archive holds an unsafe entry {member.name!r}")
                target = destination.joinpath(*PurePosixPath(member.name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArchiveError(f"project archive cannot be unpacked: {err}") from err

"""Projects as the operator reads them: unpacked from their ConfigMaps (written by
`kascade project push`) into the state dir, one folder per content hash."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from kascade.contract.archive import ARCHIVE_KEY, ArchiveError, digest, unpack
from kascade.engine.errors import KascadeError
from kascade.operator.kube import Kube
from kascade.operator.labels import MANAGED_BY, MANAGER

PROJECT_COMPONENT = "project"
DIGEST_ANNOTATION = "kascade.io/project-digest"


class ProjectCache:
    """Projects unpacked from their ConfigMaps, one folder per content hash."""

    def __init__(self, kube: Kube, state_dir: Path) -> None:
        self.kube = kube
        self.root = state_dir / "projects"

    async def fetch(self, namespace: str, config_map: str | None) -> Path:
        """The project folder of a ConfigMap (an empty project when the Flow names none)."""
        if config_map is None:
            empty = self.root / "empty"
            empty.mkdir(parents=True, exist_ok=True)
            return empty
        packed = await self.kube.config_map_binary(namespace, config_map, ARCHIVE_KEY)
        if packed is None:
            raise KascadeError(
                f"project ConfigMap `{config_map}` (key {ARCHIVE_KEY}) not found in namespace "
                f"{namespace}; push it with `kascade project push DIR --name {config_map}`"
            )
        folder = self.root / digest(packed)
        if not folder.is_dir():
            partial = folder.with_suffix(".partial")
            try:
                unpack(packed, partial)
            except ArchiveError as err:
                raise KascadeError(f"project ConfigMap `{config_map}`: {err}") from err
            partial.rename(folder)
        return folder


def project_config_map(name: str, packed: bytes) -> dict[str, Any]:
    """The ConfigMap `kascade project push` writes: the packed project, labelled so the
    operator watches it, with its digest."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: MANAGER, "app.kubernetes.io/component": PROJECT_COMPONENT},
            "annotations": {DIGEST_ANNOTATION: digest(packed)},
        },
        "binaryData": {ARCHIVE_KEY: base64.b64encode(packed).decode("ascii")},
    }

"""`podSpecPatch`: a Flow's partial pod spec merged into the pod spec kascade builds, with
Kubernetes' strategic-merge rules for core/v1 PodSpec (what `kubectl patch` and Argo's
podSpecPatch do): maps merge key by key and `null` removes a key; the lists core/v1
declares with a merge key (containers by name, env by name, volumeMounts by mountPath,
...) merge element by element, an element with `$patch: delete` removes its match, and a
list or map with `$patch: replace` replaces the original; every other list is replaced.

No Python library implements strategic merge (Go's k8s.io/apimachinery strategicpatch
does, reading the same merge keys from the Go types); the keys below are core/v1's
`patchMergeKey` tags of the PodSpec fields a task pod can hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DIRECTIVE = "$patch"
_CONTAINER_KEYS: dict[str, str] = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
}
_POD_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
MERGE_KEYS: dict[tuple[str, ...], str] = {
    **{(field,): key for field, key in _POD_KEYS.items()},
    **{
        (containers, field): key
        for containers in ("containers", "initContainers", "ephemeralContainers")
        for field, key in _CONTAINER_KEYS.items()
    },
}
"""Merge keys by path of list fields (list elements do not add to the path)."""


class PodPatchError(ValueError):
    """A podSpecPatch that cannot be applied; the message names the place."""


def patch_pod_spec(spec: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec with the patch merged in (neither argument is changed)."""
    return _merge_map(spec, patch, ())


def _merge_map(
    original: Mapping[str, Any], patch: Mapping[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    if patch.get(DIRECTIVE) == "replace":
        return {key: value for key, value in patch.items() if key != DIRECTIVE}
    merged = dict(original)
    for key, value in patch.items():
        if key == DIRECTIVE:
            raise PodPatchError(f"{_where(path)}: unknown $patch {value!r} for a map")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(original.get(key), Mapping):
            merged[key] = _merge_map(original[key], value, (*path, key))
        elif isinstance(value, list) and isinstance(original.get(key), list):
            merged[key] = _merge_list(original[key], value, (*path, key))
        else:
            merged[key] = _clean(value, (*path, key))
    return merged


def _merge_list(original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = MERGE_KEYS.get(path)
    if any(isinstance(item, Mapping) and item.get(DIRECTIVE) == "replace" for item in patch):
        return [
            _clean(item, path)
            for item in patch
            if not (isinstance(item, Mapping) and item.get(DIRECTIVE) == "replace")
        ]
    if key is None:
        return [_clean(item, path) for item in patch]
    merged = list(original)
    for item in patch:
        if not isinstance(item, Mapping) or key not in item:
            raise PodPatchError(f"{_where(path)}: every element needs its merge key {key!r}")
        found = next(
            (i for i, old in enumerate(merged) if isinstance(old, Mapping)
             and old.get(key) == item[key]),
            None,
        )  # fmt: skip
        if item.get(DIRECTIVE) == "delete":
            if found is not None:
                del merged[found]
        elif DIRECTIVE in item:
            raise PodPatchError(f"{_where(path)}: unknown $patch {item[DIRECTIVE]!r}")
        elif found is None:
            merged.append(_clean(item, path))
        else:
            merged[found] = _merge_map(merged[found], item, path)
    return merged


def _clean(value: Any, path: tuple[str, ...]) -> Any:
    """A patch value taken as it is: without directives, which make no sense there."""
    if isinstance(value, Mapping):
        if DIRECTIVE in value:
            raise PodPatchError(
                f"{_where(path)}: $patch {value[DIRECTIVE]!r} has nothing to act on"
            )
        return {k: _clean(v, (*path, k)) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(item, path) for item in value]
    return value


def _where(path: tuple[str, ...]) -> str:
    return "podSpecPatch" + "".join(f".{part}" for part in path)

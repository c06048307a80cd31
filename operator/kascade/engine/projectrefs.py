"""The dependencies of every resource, as dbt resolves them: a ref() or source() without a
package looks in the root project first, then in the resource's own package, then in any
installed package; `ref('pkg', 'x')` only in `pkg`. Unknown and disabled targets are
problems naming the resource, file and line.

A resource with calls only dbt's parse can tell (Computed) takes its dependencies from a
fresh target/manifest.json (engine.dbtmanifest); without one, it is a problem that says how
to get one. Never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kascade.engine.dbtmanifest import MANIFEST, Manifest, fresh_manifest
from kascade.engine.projectreader import Catalog
from kascade.engine.resources import Kind, Resource, tags_of, unique_id
from kascade.engine.sqlcalls import Ref, Source


@dataclass(frozen=True)
class Resolver:
    """Resolves refs and sources over the catalog of every package."""

    catalog: Catalog
    packages: Sequence[str]
    """Installed package names (the root project aside), in reading order."""

    def parents(self, resource: Resource) -> list[str]:
        """The unique ids a resource depends on; unknown targets are problems."""
        found = [self._ref(resource, ref) for ref in resource.refs]
        found += [self._source(resource, source) for source in resource.sources]
        return list(dict.fromkeys(uid for uid in found if uid is not None))

    def _order(self, resource: Resource) -> list[str]:
        root = self.catalog.root
        own = [resource.package] if resource.package != root else []
        return [root, *own, *(p for p in self.packages if p != resource.package)]

    def _ref(self, resource: Resource, ref: Ref) -> str | None:
        problems = self.catalog.problems
        where = f"{resource.path}:{ref.line}" if ref.line else resource.path
        known = {self.catalog.root, *self.packages}
        if ref.package is not None and ref.package not in known:
            installed = ", ".join(self.packages) or "none"
            problems.append(
                f"{resource.label} refs `{ref.name}` in unknown package `{ref.package}` "
                f"(this project is `{self.catalog.root}`; installed packages: {installed}) "
                f"({where})"
            )
            return None
        order = [ref.package] if ref.package is not None else self._order(resource)
        for package in order:
            target = self.catalog.by_name.get((package, ref.name))
            if target is not None:
                return target.unique_id
        for package in order:
            disabled = self.catalog.disabled.get((package, ref.name))
            if disabled is not None:
                problems.append(
                    f"{resource.label} refs disabled {disabled.kind.value} `{ref.name}` "
                    f"({disabled.path} sets enabled: false) ({where})"
                )
                return None
        scope = f"`{ref.package}`.`{ref.name}`" if ref.package else f"`{ref.name}`"
        problems.append(f"{resource.label} refs unknown model {scope} ({where})")
        return None

    def _source(self, resource: Resource, source: Source) -> str | None:
        for package in self._order(resource):
            uid = unique_id(Kind.SOURCE, package, source.source, source.table)
            if uid in self.catalog.enabled:
                return uid
        where = f"{resource.path}:{source.line}" if source.line else resource.path
        self.catalog.problems.append(
            f"{resource.label} uses source `{source.source}.{source.table}`, which no "
            f"properties file defines (sources: in a .yml file) ({where})"
        )
        return None


def take_from_manifest(
    root: Path,
    catalog: Catalog,
    parents: dict[str, list[str]],
    folders: Iterable[str],
    files: Iterable[str],
) -> None:
    """Dependencies (and configs) of resources with computed calls from dbt's manifest when
    it is fresh; a problem naming each such resource otherwise."""
    unresolved = [r for r in catalog.enabled.values() if r.unresolved]
    if not unresolved:
        return
    manifest = fresh_manifest(root, folders, files)
    if isinstance(manifest, Manifest) and manifest.project_name not in (None, catalog.root):
        manifest = f"{MANIFEST} is of project `{manifest.project_name}`"
    for resource in unresolved:
        node = manifest.nodes.get(resource.unique_id) if isinstance(manifest, Manifest) else None
        if node is None:
            why = manifest if isinstance(manifest, str) else f"{MANIFEST} lacks it"
            catalog.problems.append(_needs_parse(resource, why))
            continue
        unknown = [uid for uid in node.depends_on if uid not in catalog.enabled]
        if unknown:
            catalog.problems.append(
                _needs_parse(resource, f"{MANIFEST} names `{unknown[0]}`, which is not defined")
            )
            continue
        parents[resource.unique_id] = list(node.depends_on)
        if any(item.what == "config" for item in resource.unresolved):
            config = {**resource.config, **node.config, "tags": list(node.tags)}
            catalog.enabled[resource.unique_id] = replace(
                resource, config=config, tags=tags_of(config)
            )


def _needs_parse(resource: Resource, why: str) -> str:
    first = resource.unresolved[0]
    where = f"{resource.path}:{first.line}" if first.line else resource.path
    what = "config" if first.what == "config" else first.what
    verb = "is" if what == "config" else "are"
    return (
        f"the {what} of {resource.label} {verb} computed ({where}: {first.message}): "
        f"run `dbt parse` so that {MANIFEST} tells them ({why}), or write the "
        f"{'value' if what == 'config' else 'ref'} literally"
    )

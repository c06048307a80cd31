"""dbt's YAML selectors (`selectors.yml` at the project root), parsed as dbt parses them:

```yaml
selectors:
  - name: nightly
    default: true              # what `dbt build` (and a node without include) selects
    definition:
      union:
        - "tag:nightly"        # a string is one criterion (no spaces, no commas)
        - method: fqn          # key-value form, with graph operators and indirect selection
          value: stg_orders
          children: true
          indirect_selection: cautious
        - intersection: [tag:a, tag:b]
        - method: selector     # another selector, defined above this one
          value: base
        - exclude: [tag:deprecated]
```

Values are rendered with the Flow's vars, as dbt renders selectors.yml with `--vars`.
Every problem names selectors.yml and the selector: dbt refuses the whole project then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kascade.engine.dbtconfig import ConfigRenderer, ProjectRoot, load_yaml
from kascade.engine.dbtvars import Vars
from kascade.engine.errors import SelectorError
from kascade.engine.selectorspec import (
    Combination,
    Criterion,
    Indirect,
    SetOperation,
    Spec,
    method_of,
    parse_criterion,
)

FILE = "selectors.yml"


@dataclass(frozen=True)
class YamlSelectors:
    """The selectors of selectors.yml by name, and the default one."""

    specs: Mapping[str, Spec] = field(default_factory=dict)
    default: str | None = None


def read_selectors(root: Path, vars: Vars, problems: list[str]) -> YamlSelectors:
    """The project's YAML selectors; problems name the file and the selector."""
    path = root / FILE
    problem = ProjectRoot(root).file_problem(str(path), FILE)
    if problem is not None:
        problems.append(problem)
        return YamlSelectors()
    if not path.is_file():
        return YamlSelectors()
    document = load_yaml(path, problems, FILE)
    if document is None:
        return YamlSelectors()
    entries = document.get("selectors") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        problems.append(f"{FILE}: expected `selectors:`, a list of selectors")
        return YamlSelectors()
    renderer = ConfigRenderer(vars, FILE, problems)
    specs: dict[str, Spec] = {}
    default: str | None = None
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or "definition" not in entry:
            problems.append(f"{FILE}: selectors[{index}] needs a `name` and a `definition`")
            continue
        try:
            definition = renderer.render(entry["definition"], ("selectors", name, "definition"))
            specs[name] = _Parser(specs).definition(definition, root_level=True)
        except SelectorError as err:
            problems.append(f"{FILE}: selector `{name}`: {err}")
            continue
        if entry.get("default") is True:
            if default is not None:
                problems.append(
                    f"{FILE}: selectors `{default}` and `{name}` are both `default: true`; "
                    "one default at most"
                )
            else:
                default = name
    return YamlSelectors(specs, default)


@dataclass(frozen=True)
class _Parser:
    """Parses one definition; `known`: the selectors defined above it."""

    known: Mapping[str, Spec]

    def definition(self, value: Any, *, root_level: bool = False) -> Spec:
        if isinstance(value, str):
            return parse_criterion(value, allow_selector=False)
        if not isinstance(value, dict):
            raise SelectorError(
                f"a definition is a string, a mapping, `union:` or `intersection:`, not "
                f"{type(value).__name__}"
            )
        for operation in (SetOperation.UNION, SetOperation.INTERSECTION):
            if operation.value in value:
                if root_level and len(value) > 1:
                    keys = ", ".join(str(key) for key in value)
                    raise SelectorError(
                        "a root definition has a single `union` or `intersection` key "
                        f"(found: {keys})"
                    )
                return self._combination(operation, value)
        return self._mapping(value)

    def _combination(self, operation: SetOperation, value: dict[str, Any]) -> Spec:
        parts: list[Spec] = []
        excluded: Spec | None = None
        for item in _listed(value, operation.value):
            if isinstance(item, dict) and "exclude" in item:
                if excluded is not None:
                    raise SelectorError(f"`{operation.value}` has more than one `exclude`")
                excluded = self._exclusions(item)
            else:
                parts.append(self.definition(item))
        combined = Combination(operation, tuple(parts))
        if excluded is None:
            return combined
        return Combination(SetOperation.DIFFERENCE, (combined, excluded))

    def _exclusions(self, value: dict[str, Any]) -> Spec:
        parts = tuple(self.definition(item) for item in _listed(value, "exclude"))
        return parts[0] if len(parts) == 1 else Combination(SetOperation.UNION, parts)

    def _mapping(self, value: dict[str, Any]) -> Spec:
        if len(value) == 1:
            key, item = next(iter(value.items()))
            return _criterion(value, {"method": key, "value": item})
        if value.get("method") == "selector":
            name = value.get("value")
            if name not in self.known:
                above = ", ".join(self.known) or "none"
                raise SelectorError(f"selector `{name}` is not defined above it (defined: {above})")
            return self.known[str(name)]
        if "method" in value and "value" in value:
            base = _criterion(value, {k: v for k, v in value.items() if k != "exclude"})
            if "exclude" not in value:
                return base
            return Combination(SetOperation.DIFFERENCE, (base, self._exclusions(value)))
        keys = ", ".join(str(key) for key in value) or "none"
        raise SelectorError(f"expected one key, or `method` and `value` (found: {keys})")


def _listed(value: dict[str, Any], key: str) -> list[Any]:
    items = value[key]
    if not isinstance(items, list):
        raise SelectorError(f"`{key}` must be a list")
    return items


def _criterion(raw: Any, value: dict[str, Any]) -> Criterion:
    method = str(value["method"])
    if method in ("selector", "exclude"):
        raise SelectorError(
            f"`{method}` here must be written {{method: selector, value: NAME}}"
            if method == "selector"
            else "`exclude` belongs in a `union`, an `intersection` or beside `method`"
        )
    text = _text(value["value"])
    name, key = method_of(f"{method}:{text}", method, text)
    indirect = str(value.get("indirect_selection", Indirect.EAGER.value))
    if indirect not in {mode.value for mode in Indirect}:
        known = ", ".join(mode.value for mode in Indirect)
        raise SelectorError(f"indirect_selection `{indirect}` is not one of {known}")
    children, childrens_parents = bool(value.get("children")), bool(value.get("childrens_parents"))
    if children and childrens_parents:
        raise SelectorError('the "@" (childrens_parents) and "+" (children) are incompatible')
    return Criterion(
        raw=str(raw),
        method=name,
        value=text,
        key=key,
        parents=bool(value.get("parents")),
        parents_depth=_depth(value.get("parents_depth"), "parents_depth"),
        children=children,
        children_depth=_depth(value.get("children_depth"), "children_depth"),
        childrens_parents=childrens_parents,
        indirect=Indirect(indirect),
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        raise SelectorError("a criterion needs a `value`")
    return str(value)


def _depth(value: Any, key: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise SelectorError(f"`{key}` must be a whole number, not {value!r}") from err

"""The names a resource's Jinja calls, for `kascade lint`: a macro dbt would not find, a
package that is not installed, a var with no value. dbt's parse reports none of these (it
renders with a lenient context); the first run of the model does.

A call is checked only when it is certain: a call of a plain name (`pick()`) or of a name
in a package (`dbt_utils.star()`), where the name is not bound in the file itself ({% set
%}, {% for %}, a macro's arguments, an import). What is known comes from the caller
(DbtNames: dbt's context and its own macros, read from the installed dbt) and from the
project (its macros and its packages' macros). dbt looks a plain name up in the root
project's macros, the resource's own package's, and dbt's own (global and adapter
macros); another package's macro needs its package name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from jinja2 import nodes

JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace"})
"""What Jinja itself provides to every template."""
MACRO_LOCALS = frozenset({"caller", "varargs", "kwargs", "loop", "self"})
"""Names Jinja binds inside macros, call blocks and loops."""


@dataclass(frozen=True)
class DbtNames:
    """What dbt's context offers every resource: its members (`ref`, `adapter`, `this`...)
    and the macros of its own packages (`dbt`'s global macros, the adapters'), by package."""

    context: frozenset[str]
    packages: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @cached_property
    def macros(self) -> frozenset[str]:
        """Every macro of dbt's own packages (callable by plain name)."""
        return frozenset().union(*self.packages.values())


@dataclass(frozen=True)
class Call:
    """A call of `name` (in `package`, when written `package.name(...)`) at a line."""

    name: str
    package: str | None
    line: int

    @property
    def shown(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name


def bound_names(template: nodes.Template) -> frozenset[str]:
    """Every name the file binds anywhere (conservatively, without scopes). A macro a
    model defines is not one: dbt does not let the model call it."""
    bound: set[str] = set()
    for node in template.find_all(nodes.Name):
        if node.ctx in ("store", "param"):
            bound.add(node.name)
    for imported in template.find_all(nodes.FromImport):
        bound.update(name if isinstance(name, str) else name[1] for name in imported.names)
    for single in template.find_all(nodes.Import):
        bound.add(single.target)
    return frozenset(bound)


def free_calls(template: nodes.Template) -> Iterator[Call]:
    """Calls of a name, or of a name in a package, that the file does not bind itself."""
    bound = bound_names(template) | MACRO_LOCALS
    for call in template.find_all(nodes.Call):
        callee = call.node
        if isinstance(callee, nodes.Name) and callee.name not in bound:
            yield Call(callee.name, None, call.lineno)
        elif (
            isinstance(callee, nodes.Getattr)
            and isinstance(callee.node, nodes.Name)
            and callee.node.name not in bound
        ):
            yield Call(callee.attr, callee.node.name, call.lineno)


def literal_vars(template: nodes.Template) -> Iterator[tuple[str, bool, int]]:
    """(name, has a default, line) of every `var('name'...)` call with a literal name."""
    for call in template.find_all(nodes.Call):
        callee = call.node
        if not (isinstance(callee, nodes.Name) and callee.name == "var") or not call.args:
            continue
        first = call.args[0]
        if isinstance(first, nodes.Const) and isinstance(first.value, str):
            has_default = len(call.args) > 1 or any(k.key == "default" for k in call.kwargs)
            yield first.value, has_default, call.lineno


def unknown_call(
    call: Call,
    dbt: DbtNames,
    macros: Mapping[str, frozenset[str]],
    root: str,
    package: str,
) -> str | None:
    """Why dbt would not find the macro a call names (None when it would): `macros` are
    the macros of the root project and of each installed package, by package name."""
    if call.package is None:
        if call.name in dbt.context or call.name in JINJA_GLOBALS:
            return None
        visible = (dbt.macros, macros.get(root, frozenset()), macros.get(package, frozenset()))
        if any(call.name in names for names in visible):
            return None
        elsewhere = sorted(name for name, names in macros.items() if call.name in names)
        if elsewhere:
            return (
                f"calls macro `{call.name}`, which only package `{elsewhere[0]}` defines: "
                f"call it as `{elsewhere[0]}.{call.name}(...)`"
            )
        return f"calls macro `{call.name}`, which neither the project, its packages nor dbt define"
    if call.package in dbt.context or call.package in JINJA_GLOBALS:
        return None  # a member of dbt's context (adapter.dispatch, exceptions.warn ...)
    names = macros.get(call.package, dbt.packages.get(call.package))
    if names is None:
        return (
            f"calls `{call.shown}`, but package `{call.package}` is not installed: vendor it "
            "in the project (run `dbt deps` and keep dbt_packages/; kascade never reaches "
            "the dbt package hub)"
        )
    if call.name in names:
        return None
    return f"calls macro `{call.shown}`, which package `{call.package}` does not define"

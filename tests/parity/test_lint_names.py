"""`kascade lint` against dbt on the names a model's Jinja calls: every model lint reports
is one `dbt compile` fails on, and every model lint passes is one dbt compiles. The cases
are written out (macros of the project, of a vendored package and of dbt, a package that
is not installed, names the file binds itself, vars with and without values)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

from kascade.engine.lint import model_problems
from kascade.engine.project import load_project
from kascade.runtime.dbtnames import installed_dbt_names
from tests.projects import write_project

PROFILE = "p:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: ':memory:', threads: 1}\n"

MODELS = {
    # fine: what dbt finds
    "own_macro": "select {{ double(2) }} as x",
    "package_macro": "select {{ helpers.hello() }} as x",
    "dbt_macro": "select {{ current_timestamp() }} as t, {{ dbt.current_timestamp() }} as u",
    "dispatch": "select {{ adapter.dispatch('double')(3) }} as x",
    "bound_names": (
        "{% set pick = double %}\n"
        "{% for f in [double] %}select {{ f(1) }} as x, {{ pick(2) }} as y{% endfor %}"
    ),
    "context": (
        "{% if execute %}{% set q = run_query('select 1') %}{% endif %}\n"
        "select {{ var('given') }} as a, {{ var('absent', 5) }} as b, "
        "{{ tojson({'k': 1}) | length }} as c, {{ is_incremental() | string | length }} as d"
    ),
    "namespace": (
        "{% set ns = namespace(n=1) %}select {{ ns.n }} as x, {{ range(3) | length }} as y"
    ),
    # dbt fails on these
    "unknown_macro": "select {{ not_a_macro() }} as x",
    "missing_package": "select {{ dbt_utils.star('x') }} as x",
    "package_without_prefix": "select {{ hello() }} as x",
    "wrong_package_macro": "select {{ helpers.nope() }} as x",
    "macro_in_model": "{% macro local(a) %}{{ a }}{% endmacro %}select {{ local(3) }} as z",
}
FILES = {
    "dbt_project.yml": "name: p\nprofile: p\nvars:\n  given: 7\n",
    "macros/double.sql": "{% macro double(x) %}{{ x }} * 2{% endmacro %}\n"
    "{% macro default__double(x) %}{{ x }} * 2{% endmacro %}",
    "dbt_packages/helpers/dbt_project.yml": "name: helpers\n",
    "dbt_packages/helpers/macros/hello.sql": "{% macro hello() %}'hello'{% endmacro %}",
    "packages.yml": "packages:\n  - local: dbt_packages/helpers\n",
    **{f"models/{name}.sql": text for name, text in MODELS.items()},
}


def dbt_compiles(root: Path, profiles: Path, model: str) -> bool:
    argv = [
        "compile",
        "--select",
        model,
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(profiles),
        "--log-level",
        "none",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--log-path",
        str(profiles / "logs"),
        "--target-path",
        str(profiles / "target"),
    ]
    return dbtRunner().invoke(argv).success


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("names")
    root = write_project(folder / "project", FILES)
    profiles = folder / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(PROFILE, encoding="utf-8")
    return root, profiles


def test_lint_reports_exactly_the_models_dbt_cannot_compile(project: tuple[Path, Path]) -> None:
    root, profiles = project
    dbt = installed_dbt_names()
    assert dbt is not None
    problems = model_problems(load_project(root), dbt)
    reported = {name for name in MODELS if any(f"models/{name}.sql:" in p for p in problems)}
    failing = {name for name in MODELS if not dbt_compiles(root, profiles, name)}
    assert reported == failing, problems
    assert failing == {
        "unknown_macro",
        "missing_package",
        "package_without_prefix",
        "wrong_package_macro",
        "macro_in_model",
    }


def test_lint_reports_a_var_without_a_value_which_dbt_refuses(tmp_path: Path) -> None:
    files = {**FILES, "models/needs.sql": "select {{ var('needed') }} as x"}
    files = {k: v for k, v in files.items() if not k.startswith("models/") or "needs" in k}
    root = write_project(tmp_path / "project", files)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(PROFILE, encoding="utf-8")
    dbt = installed_dbt_names()
    assert dbt is not None
    assert model_problems(load_project(root), dbt) == [
        "models/needs.sql:1: model `needs`: var `needed` has no value: set it in "
        "dbt_project.yml `vars:` or the Flow's `spec.vars`"
    ]
    assert not dbt_compiles(root, profiles, "needs")
    assert model_problems(load_project(root), dbt, frozenset({"needed"})) == []

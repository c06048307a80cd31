"""Bad input gets a clear error naming the field, file or model: never a traceback, a hang
or a read outside the project. Each table row is one input a user (or a fuzzer) could give;
the assertions are on what the user sees (message, exit code)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kascade.api import Flow, ParameterType
from kascade.cli import entry
from kascade.cli import main as cli_main
from kascade.contract import ContractError
from kascade.engine.errors import ManifestError
from kascade.engine.manifests import load_flow, parse_flow
from kascade.engine.parameters import convert
from kascade.engine.project import load_project
from kascade.engine.sqlscan import scan_sql
from kascade.engine.templating import TemplateError, render
from kascade.runtime.connectors import ConnectorError, load_connector
from tests.projects import manifest, write_project
from tests.unit.test_cli import kascade

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "flow.yaml"
SCRIPT = {"name": "load", "script": {"name": "load"}}


def finishes(function: Callable[[], Any], seconds: float = 20) -> Any:
    """function(), run in a thread; fails the test if it has not returned after `seconds`
    (a hang detector, not a speed requirement)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as err:  # handed to the test thread
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def flow_error(document: dict[str, Any]) -> str:
    """The message parse_flow gives for a manifest (which must be refused)."""
    with pytest.raises(ManifestError) as caught:
        parse_flow(yaml.safe_dump(document), "flow.yaml")
    return str(caught.value)


def with_spec(**spec: Any) -> dict[str, Any]:
    return manifest([SCRIPT], **spec)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str | Path
) -> tuple[int, str, str]:
    """`kascade ARGS` through cli.main.main(), as the console script runs it: exit code,
    stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["kascade", *map(str, args)])
    code = 0
    try:
        cli_main.main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- 1. metadata.name becomes a path: a DNS-1123 subdomain --------------------------------


@pytest.mark.parametrize(
    "name",
    ["../../etc", "a/b", "Shop", "shop_daily", "-shop", "shop-", "shop..daily", "a" * 254, ""],
)
def test_a_flow_name_that_is_no_dns_subdomain_is_refused_naming_metadata_name(name: str):
    message = flow_error(manifest([SCRIPT], name=name))
    assert "metadata.name" in message
    with pytest.raises(ValidationError) as caught:
        Flow.model_validate(manifest([SCRIPT], name=name))
    if name:  # the empty name passes the model and is refused by parse_flow
        assert caught.value.errors()[0]["loc"] == ("metadata", "name")


@pytest.mark.parametrize("name", ["shop", "shop-daily.v2", "a" * 253, "0"])
def test_dns_subdomain_flow_names_are_accepted(name: str):
    assert parse_flow(yaml.safe_dump(manifest([SCRIPT], name=name)), "f.yaml").metadata.name


def test_the_crd_keeps_metadata_a_plain_object():
    from kascade.api.crd import KINDS, crd

    for kind in KINDS:
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert schema["properties"]["metadata"] == {"type": "object"}


# --- 2. the static ref() scan is linear -------------------------------------------------

NESTED = 400_000 // len("ref(")


@pytest.mark.parametrize(
    "sql",
    [
        "{{ " + "ref(" * NESTED + " }}",
        "{{ " + "ref(" * (NESTED // 2) + "'a'" + ")" * (NESTED // 2) + " }}",
        "{{ ref(" + "(" * NESTED + "'a'" + ")" * NESTED + ") }}",
        "{{ ref('a', " + "[" * NESTED + "]" * NESTED + ") }}",
        "{{ ref(" + "{{" * NESTED,
        "{#" * NESTED + "{{ ref('a') }}",
        "{{ ref('a') }}\n" * (NESTED // 4),
    ],
    ids=["open", "closed", "grouped", "lists", "unclosed-blocks", "unclosed-comments", "many"],
)
def test_400_kb_of_nested_calls_finishes_with_a_result_or_an_error(sql: str):
    scan = finishes(lambda: scan_sql(sql))
    assert scan.refs or scan.errors or scan == scan_sql("")


def test_a_model_nested_too_deeply_is_a_problem_naming_its_file(tmp_path: Path):
    root = write_project(tmp_path, {"models/deep.sql": "{{ " + "ref(" * 20_000 + " }}"})
    problems = finishes(lambda: load_project(root)).problems
    assert problems
    assert "(models/deep.sql)" in problems[0]


# --- 3. rendering is bounded ------------------------------------------------------------

ENDLESS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (ENDLESS, "rendering stopped after 1,000,000 steps (a loop that never ends?)"),
        ("{{ 'x' * 1000000000 }}", "`*` would make a value of more than"),
        ("{{ [1] * 1000000000 }}", "`*` would make a value of more than"),
        ("{{ 9 ** 999999999 }}", "`**` would make an integer of more than"),
        ("{{ '%0999999999d' % 1 }}", "`%` would make a value of more than"),
        ("{% set s = 'x' * 1000000 %}{{ s + s }}", "`+` would make a value of more than"),
        (
            "{% set n = namespace(s='x') %}{% for i in range(64) %}{% set n.s = n.s ~ n.s %}"
            "{% endfor %}",
            "`~` would make a value of more than",
        ),
        ("{{ 'x'.ljust(1000000000) }}", "str.ljust() would make a value"),
        ("{% set s = 'x' * 1000000 %}{{ s.replace('x', s) }}", "str.replace() would make"),
        ("{% set s = 'x' * 1000000 %}{{ ([s] * 1000) | join }}", "the filter `join` would"),
        ("{{ 'x' | center(1000000000) }}", "the filter `center` would"),
        ("{% set s = 'x' * 1000000 %}{{ [s] * 1000 }}", "prints as more than"),
        ("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", "too deeply"),
        ("{{ lipsum(1000000) }}", "lipsum() takes at most"),
    ],
)
def test_a_template_over_budget_is_an_error_not_a_hang(template: str, said: str):
    with pytest.raises(TemplateError) as caught:
        finishes(lambda: render(template, {}))
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ params.day }}/{{ run.name | upper }}", "2024-01-01/R1"),
        ("{{ 'a' ~ params.n * 2 }}-{{ '%03d' % params.n }}-{{ 2 ** 10 }}", "a42-021-1024"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}{{ [1, 2] | join(',') }}", "0121,2"),
        ("{{ '{:>4}'.format(params.n) }}|{{ 'ab' | center(6) }}", "  21|  ab  "),
    ],
)
def test_bounded_rendering_keeps_the_results_of_ordinary_templates(template: str, expected: str):
    context = {"params": {"day": "2024-01-01", "n": 21}, "run": {"name": "r1"}}
    assert render(template, context) == expected


def test_templates_stay_strict_about_undefined_names():
    with pytest.raises(TemplateError, match="has no attribute 'x'"):
        render("{{ params.x }}", {"params": {}})


@pytest.mark.parametrize(
    ("template", "said"),
    [("{{ 1 / 0 }}", "ZeroDivisionError"), ("{{ 'a' + 1 }}", "TypeError")],
)
def test_a_template_that_raises_is_a_template_error(template: str, said: str):
    with pytest.raises(TemplateError, match=said):
        render(template, {})


def test_a_model_rendered_for_its_refs_stops_at_the_budget_naming_its_file(tmp_path: Path):
    endless = ENDLESS.replace("{% endfor %}{% endfor %}", "{{ ref(b) }}{% endfor %}{% endfor %}")
    root = write_project(tmp_path, {"models/x.sql": endless})
    problems = finishes(lambda: load_project(root)).problems
    assert problems == (
        "the refs of model `x` are computed (models/x.sql:1: ref() of a value a macro or "
        "dbt's context makes): run `dbt parse` so that target/manifest.json tells them "
        "(there is no target/manifest.json), or write the ref literally",
    )


# --- 4. internal errors become errors naming the field ----------------------------------


@pytest.mark.parametrize("zone", ["Europe", "America", "../../etc/passwd", "Nowhere/City", "a\0"])
def test_a_time_zone_that_is_no_zone_names_the_field(zone: str):
    message = flow_error(with_spec(schedule={"cron": "0 2 * * *", "timezone": zone}))
    assert "spec.schedule.timezone: unknown IANA time zone" in message


@pytest.mark.parametrize("name", ["A=B", "", "A B", "TAB\tX", "NUL\0", "é"])
def test_an_env_name_a_process_cannot_take_is_refused(name: str):
    node = {**SCRIPT, "env": [{"name": name, "value": "1"}]}
    message = flow_error(manifest([node]))
    assert f"spec.nodes[0] (load).env[0] ({name}).name: " in message


def test_the_env_name_rule_is_in_the_crd_too():
    from kascade.api.crd import KINDS, crd

    schema = crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    name = schema["properties"]["spec"]["properties"]["defaults"]["properties"]["env"]["items"]
    assert re.fullmatch(name["properties"]["name"]["pattern"], "A_B")
    assert not re.fullmatch(name["properties"]["name"]["pattern"], "A=B")


@pytest.mark.parametrize(
    ("spec", "field", "maximum"),
    [
        ({"defaults": {"retryDelaySeconds": 10**30}}, "spec.defaults.retryDelaySeconds", 86400),
        ({"defaults": {"retries": 101}}, "spec.defaults.retries", 100),
        ({"defaults": {"timeoutSeconds": 604801}}, "spec.defaults.timeoutSeconds", 604800),
        ({"timeoutSeconds": 2592001}, "spec.timeoutSeconds", 2592000),
        ({"maxParallelTasks": 10001}, "spec.maxParallelTasks", 10000),
        ({"maxActiveRuns": 10**20}, "spec.maxActiveRuns", 10000),
        ({"successfulRunsHistoryLimit": 1001}, "spec.successfulRunsHistoryLimit", 1000),
        ({"failedRunsHistoryLimit": 1001}, "spec.failedRunsHistoryLimit", 1000),
        (
            {"schedule": {"cron": "* * * * *", "startingDeadlineSeconds": 2592001}},
            "spec.schedule.startingDeadlineSeconds",
            2592000,
        ),
        (
            {"schedule": {"every": {"frequency": "month", "dayOfMonth": 32}}},
            "spec.schedule.every.dayOfMonth",
            31,
        ),
    ],
)
def test_every_number_has_a_maximum_named_in_the_error(
    spec: dict[str, Any], field: str, maximum: int
):
    message = flow_error(with_spec(**spec))
    assert f"{field}: Input should be less than or equal to {maximum}" in message


def test_a_node_number_over_its_maximum_names_the_node():
    message = flow_error(manifest([{**SCRIPT, "retryDelaySeconds": 10**18}]))
    assert "spec.nodes[0] (load).retryDelaySeconds: Input should be less than or equal" in message


@pytest.mark.parametrize("value", [1e18, "3", True, 2.5])
def test_an_integer_field_takes_only_integers_as_the_api_server_does(value: object):
    message = flow_error(manifest([{**SCRIPT, "retries": value}]))
    assert "spec.nodes[0] (load).retries: Input should be a valid integer" in message


def test_every_number_of_the_crds_has_a_maximum():
    from kascade.api.crd import KINDS, crd

    def integers(schema: Any, path: str) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        if isinstance(schema, dict):
            if schema.get("type") in ("integer", "number"):
                found.append((path, schema))
            for key, sub in schema.items():
                found += integers(sub, f"{path}.{key}")
        elif isinstance(schema, list):
            for index, sub in enumerate(schema):
                found += integers(sub, f"{path}[{index}]")
        return found

    for kind in KINDS:
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        unbounded = [path for path, field in integers(schema, kind.kind) if "maximum" not in field]
        assert unbounded == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"parameters": [{"name": "p", "default": "a\0b"}]}, "spec.parameters[0] (p).default"),
        (
            {"parameters": [{"name": "p", "default": ["ok", {"k": "a\0"}]}]},
            "spec.parameters[0] (p).default",
        ),
        (
            {"nodes": [{"name": "s", "script": {"name": "load", "args": ["ok", "a\0"]}}]},
            "spec.nodes[0] (s).script.args[1]",
        ),
        (
            {"nodes": [{**SCRIPT, "env": [{"name": "A", "value": "\0"}]}]},
            "spec.nodes[0] (load).env[0] (A).value",
        ),
        ({"defaults": {"env": [{"name": "A", "value": "\0"}]}}, "spec.defaults.env[0] (A).value"),
        (
            {"nodes": [{"name": "c", "flow": {"name": "child", "parameters": {"d": "\0"}}}]},
            "spec.nodes[0] (c).flow.parameters",
        ),
    ],
)
def test_a_nul_byte_that_would_reach_a_process_is_refused_naming_the_field(
    spec: dict[str, Any], field: str
):
    document = manifest(spec.pop("nodes", [SCRIPT]), **spec)
    message = flow_error(document)
    assert field in message
    assert "NUL byte" in message


@pytest.mark.parametrize(
    ("kind", "raw", "said"),
    [
        (ParameterType.STRING, "a\0b", "the value holds a NUL byte"),
        (ParameterType.NUMBER, math.nan, "expected a finite number"),
        (ParameterType.NUMBER, math.inf, "expected a finite number"),
        (ParameterType.NUMBER, "nan", "expected a finite number"),
        (ParameterType.NUMBER, "-inf", "expected a finite number"),
        (ParameterType.NUMBER, "1e999", "expected a finite number"),
        (ParameterType.INTEGER, "9" * 5000, "expected an integer, got '9999"),
        (ParameterType.INTEGER, "1\0", "the value holds a NUL byte"),
    ],
)
def test_parameter_values_a_run_cannot_use_are_refused(kind: ParameterType, raw: Any, said: str):
    with pytest.raises(ValueError, match=re.escape(said)) as caught:
        convert(kind, raw)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: " + "[" * 5000 + "]" * 5000, "flow.yaml: invalid YAML: nested too deeply"),
        ("a: " + "{b: " * 3000, "flow.yaml: invalid YAML: nested too deeply"),
        ("a: " + "9" * 5000, "flow.yaml: invalid YAML: Exceeds the limit (4300 digits)"),
    ],
)
def test_yaml_python_cannot_read_is_an_error_naming_the_file(text: str, said: str):
    with pytest.raises(ManifestError) as caught:
        parse_flow(text, "flow.yaml")
    assert str(caught.value).startswith(said)
    assert "sys.set_int_max_str_digits" not in str(caught.value)


def test_a_flow_file_that_is_a_fifo_is_refused_not_read(tmp_path: Path):
    os.mkfifo(tmp_path / "flow.yaml")
    with pytest.raises(ManifestError, match=r"flow\.yaml: not a regular file"):
        finishes(lambda: load_flow(tmp_path / "flow.yaml"))


def test_ctrl_c_while_kascade_loads_is_exit_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    class Interrupting(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "kascade.cli.main", Interrupting("kascade.cli.main"))
    with pytest.raises(SystemExit) as caught:
        entry.main()
    assert caught.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_real_sigint_during_the_import_is_exit_130(tmp_path: Path):
    code = (
        "import builtins, os, signal\n"
        # A shell's background job starts with SIGINT ignored: Ctrl-C must reach this one.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "real = builtins.__import__\n"
        "def interrupting(name, *args, **kwargs):\n"
        "    if name == 'kascade.cli.main':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupting\n"
        "from kascade.cli.entry import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "lint", str(SHOP)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (ContractError("outputs: not JSON"), 1, "error: outputs: not JSON"),
    ],
)
def test_main_turns_interrupts_and_contract_errors_into_exit_codes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    said: str,
):
    def failing(**kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(cli_main.cli, "main", failing)
    with pytest.raises(SystemExit) as caught:
        cli_main.main()
    assert caught.value.code == code
    err = capsys.readouterr().err
    assert err.strip() == said
    assert "Traceback" not in err


def test_python_m_kascade_goes_through_the_entry():
    main = (ROOT / "operator" / "kascade" / "__main__.py").read_text(encoding="utf-8")
    assert "from kascade.cli.entry import main" in main


# --- 5. lint finds what a plan does not -------------------------------------------------

LINT_FILES = {
    "models/a.sql": "select 1",
    "models/b.sql": "{% do [].append(1) %}{% for i in [1] %}{% break %}{% endfor %}"
    "select * from {{ ref('a') }}",
    "scripts/load/__main__.py": "print('load')",
}


def lint(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    document: dict[str, Any],
    files: dict[str, str] | None = None,
) -> tuple[int, list[str]]:
    write_project(tmp_path, {**LINT_FILES, **(files or {})})
    (tmp_path / "flow.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "lint", tmp_path / "flow.yaml")
    return code, [line for line in err.splitlines() if line.startswith("error:")]


def test_lint_passes_a_clean_flow_with_dbt_extensions_and_templates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    document = manifest(
        [
            {
                "name": "load",
                "script": {"name": "load", "args": ["{{ params.day }}", "{{ run.name }}"]},
                "env": [{"name": "N", "value": "{{ params.n + 1 }}"}],
            },
            {"name": "models", "transformation": {}, "dependsOn": ["load"]},
            {
                "name": "after",
                "script": {"name": "load", "args": ["{{ tasks.load.outputs.rows + 1 }}"]},
                "dependsOn": ["models"],
            },
        ],
        parameters=[
            {"name": "day", "default": "{{ run.scheduledDate }}"},
            {"name": "n", "type": "integer", "default": "3"},
            {"name": "required", "type": "number"},
        ],
        schedule={"cron": "0 0 29 2 *"},
    )
    assert lint(monkeypatch, capsys, tmp_path, document) == (0, [])


@pytest.mark.parametrize(
    ("change", "files", "expected"),
    [
        (
            {},
            {"models/bad.sql": "select 1\n{% if x %}"},
            "models/bad.sql:2: Jinja syntax error: Unexpected end of template.",
        ),
        (
            {},
            {"models/loop.sql": ENDLESS + "select 1"},
            "models/loop.sql: rendering stopped after 1,000,000 steps",
        ),
        (
            {},
            {"models/zero.sql": "select {{ 1 / 0 }}"},
            "models/zero.sql: cannot render the model to find its refs: division by zero",
        ),
        (
            {"nodes": [{"name": "load", "script": {"name": "load", "args": ["{{ params.x }}"]}}]},
            {},
            "spec.nodes[0] (load).script.args[0]: template `{{ params.x }}`: 'dict object' "
            "has no attribute 'x'",
        ),
        (
            {"nodes": [{"name": "load", "script": {"name": "load", "args": ["{% if %}"]}}]},
            {},
            "spec.nodes[0] (load).script.args[0]: template `{% if %}` does not parse",
        ),
        (
            {"nodes": [{"name": "load", "script": {"name": "load", "args": ["{{ tasks.nope }}"]}}]},
            {},
            "spec.nodes[0] (load).script.args[0]: template `{{ tasks.nope }}`: 'dict object' "
            "has no attribute 'nope'",
        ),
        (
            {"defaults": {"env": [{"name": "A", "value": "{{ params.x }}"}]}},
            {},
            "spec.defaults.env[0] (A).value: template",
        ),
        (
            {"hooks": {"onFailure": [{"name": "tell", "env": [{"name": "B", "value": "{{ x"}]}]}},
            {},
            "spec.hooks.onFailure[0] (tell).env[0] (B).value: template `{{ x` does not parse",
        ),
        (
            {
                "nodes": [
                    {"name": "load", "script": {"name": "load"}},
                    {"name": "c", "flow": {"name": "child", "parameters": {"d": "{{ y }}"}}},
                ]
            },
            {},
            "spec.nodes[1] (c).flow.parameters.d: template `{{ y }}`: 'y' is undefined",
        ),
        (
            {"parameters": [{"name": "n", "type": "integer", "default": "abc"}]},
            {},
            "spec.parameters[0] (n).default: expected an integer, got 'abc'",
        ),
        (
            {"parameters": [{"name": "x", "type": "number", "default": math.nan}]},
            {},
            "spec.parameters[0] (x).default: expected a finite number, got nan",
        ),
        (
            {"parameters": [{"name": "b", "type": "boolean", "default": 3}]},
            {},
            "spec.parameters[0] (b).default: expected a boolean (true/false), got 3",
        ),
        (
            {"parameters": [{"name": "d", "default": "{{ params.other }}"}]},
            {},
            "spec.parameters[0] (d).default: template `{{ params.other }}`: 'params' is undefined",
        ),
    ],
)
def test_lint_reports_what_would_fail_at_run_time_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    change: dict[str, Any],
    files: dict[str, str],
    expected: str,
):
    hooks = change.pop("hooks", None)
    if hooks is not None:
        for hook in hooks["onFailure"]:
            hook.setdefault("script", {"name": "load"})
        change["hooks"] = hooks
    document = manifest(change.pop("nodes", [SCRIPT]), **change)
    code, errors = lint(monkeypatch, capsys, tmp_path, document, files)
    assert code == 1
    assert any(error.startswith(f"error: {expected}") for error in errors), errors


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_invalid_naming_the_field(cron: str):
    message = flow_error(with_spec(schedule={"cron": cron}))
    assert f"spec.schedule.cron: cron expression {cron!r} never fires" in message


@pytest.mark.parametrize("cron", ["0 0 29 2 *", "0 0 31 * *", "0 0 30 2 1"])
def test_a_cron_that_fires_rarely_is_valid(cron: str):
    parse_flow(yaml.safe_dump(with_spec(schedule={"cron": cron})), "f.yaml")


# --- 6. nothing outside the project is read ---------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project, holding a model and a secret."""
    folder = tmp_path / "outside"
    write_project(folder, {"evil.sql": "select 1", "secret.csv": "a\n1\n"})
    return folder


def project_problems(root: Path) -> tuple[str, ...]:
    return finishes(lambda: load_project(root), seconds=20).problems


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("/etc", "is an absolute path"),
        ("../outside", "goes up with `..`"),
        ("models/../../outside", "goes up with `..`"),
        ("link", "resolves to"),
    ],
)
@pytest.mark.parametrize("key", ["model-paths", "seed-paths"])
def test_a_path_entry_that_leaves_the_project_names_dbt_project_yml(
    tmp_path: Path, outside: Path, key: str, entry: str, said: str
):
    root = write_project(tmp_path / "p", {"dbt_project.yml": f"name: p\n{key}: ['{entry}']\n"})
    (root / "link").symlink_to(outside)
    problems = project_problems(root)
    assert any(p.startswith(f"dbt_project.yml: {key} entry '{entry}' {said}") for p in problems)
    assert not any("evil" in p or "secret" in p for p in problems)


def test_a_models_folder_linked_out_of_the_project_is_not_walked(tmp_path: Path):
    root = write_project(tmp_path / "p", {"scripts/load/__main__.py": ""})
    (root / "models").symlink_to("/")
    project = project_problems(root)
    assert project == ("models: a link to /, outside the project; not read",)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda root, out: (root / "models/x.sql").symlink_to(out / "evil.sql"), "outside"),
        (lambda root, out: (root / "models/sub").symlink_to(out), "outside the project"),
        (lambda root, out: (root / "models/x.sql").symlink_to(root / "gone.sql"), "not exist"),
        (lambda root, out: os.mkfifo(root / "models/x.sql"), "not a regular file"),
        (lambda root, out: os.mkfifo(root / "models/props.yml"), "not a regular file"),
        (lambda root, out: (root / "seeds/s.csv").symlink_to(out / "secret.csv"), "outside"),
        (lambda root, out: os.mkfifo(root / "dbt_project.yml"), "not a regular file"),
        (lambda root, out: (root / "dbt_project.yml").symlink_to(out / "evil.sql"), "outside"),
        (lambda root, out: (root / "scripts/evil").symlink_to(out), "outside the project"),
        (
            lambda root, out: (root / "scripts/load/__main__.py").symlink_to(out / "evil.sql"),
            "outside the project",
        ),
    ],
    ids=[
        "sql-out",
        "folder-out",
        "dangling",
        "fifo-model",
        "fifo-properties",
        "seed-out",
        "fifo-project",
        "project-out",
        "script-folder-out",
        "script-out",
    ],
)
def test_links_out_dangling_links_and_special_files_are_problems_never_read(
    tmp_path: Path, outside: Path, make: Callable[[Path, Path], None], said: str
):
    root = write_project(
        tmp_path / "p",
        {"models/a.sql": "select 1", "seeds/.keep": "", "scripts/load/.keep": ""},
        dbt_project=False,
    )
    make(root, outside)
    if not os.path.lexists(root / "dbt_project.yml"):
        (root / "dbt_project.yml").write_text("name: p\n", encoding="utf-8")
    problems = project_problems(root)
    assert len(problems) == 1, problems
    assert said in problems[0]
    assert problems[0].split(":")[0] in {
        "models/x.sql",
        "models/sub",
        "models/props.yml",
        "seeds/s.csv",
        "dbt_project.yml",
        "scripts/evil",
        "scripts/load/__main__.py",
    }


def test_links_inside_the_project_are_followed_and_loops_end(tmp_path: Path):
    root = write_project(
        tmp_path / "p",
        {"models/a.sql": "select 1", "shared/b.sql": "select * from {{ ref('a') }}"},
    )
    (root / "models/shared").symlink_to(root / "shared")
    (root / "models/c.sql").symlink_to(root / "shared/b.sql")
    (root / "shared/loop").symlink_to(root / "models")
    project = project_problems(root)
    loaded = load_project(root)
    assert sorted(loaded.models) == ["a", "b", "c"]
    assert loaded.models["b"].path == "models/shared/b.sql"
    assert project == (
        f"models/shared/loop: a link to {os.path.realpath(root / 'models')}, a folder read "
        "already; not read again",
    )


CONNECTOR = "source:\n  path: {path}\ndestination:\n  table: raw.t\n"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/etc/passwd", "is absolute"),
        ("../outside/secret.csv", "goes up with `..`"),
        ("data/../../outside/secret.csv", "goes up with `..`"),
        ("data/link.csv", "outside the project"),
        ("data/*.csv", "outside the project"),
        ("data/**/*.csv", "outside the project"),
        ("data/fifo.csv", "not a regular file"),
        ("https://example.com/x.csv", "is a URL"),
    ],
)
def test_a_connector_source_path_outside_the_project_is_refused(
    tmp_path: Path, outside: Path, path: str, said: str
):
    root = write_project(
        tmp_path / "p",
        {"connectors/c.yaml": CONNECTOR.format(path=path), "data/ok.csv": "a\n1\n"},
    )
    if "fifo" in path:
        os.mkfifo(root / "data/fifo.csv")
    else:
        (root / "data/link.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(ConnectorError) as caught:
        load_connector(str(root), "c")
    assert str(caught.value).startswith(f"connectors/c.yaml: source.path {path!r}")
    assert said in str(caught.value)


def test_a_connector_source_path_inside_the_project_is_fine(tmp_path: Path):
    root = write_project(
        tmp_path / "p", {"connectors/c.yaml": CONNECTOR.format(path="data/*.csv"), "data/a.csv": ""}
    )
    (root / "data/b.csv").symlink_to(root / "data/a.csv")
    assert load_connector(str(root), "c")["source"]["path"] == "data/*.csv"


def test_a_connector_file_linked_out_of_the_project_is_not_read(tmp_path: Path, outside: Path):
    root = write_project(tmp_path / "p", {"connectors/.keep": ""})
    (root / "connectors/c.yaml").symlink_to(outside / "evil.sql")
    with pytest.raises(ConnectorError, match=r"connectors/c.yaml: a link to .*outside"):
        load_connector(str(root), "c")


# --- 7. exit codes: the table of docs/reference/cli.md is what kascade does --------------


def documented_exit_codes() -> dict[str, str]:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ")]
    return {code.strip(): meaning.strip() for code, meaning in rows[1:]}


def test_the_exit_code_table_lists_every_code_once():
    codes = documented_exit_codes()
    assert {"0", "1", "2", "130", "143"} <= set(codes)
    assert "task exec" in codes["the task's"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["lint", SHOP], 0),
        (["lint", "missing.yaml"], 1),
        (["plan", SHOP, "--project", "/nonexistent"], 1),
        (["lint", SHOP, "--no-such-option"], 2),
        (["lint"], 2),
        (["plan", SHOP, "-o", "xml"], 2),
    ],
)
def test_exit_codes_are_the_documented_ones(args: list[str | Path], code: int):
    result = kascade(*args)
    assert result.returncode == code, result.stderr
    assert str(code) in documented_exit_codes()
    assert "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.startswith("error: ")


BILLION_LAUGHS = """
apiVersion: kascade.io/v1alpha1
kind: Flow
metadata: {name: f}
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
spec: {nodes: [{name: x, script: {name: s, args: *h}}]}
"""


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (BILLION_LAUGHS, "expands to more than 200,000 values (YAML aliases?)"),
        ("a: &a [*a]\n", "a YAML alias makes it refer to itself"),
    ],
)
def test_yaml_aliases_cannot_blow_up_a_manifest(text, named):
    with pytest.raises(ManifestError) as caught:
        parse_flow(text, "flow.yaml")
    assert str(caught.value) == f"flow.yaml: invalid YAML: {named}"


def test_yaml_aliases_cannot_blow_up_a_project_file(tmp_path):
    (tmp_path / "dbt_project.yml").write_text(BILLION_LAUGHS.replace("kind: Flow", "name: p"))
    (tmp_path / "models").mkdir()
    project = load_project(tmp_path)
    assert any("dbt_project.yml: invalid YAML: expands to more than" in p for p in project.problems)

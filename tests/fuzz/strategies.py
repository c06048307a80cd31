"""Hypothesis strategies for what users feed kascade: Flow manifests (as YAML text, often
not even valid) and project trees (models, dbt_project.yml, scripts, connectors, odd
files). Mostly plausible input with bad pieces mixed in, as a campaign of generated
inputs would try them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st

MODEL_NAMES = ("m1", "m2", "m3", "stg_a", "fct_b")
SCRIPT_NAMES = ("ok", "fails", "publish")

# Names: mostly valid, sometimes what broke kascade before.
BAD_NAMES = (
    "../../..",
    "../escape",
    "/etc",
    "A B",
    "x=y",
    "",
    "ü",
    "a" * 300,
    "-lead",
    "trail-",
    ".",
    "..",
    "a/b",
    "\x00",
)
names = st.one_of(st.sampled_from(("f", "flow-1", "shop", "a.b")), st.sampled_from(BAD_NAMES))
node_names = st.one_of(
    st.sampled_from(("load", "models", "report", "n1", "n_2")), st.sampled_from(BAD_NAMES)
)

TEMPLATES = (
    "plain",
    "{{ params.p }}",
    "{{ params.nope }}",
    "{{ run.name }}-{{ run.scheduledDate }}",
    "{{ run.nope.deeper }}",
    "{{ tasks.load.outputs.rows }}",
    "{{ tasks.nope.outputs.rows }}",
    "{{ 1/0 }}",
    "{{",
    "{% if %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ ''.__class__.__mro__ }}",
    "a\x00b",
    "{{ lipsum(100000) }}",
)
templates = st.one_of(st.sampled_from(TEMPLATES), st.text(max_size=20))

NUMBERS: tuple[Any, ...] = (
    0,
    1,
    -1,
    30,
    2**31,
    2**53,
    10**30,
    1e30,
    float("nan"),
    float("inf"),
    -float("inf"),
    0.5,
    "12",
    "x",
    None,
    True,
    [],
    {},
)
numbers = st.one_of(st.integers(min_value=-5, max_value=100), st.sampled_from(NUMBERS))

CRONS = (
    "0 2 * * *",
    "*/5 * * * *",
    "0 0 31 2 *",
    "0 0 30 2 *",
    "0 0 29 2 *",
    "61 * * * *",
    "* * *",
    "@daily",
    "x y z w v",
    "",
)
ZONES = ("UTC", "Europe/Vienna", "Europe", "Nowhere/City", "../../etc/passwd", "", "America")
SELECTORS = (
    "tag:staging",
    "+fct_b",
    "m1+",
    "@m2",
    "path:models",
    "fqn:*",
    "nope",
    "tag:",
    "+",
    "a,b,",
    "config.materialized:table",
    "2+m3+2",
    "((",
    "source:raw",
    "m1 m2",
)


def _env() -> st.SearchStrategy[list[dict[str, Any]]]:
    var = st.fixed_dictionaries(
        {"name": st.sampled_from(("A", "B_2", "x=y", "", "PATH", "KASCADE_RUN", " sp"))},
        optional={
            "value": templates,
            "valueFrom": st.just({"secretKeyRef": {"name": "s", "key": "k"}}),
        },
    )
    return st.lists(var, max_size=3)


@st.composite
def _valid_flow(draw: st.DrawFn) -> dict[str, Any]:
    """A Flow that plans and runs on the project trees below."""
    nodes: list[dict[str, Any]] = []
    used: set[str] = set()
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        name = f"n{index}"
        kind = draw(st.sampled_from(("script", "script", "transformation", "connection")))
        if kind in used:
            kind = "script"  # a model or a connector belongs to one node only
        used.add(kind)
        node: dict[str, Any] = {"name": name}
        if kind == "script" and not nodes:
            node["script"] = {"name": "ok"}
        elif kind == "script":
            args = draw(
                st.lists(
                    st.sampled_from(
                        ("plain", "{{ params.p }}", "{{ run.name }}", "{{ params.q }}")
                    ),
                    max_size=2,
                )
            )
            node["script"] = {"name": draw(st.sampled_from(SCRIPT_NAMES)), "args": args}
        elif kind == "transformation":
            node["transformation"] = draw(
                st.sampled_from(({}, {"include": ["m1+"]}, {"include": ["tag:x"]}))
            )
        else:
            node["connection"] = {"connectors": ["files"]}
        if index and draw(st.booleans()):
            node["dependsOn"] = [f"n{draw(st.integers(min_value=0, max_value=index - 1))}"]
        nodes.append(node)
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "fuzzed"},
        "spec": {
            "nodes": nodes,
            "parameters": [
                {"name": "p", "default": "x"},
                {"name": "q", "type": "integer", "default": 3},
            ],
        },
    }


def _spot(doc: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    nodes = doc["spec"]["nodes"]
    return nodes[draw(st.integers(min_value=0, max_value=len(nodes) - 1))]


def _mutate(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    """Put one bad value into an otherwise good Flow."""
    spec = doc["spec"]
    what = draw(
        st.sampled_from(
            (
                "flow name",
                "node name",
                "arg",
                "env",
                "number",
                "run number",
                "default",
                "type",
                "schedule",
                "selector",
                "depends",
                "child flow",
                "hook",
            )
        )
    )
    node = _spot(doc, draw)
    if what == "flow name":
        doc["metadata"]["name"] = draw(names)
    elif what == "node name":
        node["name"] = draw(node_names)
    elif what == "arg":
        node.pop("transformation", None)
        node.pop("connection", None)
        node["script"] = {"name": "ok", "args": [draw(templates)]}
    elif what == "env":
        node["env"] = draw(_env())
    elif what == "number":
        node[draw(st.sampled_from(("retries", "retryDelaySeconds", "timeoutSeconds")))] = draw(
            numbers
        )
    elif what == "run number":
        spec[draw(st.sampled_from(("maxParallelTasks", "timeoutSeconds", "maxActiveRuns")))] = draw(
            numbers
        )
    elif what == "default":
        spec["parameters"][draw(st.integers(0, 1))]["default"] = draw(st.one_of(templates, numbers))
    elif what == "type":
        spec["parameters"][0]["type"] = draw(
            st.sampled_from(("integer", "number", "boolean", "date"))
        )
    elif what == "schedule":
        spec["schedule"] = {
            "cron": draw(st.sampled_from(CRONS)),
            "timezone": draw(st.sampled_from(ZONES)),
        }
    elif what == "selector":
        node.pop("script", None)
        node.pop("connection", None)
        node["transformation"] = {"include": draw(st.lists(st.sampled_from(SELECTORS), max_size=3))}
    elif what == "depends":
        node["dependsOn"] = draw(st.lists(node_names, max_size=2))
    elif what == "child flow":
        node.pop("script", None)
        node.pop("transformation", None)
        node.pop("connection", None)
        node["flow"] = {"name": draw(names), "parameters": {"x": draw(templates)}}
    else:
        spec["hooks"] = {"onFailure": [{"name": draw(node_names), "script": {"name": "ok"}}]}


@st.composite
def flow_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A Flow manifest as a document: a good one with zero, one or two bad values."""
    doc = draw(_valid_flow())
    for _ in range(draw(st.sampled_from((0, 1, 1, 1, 2)))):
        _mutate(draw, doc)
    return doc


# Raw manifest texts that break YAML readers rather than the Flow model.
RAW_MANIFESTS = (
    "",
    "kind: Flow\n",
    "{",
    "- a\n- b\n",
    "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: f}\nspec: " + "[" * 5000,
    "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata: {name: f}\nspec: {maxParallelTasks: "
    + "9" * 5000
    + "}\n",
    "a: &a [*a]\n",
    "\x00",
    "apiVersion: kascade.io/v1alpha1\nkind: Flow\nmetadata:\n  name: !!python/object:os.system x\n",
)


def manifest_texts() -> st.SearchStrategy[str]:
    """A Flow manifest file's text."""
    dumped = flow_documents().map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))
    return st.one_of(dumped, dumped, dumped, st.sampled_from(RAW_MANIFESTS))


GOOD_MODEL_FRAGMENTS = (
    "select 1 as one",
    "{{ config(materialized='table', tags=['x']) }}\nselect 2 as two",
    "select * from {{ ref('m1') }}",
)
MODEL_FRAGMENTS = (
    "select 1 as one",
    "select * from {{ ref('m1') }}",
    "select * from {{ ref('m2') }}",
    "select * from {{ ref('nope') }}",
    "select * from {{ source('raw', 't') }}",
    "{{ config(materialized='table') }}",
    "{{ config({'materialized': 'table', 'tags': ['x']}) }}",
    "{{ config(tags='staging') }}",
    "{% if true %}select 2{% endif %}",
    "{% if %}",
    "{{ ref(",
    "{{ ref('m1' }}",
    "{{ ref(var('which', 'm1')) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ ref(" * 2000,
    "{{ 1/0 }}",
    "{% set x = ref('m3') %}select * from {{ x }}",
    "{{ nosuch_macro() }}",
    "\xff\xfe",
)


@dataclass
class ProjectTree:
    """Files of a project (relative path -> text) and odd entries to make."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    """relative path -> link target (absolute, or relative to the link's folder)."""
    fifos: list[str] = field(default_factory=list)


DBT_PROJECTS = (
    None,
    "name: proj\n",
    "name: proj\nmodels:\n  proj:\n    +materialized: table\n",
    "name: proj\nmodel-paths: ['../outside']\n",
    "name: proj\nmodel-paths: ['/']\n",
    "name: proj\nmodel-paths: ['models', 'models']\n",
    "name: proj\nseed-paths: ['/etc']\n",
    "name: 5\n",
    "{",
    "name: proj\nvars: {which: m2}\n",
)
SCRIPTS = {
    "scripts/ok/__main__.py": "print('ok')\n",
    "scripts/fails/__main__.py": "import sys\nprint('failing')\nsys.exit(3)\n",
    "scripts/publish/__main__.py": (
        "import json, os\njson.dump({'rows': 1}, open(os.environ['KASCADE_OUTPUTS'], 'w'))\n"
    ),
}
PROPERTIES = (
    "version: 2\nsources:\n  - name: raw\n    tables: [{name: t}]\n",
    "version: 2\nmodels:\n  - name: m1\n    columns:\n      - name: one\n"
    "        data_tests: [not_null, unique]\n",
    "version: 2\nmodels:\n  - name: m1\n    data_tests:\n"
    "      - accepted_values: {arguments: {column_name: one, values: [1]},\n"
    "                          config: {severity: warn}}\n",
    "version: 2\nmodels: 5\n",
    "version: 2\nmodels:\n  - name: m1\n    data_tests: [{a: 1, b: 2}, 7, {x: 3}]\n",
    "version: 2\nsources:\n  - name: raw\n    tables: 7\n",
    "version: 2\nseeds:\n  - {name: s1, columns: [{name: id, data_tests: [{relationships: "
    "{arguments: {to: \"ref('nope')\", field: id}}}]}]}\n",
    "{",
)
CONNECTORS = (
    "source: {path: data/a.csv}\ndestination: {table: raw.a}\n",
    "source: {path: ../outside/secret.csv}\ndestination: {table: raw.a}\n",
    "source: {path: /etc/passwd}\ndestination: {table: raw.a}\n",
    "source: {path: 'data/*.csv', format: nope}\ndestination: {table: a}\n",
    "[",
)


@st.composite
def project_trees(draw: st.DrawFn) -> ProjectTree:
    """A project directory's content, with the odd bad file."""
    tree = ProjectTree(files=dict(SCRIPTS))
    good = draw(st.sampled_from((True, True, False)))
    dbt_project = draw(st.sampled_from(DBT_PROJECTS[:3] if good else DBT_PROJECTS))
    if dbt_project is not None:
        tree.files["dbt_project.yml"] = dbt_project
    if good:
        tree.files["models/m1.sql"] = "select 1 as one"
    for name in draw(st.lists(st.sampled_from(MODEL_NAMES[1:]), max_size=3, unique=True)):
        fragments = GOOD_MODEL_FRAGMENTS if good else MODEL_FRAGMENTS
        parts = draw(st.lists(st.sampled_from(fragments), min_size=1, max_size=2))
        folder = draw(st.sampled_from(("models", "models/staging", "models/marts")))
        tree.files[f"{folder}/{name}.sql"] = "\n".join(parts)
    if draw(st.booleans()):
        tree.files["models/properties.yml"] = draw(
            st.sampled_from(PROPERTIES[:3] if good else PROPERTIES)
        )
    if draw(st.booleans()):
        tree.files["seeds/s1.csv"] = "id\n1\n"
        tree.files["tests/no_negative.sql"] = "select * from {{ ref('s1') }} where id < 0"
    tree.files["data/a.csv"] = "id,x\n1,2\n"
    tree.files["connectors/files.yaml"] = draw(st.sampled_from(CONNECTORS[:1] * 3 + CONNECTORS))
    tree.files["connectors/outside.yaml"] = CONNECTORS[1]
    odd = draw(
        st.lists(
            st.sampled_from(("link-out", "link-dir-root", "dangling", "fifo", "link-in")),
            max_size=0 if good else 2,
            unique=True,
        )
    )
    if "link-out" in odd:
        tree.links["models/leak.sql"] = "../outside/secret.sql"
    if "link-dir-root" in odd:
        tree.links["models/root"] = "/"
    if "dangling" in odd:
        tree.links["models/gone.sql"] = "nowhere.sql"
    if "fifo" in odd:
        tree.fifos.append("models/pipe.sql")
    if "link-in" in odd:
        tree.links["models/again.sql"] = "../data/a.csv"
    return tree


def describe(tree: ProjectTree) -> str:
    """The tree, for a failing example's report."""
    return json.dumps({"files": tree.files, "links": tree.links, "fifos": tree.fifos}, indent=1)

"""Every selector form, on a fixture project, with dbt's meaning."""

from __future__ import annotations

import pytest

from kascade.engine.errors import SelectorError
from kascade.engine.project import Project
from kascade.engine.selectors import parse_criterion
from kascade.engine.selectors import select as select_ids


def select(project: Project, include, exclude=None) -> set[str]:
    """The names of the models a selection picks (sources it reaches left out)."""
    return {
        project.resources[uid].name
        for uid in select_ids(project, include, exclude)
        if project.resources[uid].kind == "model"
    }


ALL = {"stg_a", "stg_b", "stg_c", "int_ab", "fct_x", "dim_y", "rpt_z", "top_level"}


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        # bare names, wildcards, folders (fqn is the default method)
        (["stg_a"], None, {"stg_a"}),
        (["stg_*"], None, {"stg_a", "stg_b", "stg_c"}),
        (["*_ab"], None, {"int_ab"}),
        (["staging"], None, {"stg_a", "stg_b", "stg_c"}),
        (["marts.finance"], None, {"fct_x", "rpt_z"}),
        (["shop.marts.marketing"], None, {"dim_y"}),
        (["nothing_like_this"], None, set()),
        # fqn:
        (["fqn:marts.finance.*"], None, {"fct_x", "rpt_z"}),
        (["fqn:marts.*"], None, {"fct_x", "dim_y", "rpt_z"}),
        (["fqn:shop.staging.stg_b"], None, {"stg_b"}),
        (["fqn:*"], None, ALL),
        (["fqn:top_level"], None, {"top_level"}),
        # tag: (folder tags accumulate; config() tags add; wildcards)
        (["tag:staging"], None, {"stg_a", "stg_b", "stg_c"}),
        (["tag:mart"], None, {"fct_x", "dim_y", "rpt_z"}),
        (["tag:finance"], None, {"fct_x", "rpt_z"}),
        (["tag:pii"], None, {"dim_y"}),
        (["tag:extra"], None, {"stg_c"}),
        (["tag:all"], None, ALL),
        (["tag:fin*"], None, {"fct_x", "rpt_z"}),
        (["tag:Staging"], None, set()),
        # path: directory prefix, file, glob
        (["path:models/marts"], None, {"fct_x", "dim_y", "rpt_z"}),
        (["path:models/marts/"], None, {"fct_x", "dim_y", "rpt_z"}),
        (["path:./models/staging"], None, {"stg_a", "stg_b", "stg_c"}),
        (["path:models/staging/stg_a.sql"], None, {"stg_a"}),
        (["path:models/*/finance"], None, {"fct_x", "rpt_z"}),
        (["path:models/**/rpt_*.sql"], None, {"rpt_z"}),
        (["path:models/staging/stg_[ab].sql"], None, {"stg_a", "stg_b"}),
        (["path:models/mar"], None, set()),
        (["models/marts/marketing"], None, {"dim_y"}),  # a bare value with "/" is a path
        # file:
        (["file:fct_x.sql"], None, {"fct_x"}),
        (["file:stg_c"], None, {"stg_c"}),
        (["stg_b.sql"], None, {"stg_b"}),  # a bare value ending in .sql is a file
        # config.<key>:
        (["config.materialized:table"], None, {"fct_x", "rpt_z"}),
        (
            ["config.materialized:view"],
            None,
            {"stg_a", "stg_b", "stg_c", "int_ab", "dim_y", "top_level"},
        ),
        (["config.schema:other"], None, {"stg_c"}),
        (["config.tags:pii"], None, {"dim_y"}),
        (["config.enabled:true"], None, ALL),
        # package:
        (["package:shop"], None, ALL),
        # graph operators
        (["+int_ab"], None, {"int_ab", "stg_a", "stg_b"}),
        (["+rpt_z"], None, {"rpt_z", "fct_x", "int_ab", "stg_a", "stg_b"}),
        (["1+rpt_z"], None, {"rpt_z", "fct_x"}),
        (["2+rpt_z"], None, {"rpt_z", "fct_x", "int_ab"}),
        (["0+rpt_z"], None, {"rpt_z"}),
        (["int_ab+"], None, {"int_ab", "fct_x", "dim_y", "rpt_z"}),
        (["int_ab+1"], None, {"int_ab", "fct_x", "dim_y"}),
        (["stg_b+1"], None, {"stg_b", "int_ab", "dim_y"}),
        (["+fct_x+"], None, {"stg_a", "stg_b", "int_ab", "fct_x", "rpt_z"}),
        (["@stg_a"], None, {"stg_a", "int_ab", "fct_x", "dim_y", "rpt_z", "stg_b"}),
        (["@fct_x"], None, {"fct_x", "rpt_z", "int_ab", "stg_a", "stg_b"}),
        (["+tag:finance"], None, {"fct_x", "rpt_z", "int_ab", "stg_a", "stg_b"}),
        (["tag:staging+1"], None, {"stg_a", "stg_b", "stg_c", "int_ab", "dim_y"}),
        (["+path:models/marts/marketing"], None, {"dim_y", "int_ab", "stg_a", "stg_b"}),
        # union: list entries and spaces
        (["stg_a", "stg_b"], None, {"stg_a", "stg_b"}),
        (["stg_a stg_b  fct_x"], None, {"stg_a", "stg_b", "fct_x"}),
        # intersection: commas (graph operators bind to each atom)
        (["tag:mart,tag:finance"], None, {"fct_x", "rpt_z"}),
        (["+rpt_z,tag:staging"], None, {"stg_a", "stg_b"}),
        (["tag:mart,config.materialized:view"], None, {"dim_y"}),
        (["tag:mart,tag:staging"], None, set()),
        (["tag:mart,tag:finance dim_y"], None, {"fct_x", "rpt_z", "dim_y"}),
        # exclude
        (["tag:mart"], ["tag:finance"], {"dim_y"}),
        (["+rpt_z"], ["tag:staging"], {"rpt_z", "fct_x", "int_ab"}),
        (["tag:all"], ["int_ab+"], {"stg_a", "stg_b", "stg_c", "top_level"}),
        (
            ["tag:all"],
            ["stg_a stg_b", "tag:mart,tag:finance"],
            {"stg_c", "int_ab", "dim_y", "top_level"},
        ),
        (None, None, ALL),
        (None, ["tag:all"], set()),
    ],
)
def test_selection(shop: Project, include, exclude, expected):
    assert select(shop, include, exclude) == expected


def test_ancestors_come_from_the_whole_project_not_the_selection(shop: Project):
    # int_ab is excluded from the node, but +fct_x still walks through it to the staging models
    assert select(shop, ["+fct_x"], ["int_ab"]) == {"fct_x", "stg_a", "stg_b"}


@pytest.mark.parametrize(
    ("text", "method", "value", "parents", "parents_depth", "children", "children_depth", "at"),
    [
        ("x", "fqn", "x", False, None, False, None, False),
        ("+x", "fqn", "x", True, None, False, None, False),
        ("3+tag:t", "tag", "t", True, 3, False, None, False),
        ("x+", "fqn", "x", False, None, True, None, False),
        ("path:a/b+2", "path", "a/b", False, None, True, 2, False),
        ("@x", "fqn", "x", False, None, False, None, True),
        ("12+x+4", "fqn", "x", True, 12, True, 4, False),
        ("config.materialized:table", "config", "table", False, None, False, None, False),
    ],
)
def test_parse_criterion(text, method, value, parents, parents_depth, children, children_depth, at):
    c = parse_criterion(text)
    assert (c.method, c.value, c.parents, c.parents_depth) == (
        method,
        value,
        parents,
        parents_depth,
    )
    assert (c.children, c.children_depth, c.childrens_parents) == (children, children_depth, at)


def test_config_key_is_kept():
    assert parse_criterion("config.meta.owner:ana").key == ("meta", "owner")


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("tag:", "has no value"),
        ("+", "has no value"),
        ("@x+", "incompatible"),
        ("++x", "graph operators go only at the ends"),
        ("a+b", "graph operators go only at the ends"),
        ("x@", "graph operators go only at the ends"),
        ("colour:red", "unknown method `colour`"),
        ("config:table", "config needs a key"),
        ("tag.x:y", "method `tag` takes no `.x`"),
        ("tag:a,,tag:b", "empty criterion"),
        (",tag:a", "empty criterion"),
        ("   ", "empty selector"),
    ],
)
def test_unparsable_selectors_are_errors_that_quote_the_selector(shop: Project, selector, message):
    with pytest.raises(SelectorError, match=message):
        select(shop, [selector])

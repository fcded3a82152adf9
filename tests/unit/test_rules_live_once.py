"""Each domain rule is written once: a second copy of it elsewhere in ``app/`` fails here.

A copy passes every behavioural test on the day it is made and drifts later,
so these checks read the source (``ast``) for the marks each rule leaves:
the tier compared with ``"free"`` (may this viewer play this video), a
poster key turned into a URL path, a page-size maximum, an ISO date parsed
from what an admin typed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

import app.http.admin
import app.http.viewer
import app.web.admin_views
import app.web.watch_views
from app.dynamo import MAX_PAGE_SIZE, check_limit

ROOT = Path(__file__).resolve().parents[2]
UNTIL_ADAPTERS = ("app/http/admin.py", "app/web/admin_views.py", "app/ops/admin_cli.py")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((ROOT / "app").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def tree_of(name: str) -> ast.Module:
    return ast.parse((ROOT / name).read_text(encoding="utf-8"))


def where(predicate: type[ast.AST], test: object) -> set[str]:
    """The modules holding a node of type ``predicate`` for which ``test(node)`` holds."""
    return {
        name
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, predicate) and test(node)  # type: ignore[operator]
    }


def _is_tier(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "tier"


def _is_free(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == "free"


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_only_the_playback_rule_compares_a_video_tier_with_free() -> None:
    def tier_is_free(node: ast.Compare) -> bool:
        sides = [node.left, *node.comparators]
        return any(map(_is_tier, sides)) and any(map(_is_free, sides))

    assert where(ast.Compare, tier_is_free) == {"app/playback.py"}


def test_only_the_catalog_turns_a_poster_key_into_a_url() -> None:
    def poster_path(node: ast.Call) -> bool:
        return _called(node) == "object_key_to_path" and any(
            isinstance(inner, ast.Attribute) and inner.attr == "poster_key"
            for arg in node.args
            for inner in ast.walk(arg)
        )

    assert where(ast.Call, poster_path) == {"app/catalog.py"}


def test_only_the_core_names_a_page_size_maximum() -> None:
    maximum = re.compile(r"(MAX.*(PAGE|LIMIT))|((PAGE|LIMIT).*MAX)", re.IGNORECASE)

    def names_a_maximum(node: ast.Assign | ast.AnnAssign) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and maximum.search(t.id) for t in targets)

    assert where(ast.Assign, names_a_maximum) | where(ast.AnnAssign, names_a_maximum) == {
        "app/dynamo.py"
    }


def test_every_default_and_offered_page_size_obeys_the_rule() -> None:
    sizes = [
        app.http.viewer.DEFAULT_PAGE_SIZE,
        app.http.admin.DEFAULT_PAGE_SIZE,
        app.web.watch_views.DEFAULT_PAGE_SIZE,
        app.web.admin_views.DEFAULT_PAGE_SIZE,
        *app.web.admin_views.PAGE_SIZES,
    ]
    assert [check_limit(size) for size in sizes] == sizes
    assert max(app.web.admin_views.PAGE_SIZES) == MAX_PAGE_SIZE


def test_the_documented_limit_maximum_is_the_core_maximum() -> None:
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    limits = [
        parameter["schema"]
        for path in spec["paths"].values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
        if isinstance(parameter, dict) and parameter.get("name") == "limit"
    ]
    limits.append(spec["components"]["parameters"]["Limit"]["schema"])
    assert len(limits) >= 2
    assert {(schema["minimum"], schema["maximum"]) for schema in limits} == {(1, MAX_PAGE_SIZE)}


def test_the_admin_api_form_and_cli_read_until_only_through_parse_until() -> None:
    for name in UNTIL_ADAPTERS:
        calls = {_called(node) for node in ast.walk(tree_of(name)) if isinstance(node, ast.Call)}
        assert "parse_until" in calls, name
        assert not calls & {"fromisoformat", "strptime", "isoparse", "parse"}, name

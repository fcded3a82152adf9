"""The front door's rate limits in AWS equal app/ratelimits.py, read from the templates.

The web ACL of infra/template.yaml (and of the stand-alone infra/waf.yaml for
stacks outside us-east-1) must be what infra/render.py writes from
app/ratelimits.py, and its statements must select exactly the requests the
definition's rules select: a small interpreter of the WAF statements used here
(byte matches on the method and the URI path, with their text transformations,
under And/Or/Not) runs both over a corpus of requests, encoded and dotted paths
included. The HTTP API stage's route throttles equal ROUTE_THROTTLES and name
routes that exist before the stage.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from app.ratelimits import (
    HTML_BODY,
    JSON_BODY,
    MIN_LIMIT,
    RATE_RULES,
    ROUTE_THROTTLES,
    WINDOWS_SECONDS,
    Answer,
    normalize_path,
    url_decode,
)
from infra import render, waf
from tests.infra.cfn import BASE, ROOT, SCENARIOS, load, of_type, resolve
from tests.infra.test_template_lint import _tool

RAW = load()
WAF_TEMPLATE = ROOT / "infra" / "waf.yaml"
ACL_ARN = (
    "arn:aws:wafv2:us-east-1:123456789012:global/webacl/vidgate-front-door/"
    "a1b2c3d4-5678-90ab-cdef-0123456789ab"
)

# --------------------------------------------------------------------------- the resource


def _web_acl(template: dict[str, Any]) -> dict[str, Any]:
    (acl,) = of_type(template, "AWS::WAFv2::WebACL").values()
    return acl


def test_the_web_acl_is_rendered_from_app_ratelimits() -> None:
    acl = _web_acl(RAW)
    assert acl["Condition"] == render.WEB_ACL_CONDITION
    assert acl["Properties"] == waf.web_acl_properties()
    standalone = _web_acl(load(WAF_TEMPLATE))
    assert "Condition" not in standalone
    assert standalone["Properties"] == waf.web_acl_properties()


def test_the_generated_web_acl_blocks_are_current() -> None:
    text = render.TEMPLATE.read_text(encoding="utf-8")
    assert render.render_template(text) == text, "run: python infra/render.py"
    standalone = WAF_TEMPLATE.read_text(encoding="utf-8")
    assert render.render_waf_template(standalone) == standalone, "run: python infra/render.py"


def test_the_web_acl_guards_cloudfront_and_allows_what_no_rule_refuses() -> None:
    props = _web_acl(RAW)["Properties"]
    assert props["Scope"] == "CLOUDFRONT"
    assert props["DefaultAction"] == {"Allow": {}}
    bodies = props["CustomResponseBodies"]
    assert bodies[waf.BODY_KEYS[Answer.JSON]] == {
        "ContentType": "APPLICATION_JSON",
        "Content": JSON_BODY,
    }
    assert bodies[waf.BODY_KEYS[Answer.HTML]] == {"ContentType": "TEXT_HTML", "Content": HTML_BODY}


def test_each_rule_is_a_per_ip_rate_rule_with_the_definitions_numbers() -> None:
    rules = _web_acl(RAW)["Properties"]["Rules"]
    assert [r["Name"] for r in rules] == [rule.name for rule in RATE_RULES]
    assert [r["Priority"] for r in rules] == sorted(r["Priority"] for r in rules)
    for got, rule in zip(rules, RATE_RULES, strict=True):
        rate = got["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP", rule.name
        assert rate["Limit"] == rule.limit >= MIN_LIMIT
        assert rate["EvaluationWindowSec"] == rule.window_seconds in WINDOWS_SECONDS
        response = got["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        assert response["CustomResponseBodyKey"] == waf.BODY_KEYS[rule.answer]
        assert response["ResponseHeaders"] == [
            {"Name": "Retry-After", "Value": str(rule.window_seconds)}
        ]
        assert got["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True


# --------------------------------------------------------------------------- what they select

_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "NONE": lambda text: text,
    "URL_DECODE": url_decode,
    "NORMALIZE_PATH": normalize_path,
}
_POSITIONS: dict[str, Callable[[str, str], bool]] = {
    "EXACTLY": lambda value, search: value == search,
    "STARTS_WITH": str.startswith,
    "ENDS_WITH": str.endswith,
}


def _evaluate(statement: dict[str, Any], method: str, raw_path: str) -> bool:
    """The WAF statements this web ACL uses, evaluated on one request."""
    ((kind, body),) = statement.items()
    if kind == "AndStatement":
        assert len(body["Statements"]) >= 2, "WAF needs two or more statements"
        return all(_evaluate(s, method, raw_path) for s in body["Statements"])
    if kind == "OrStatement":
        assert len(body["Statements"]) >= 2, "WAF needs two or more statements"
        return any(_evaluate(s, method, raw_path) for s in body["Statements"])
    if kind == "NotStatement":
        return not _evaluate(body["Statement"], method, raw_path)
    assert kind == "ByteMatchStatement", kind
    (field,) = body["FieldToMatch"]
    value = {"Method": method, "UriPath": raw_path}[field]
    for transform in sorted(body["TextTransformations"], key=lambda t: t["Priority"]):
        value = _TRANSFORMS[transform["Type"]](value)
    return _POSITIONS[body["PositionalConstraint"]](value, body["SearchString"])


CORPUS = [
    (method, path)
    for method in ("GET", "POST", "PUT", "DELETE", "HEAD")
    for path in (
        "/",
        "/auth/sign-in",
        "/auth/sign-up",
        "/auth/confirm",
        "/auth/confirm/resend",
        "/auth/forgot",
        "/auth/reset",
        "/auth/sign-out",
        "/auth",
        "/authx/sign-in",
        "/%61uth/sign-in",
        "/auth%2Fsign-in",
        "//auth//sign-in",
        "/static/../auth/sign-in",
        "/api/videos",
        "/api/videos/premium-aurora",
        "/api/videos/premium-aurora/playback",
        "/api/videos/a%2Fb/playback",
        "/api/videos/playback",
        "/api/me",
        "/api/admin/users",
        "/watch/premium-aurora",
        "/watch/premium-aurora/grant",
        "/watch/grant",
        "/watch/a/grant/",
        "/videos/premium-aurora/hls/master.m3u8",
        "/%76ideos/x/clip.mp4",
        "/posters/premium-aurora.jpg",
        "/static/player.js",
        "/admin/users/u1",
    )
]


def test_the_web_acls_statements_select_what_the_definitions_rules_select() -> None:
    from app.ratelimits import normalized_path

    rules = _web_acl(RAW)["Properties"]["Rules"]
    for got, rule in zip(rules, RATE_RULES, strict=True):
        statement = got["Statement"]["RateBasedStatement"].get("ScopeDownStatement")
        for method, path in CORPUS:
            in_waf = statement is None or _evaluate(statement, method, path)
            assert in_waf == rule.applies(method, normalized_path(path)), (rule.name, method, path)


def test_the_corpus_reaches_every_rule_and_leaves_signed_media_alone() -> None:
    from app.ratelimits import matching_rules

    hit = {rule.name for method, path in CORPUS for rule in matching_rules(method, path)}
    assert hit == {rule.name for rule in RATE_RULES}
    assert matching_rules("GET", "/videos/premium-aurora/hls/master.m3u8") == []


# --------------------------------------------------------------------------- the distribution


def test_a_stack_without_web_acl_arn_creates_the_web_acl_and_attaches_it() -> None:
    for name, overrides in SCENARIOS.items():
        deployed = resolve(RAW, overrides)
        assert "WebAcl" in deployed["Resources"], name
        config = deployed["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
        assert config["WebACLId"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}, name


def test_a_stack_given_web_acl_arn_attaches_that_one_and_creates_none() -> None:
    deployed = resolve(RAW, {**BASE, "WebAclArn": ACL_ARN})
    assert "WebAcl" not in deployed["Resources"]
    config = deployed["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Ref": "WebAclArn"}
    assert deployed["Outputs"]["WebAclArn"]["Value"] == {"Ref": "WebAclArn"}


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("", True),
        (ACL_ARN, True),
        (ACL_ARN.replace("us-east-1", "eu-west-1"), False),  # CloudFront ACLs live in us-east-1
        (ACL_ARN.replace(":global/", ":regional/"), False),  # a regional ACL cannot attach
        ("arn:aws:wafv2:us-east-1:123456789012:global/ipset/x/abc", False),
    ],
)
def test_the_web_acl_arn_parameter_takes_only_a_cloudfront_web_acl(
    arn: str, accepted: bool
) -> None:
    pattern = RAW["Parameters"]["WebAclArn"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, arn)) is accepted


def test_the_stand_alone_web_acl_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [_tool("cfn-lint"), "--format", "parseable", str(WAF_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = load(WAF_TEMPLATE)["Outputs"]
    assert outputs["WebAclArn"]["Value"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


# --------------------------------------------------------------------------- the HTTP API stage


def test_the_stage_throttles_each_route_of_route_throttles_in_its_own_bucket() -> None:
    (stage_id, stage), *others = of_type(RAW, "AWS::ApiGatewayV2::Stage").items()
    assert not others
    assert stage["Properties"]["RouteSettings"] == waf.route_settings()
    routes = {
        body["Properties"]["RouteKey"]: name
        for name, body in of_type(RAW, "AWS::ApiGatewayV2::Route").items()
    }
    needed = {routes[throttle.route_key] for throttle in ROUTE_THROTTLES}
    # A route named in RouteSettings must exist before the stage, or the create fails.
    assert needed <= set(stage.get("DependsOn", [])), stage_id


def test_throttled_routes_reach_the_same_function_as_before() -> None:
    routes = of_type(RAW, "AWS::ApiGatewayV2::Route")
    targets = {
        body["Properties"]["RouteKey"]: body["Properties"]["Target"]["Fn::Sub"]
        for body in routes.values()
    }
    assert targets["POST /auth/{proxy+}"] == targets["$default"]
    assert targets["POST /watch/{id}/grant"] == targets["$default"]


def test_the_deploy_guide_shows_the_definitions_numbers() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([a-z-]+)` \| .+ \| (\d+) per (\d+) s \| 429 (JSON|page) \|$", text, re.M
    )
    shown = {name: (int(limit), int(window), answer) for name, limit, window, answer in rows}
    assert shown == {
        rule.name: (
            rule.limit,
            rule.window_seconds,
            "JSON" if rule.answer is Answer.JSON else "page",
        )
        for rule in RATE_RULES
    }

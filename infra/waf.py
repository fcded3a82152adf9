"""The site's AWS WAF web ACL as CloudFormation, built from :mod:`app.ratelimits`.

:func:`web_acl_resource` is the ``AWS::WAFv2::WebACL`` (scope ``CLOUDFRONT``)
that ``infra/render.py`` writes into ``infra/template.yaml`` and into the
stand-alone ``infra/waf.yaml``: one rate-based rule per
:class:`~app.ratelimits.RateRule`, aggregated by client IP, its scope-down
statement matching the rule's methods and paths on the URI path after
``URL_DECODE`` and ``NORMALIZE_PATH`` (what :func:`app.ratelimits.normalized_path`
does locally), and a Block action answering 429 with the rule's body and a
``Retry-After`` of its window. docs/deploy.md#rate-limits describes it.
"""

from __future__ import annotations

from typing import Any

from app.ratelimits import (
    HTML_BODY,
    JSON_BODY,
    RATE_RULES,
    ROUTE_THROTTLES,
    Answer,
    PathPattern,
    RateRule,
)

RESOURCE_ID = "WebAcl"
"""The web ACL's logical id, in both templates."""

URI_PATH_TRANSFORMS: list[dict[str, Any]] = [
    {"Priority": 0, "Type": "URL_DECODE"},
    {"Priority": 1, "Type": "NORMALIZE_PATH"},
]
"""Applied to the URI path before matching, so ``/%61uth//sign-in`` cannot slip past ``/auth/``."""

BODY_KEYS = {Answer.JSON: "rate-limited-json", Answer.HTML: "rate-limited-html"}
_CONTENT_TYPES = {Answer.JSON: "APPLICATION_JSON", Answer.HTML: "TEXT_HTML"}
_BODIES = {Answer.JSON: JSON_BODY, Answer.HTML: HTML_BODY}

Statement = dict[str, Any]


def _match(field: Statement, position: str, value: str, transforms: list[Statement]) -> Statement:
    return {
        "ByteMatchStatement": {
            "FieldToMatch": field,
            "PositionalConstraint": position,
            "SearchString": value,
            "TextTransformations": [dict(t) for t in transforms],
        }
    }


def _all(statements: list[Statement]) -> Statement:
    # WAF's And/Or statements take two or more statements; one stands alone.
    return statements[0] if len(statements) == 1 else {"AndStatement": {"Statements": statements}}


def _any(statements: list[Statement]) -> Statement:
    return statements[0] if len(statements) == 1 else {"OrStatement": {"Statements": statements}}


def path_statement(pattern: PathPattern) -> Statement:
    """The URI path starts with the pattern's prefix (and ends with its suffix)."""
    parts = [_match({"UriPath": {}}, "STARTS_WITH", pattern.prefix, URI_PATH_TRANSFORMS)]
    if pattern.suffix:
        parts.append(_match({"UriPath": {}}, "ENDS_WITH", pattern.suffix, URI_PATH_TRANSFORMS))
    return _all(parts)


def scope_down(rule: RateRule) -> Statement | None:
    """The statement that selects the requests ``rule`` counts; None when it counts them all."""
    parts: list[Statement] = []
    if rule.methods:
        none = [{"Priority": 0, "Type": "NONE"}]
        parts.append(
            _any([_match({"Method": {}}, "EXACTLY", m, none) for m in sorted(rule.methods)])
        )
    if rule.paths:
        parts.append(_any([path_statement(p) for p in rule.paths]))
    if rule.except_paths:
        parts.append(
            {"NotStatement": {"Statement": _any([path_statement(p) for p in rule.except_paths])}}
        )
    return _all(parts) if parts else None


def waf_rule(rule: RateRule, priority: int) -> Statement:
    """One rate-based rule: per client IP, ``rule.limit`` requests per ``rule.window_seconds``."""
    rate: Statement = {
        "Limit": rule.limit,
        "EvaluationWindowSec": rule.window_seconds,
        "AggregateKeyType": "IP",
    }
    statement = scope_down(rule)
    if statement is not None:
        rate["ScopeDownStatement"] = statement
    return {
        "Name": rule.name,
        "Priority": priority,
        "Statement": {"RateBasedStatement": rate},
        "Action": {
            "Block": {
                "CustomResponse": {
                    "ResponseCode": 429,
                    "CustomResponseBodyKey": BODY_KEYS[rule.answer],
                    # WAF cannot compute when the client's count drops: the window bounds it.
                    "ResponseHeaders": [{"Name": "Retry-After", "Value": str(rule.window_seconds)}],
                }
            }
        },
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": f"rate-{rule.name}",
        },
    }


def web_acl_properties() -> Statement:
    """The ``AWS::WAFv2::WebACL`` properties: allow by default, the rate rules in order."""
    name = "${AWS::StackName}-front-door"
    return {
        "Name": {"Fn::Sub": name},
        "Scope": "CLOUDFRONT",
        "Description": "vidgate front door: per-client rate limits from app/ratelimits.py",
        "DefaultAction": {"Allow": {}},
        "CustomResponseBodies": {
            BODY_KEYS[answer]: {"ContentType": _CONTENT_TYPES[answer], "Content": _BODIES[answer]}
            for answer in Answer
        },
        "Rules": [waf_rule(rule, priority) for priority, rule in enumerate(RATE_RULES)],
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": {"Fn::Sub": name},
        },
    }


_CHECKOV_SKIPS = [
    {
        "id": "CKV_AWS_192",
        "comment": "The Log4j (JNDI lookup) managed rule group guards Java servers; every origin "
        "here is a Python Lambda function or S3. This web ACL carries the rate limits.",
    }
]


def web_acl_resource(condition: str | None) -> Statement:
    """The web ACL resource, created only under ``condition`` when one is given."""
    resource: Statement = {"Type": "AWS::WAFv2::WebACL"}
    if condition:
        resource["Condition"] = condition
    resource["Metadata"] = {"checkov": {"skip": [dict(skip) for skip in _CHECKOV_SKIPS]}}
    resource["Properties"] = web_acl_properties()
    return resource


def route_settings() -> dict[str, dict[str, int]]:
    """The HTTP API stage's ``RouteSettings``: each throttled route's own bucket."""
    return {
        throttle.route_key: {
            "ThrottlingRateLimit": throttle.rate_per_second,
            "ThrottlingBurstLimit": throttle.burst,
        }
        for throttle in ROUTE_THROTTLES
    }

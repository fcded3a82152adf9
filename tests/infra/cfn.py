"""Reading infra/template.yaml the way CloudFormation would, for the infra tests.

The template is parsed with cfn-lint's YAML loader (short-form tags such as
``!Sub`` become their long form, ``{"Fn::Sub": ...}``). :func:`resolve`
evaluates the template's Conditions for a set of parameter values and
replaces every ``Fn::If`` by its chosen branch, dropping ``AWS::NoValue``, so
a test sees the resources one particular deployment would get.
:func:`sam_transform` runs the ``AWS::Serverless-2016-10-31`` transform offline
(aws-sam-translator), as CloudFormation would before creating anything.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"

_NO_VALUE = object()

# Parameter values for the scenarios the tests look at (the rest keep their defaults).
PEM = "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n"
SECRET_A = "arn:aws:secretsmanager:us-east-1:123456789012:secret:vidgate/key/k1-AbCdEf"
SECRET_B = "arn:aws:secretsmanager:us-east-1:123456789012:secret:vidgate/key/k2-GhIjKl"
BASE = {
    "CognitoDomainPrefix": "vidgate-test",
    "SigningPublicKeyA": PEM,
    "SigningKeySecretArnA": SECRET_A,
}
SCENARIOS: dict[str, dict[str, str]] = {
    "oai": {**BASE, "OriginAccess": "OAI"},
    "oac": {**BASE, "OriginAccess": "OAC"},
    "rotating": {**BASE, "SigningPublicKeyB": PEM, "SigningKeySecretArnB": SECRET_B,
                 "ActiveSigningKey": "B"},
    "custom-domain": {**BASE, "DomainName": "watch.example.com",
                      "AcmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-1",
                      "SignInWith": "hosted-ui",
                      "ExtraCallbackUrls": "http://localhost:5000/auth/callback",
                      "ExtraLogoutUrls": "http://localhost:5000/"},
}  # fmt: skip


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain dicts and lists (long-form intrinsic functions)."""
    data: dict[str, Any] = json.loads(json.dumps(cfn_yaml.loads(path.read_text(encoding="utf-8"))))
    return data


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            value: Any = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise KeyError(f"parameter {name} has no default; give it in the scenario")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = [item.strip() for item in value.split(",")]
        values[name] = str(value) if spec.get("Type") in ("String", "Number") else value
    return values


def conditions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, bool]:
    """Every condition of the template, evaluated for ``params``."""
    definitions = template.get("Conditions", {})
    done: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return params[arg]
            if key == "Fn::Equals":
                return value(arg[0]) == value(arg[1])
            if key == "Fn::Not":
                return not value(arg[0])
            if key == "Fn::And":
                return all(value(item) for item in arg)
            if key == "Fn::Or":
                return any(value(item) for item in arg)
            if key == "Condition":
                return evaluate(arg)
        if isinstance(node, str | int | float | bool):
            return str(node) if not isinstance(node, bool) else node
        raise ValueError(f"cannot evaluate condition node {node!r}")

    def evaluate(name: str) -> bool:
        if name not in done:
            done[name] = bool(value(definitions[name]))
        return done[name]

    for name in definitions:
        evaluate(name)
    return done


def _strip(node: Any, active: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            name, yes, no = node["Fn::If"]
            return _strip(yes if active[name] else no, active)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        result = {}
        for key, item in node.items():
            stripped = _strip(item, active)
            if stripped is not _NO_VALUE:
                result[key] = stripped
        return result
    if isinstance(node, list):
        items = [_strip(item, active) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    return node


def resolve(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """The template as deployed with ``overrides``: conditional resources and
    outputs dropped, ``Fn::If`` decided, ``AWS::NoValue`` removed; ``Ref`` to a
    parameter left as it is (tests compare against those references)."""
    params = parameter_values(template, overrides)
    active = conditions(template, params)
    resolved = dict(template)
    for section in ("Resources", "Outputs"):
        kept = {
            name: body
            for name, body in template.get(section, {}).items()
            if "Condition" not in body or active[body["Condition"]]
        }
        resolved[section] = _strip(kept, active)
    resolved["_conditions"] = active
    resolved["_parameters"] = params
    return resolved


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sam_transform(overrides: dict[str, str]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation would deploy it with
    ``overrides`` (skips the test when aws-sam-translator is not installed)."""
    translator = pytest.importorskip(
        "samtranslator.translator.transform", reason="aws-sam-translator is not installed"
    )
    template = load()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # What `sam deploy` does with a local zip: upload it and point at S3.
            resource["Properties"]["CodeUri"] = "s3://vidgate-artifacts/lambda.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = translator.transform(template, overrides, NoManagedPolicies())
    return result


_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _names_used(node: Any) -> Iterator[str]:
    """Every logical name a Ref, Fn::GetAtt or Fn::Sub inside ``node`` points at."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield (value.split(".")[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                yield from (n for n in _SUB_NAME.findall(text) if n not in variables)
                yield from _names_used(variables)
            else:
                yield from _names_used(value)
    elif isinstance(node, list):
        for item in node:
            yield from _names_used(item)


def dependencies(template: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> the resources CloudFormation must create first (references and DependsOn)."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for name, body in resources.items():
        depends_on = body.get("DependsOn", [])
        used = set(_names_used(body.get("Properties", {}))) | set(as_list(depends_on))
        graph[name] = {other for other in used if other in resources}
    return graph


def requires(graph: dict[str, set[str]], start: str) -> set[str]:
    """Everything ``start`` needs, directly or through other resources."""
    seen: set[str] = set()
    pending = list(graph[start])
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(graph[name])
    return seen


def cycles(graph: dict[str, set[str]]) -> set[str]:
    """The resources that (indirectly) need themselves: CloudFormation refuses those."""
    return {name for name in graph if name in requires(graph, name)}


def render(node: Any, values: dict[str, str]) -> Any:
    """``node`` with Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Split evaluated.

    ``values`` names what a deployment would know: parameter values, pseudo
    parameters (``AWS::Region``), physical ids (``UserPoolDomain``) and
    attributes (``Distribution.DomainName``). A name it lacks is a KeyError, so a
    test never compares against an unresolved reference by accident.
    """
    if isinstance(node, list):
        return [render(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return values[arg]
        if key == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return values[f"{name}.{attribute}"]
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            known = {**values, **{k: render(v, values) for k, v in variables.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(known[m.group(1)]), text)
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(render(items, values))
        if key == "Fn::Split":
            separator, text = arg
            return str(render(text, values)).split(separator)
    return {key: render(item, values) for key, item in node.items()}


def rule_failures(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """AssertDescription of every template Rule that would refuse these parameter values."""
    params = parameter_values(template, overrides)
    failures = []
    for rule in template.get("Rules", {}).values():
        checks = {"when": rule.get("RuleCondition", True)}
        checks.update({f"assert{i}": a["Assert"] for i, a in enumerate(rule["Assertions"])})
        verdict = conditions({"Conditions": checks}, params)
        if verdict["when"]:
            failures += [
                a["AssertDescription"]
                for i, a in enumerate(rule["Assertions"])
                if not verdict[f"assert{i}"]
            ]
    return failures


# --------------------------------------------------------------------------- HTTP API routes


def http_api_routes(template: dict[str, Any]) -> dict[str, str]:
    """Route key (``GET /api/videos``, ``ANY /admin/{proxy+}``, ``$default``) -> the function
    its integration invokes."""
    routes: dict[str, str] = {}
    for route in of_type(template, "AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        match = re.fullmatch(r"integrations/\$\{(\w+)\}", props["Target"]["Fn::Sub"])
        assert match, props["Target"]
        integration = template["Resources"][match.group(1)]["Properties"]
        function, _attribute = integration["IntegrationUri"]["Fn::GetAtt"]
        routes[props["RouteKey"]] = function
    return routes


def _route_rank(route_key: str, method: str, path: str) -> tuple[bool, int, bool] | None:
    """How well ``route_key`` matches the request (lower is better), or None if it does not."""
    route_method, _, pattern = route_key.partition(" ")
    if not pattern or route_method not in (method, "ANY"):
        return None
    wanted = [part for part in path.strip("/").split("/") if part]
    parts = [part for part in pattern.strip("/").split("/") if part]
    greedy = bool(parts) and parts[-1].startswith("{") and parts[-1].endswith("+}")
    fixed = parts[:-1] if greedy else parts
    if len(wanted) < len(fixed) + (1 if greedy else 0) or (
        not greedy and len(wanted) != len(fixed)
    ):
        return None
    variables = 0
    for part, value in zip(fixed, wanted, strict=False):
        if part.startswith("{"):
            variables += 1
        elif part != value:
            return None
    return greedy, variables, route_method == "ANY"


def route_key_for(route_keys: Iterable[str], method: str, path: str) -> str | None:
    """The route an HTTP API chooses for ``method path``, or None (API Gateway's 404).

    API Gateway Developer Guide, "Routing API requests": a full match of path and
    method first, then a route with a greedy path variable (``{proxy+}``, one
    segment or more), then ``$default``; a route's own method goes before ``ANY``,
    and a literal segment before a path variable. A trailing slash matches the route
    without it, as HTTP APIs are observed to do (the template routes ``/admin`` and
    ``/admin/{proxy+}`` to the same function, so ``/admin/`` goes there either way).
    """
    keys = list(route_keys)
    ranked = [(rank, key) for key in keys if (rank := _route_rank(key, method, path)) is not None]
    if ranked:
        return min(ranked)[1]
    return "$default" if "$default" in keys else None

"""Reading infra/template.yaml the way CloudFormation would, for the infra tests.

The template is parsed with cfn-lint's YAML loader (short-form tags such as
``!Sub`` become their long form, ``{"Fn::Sub": ...}``). :func:`resolve`
evaluates the template's Conditions for a set of parameter values and
replaces every ``Fn::If`` by its chosen branch, dropping ``AWS::NoValue``, so
a test sees the resources one particular deployment would get.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    "custom-domains": {**BASE, "CdnDomainName": "media.example.com",
                       "CdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-1",
                       "WebBaseUrl": "https://watch.example.com"},
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

"""cfn-lint and checkov on infra/template.yaml, and the SAM transform of it.

cfn-lint must report nothing (no error, no warning). checkov must report no
failed check; every check the template suppresses carries its reason in the
resource's ``Metadata.checkov.skip`` and must really fail without the
suppression (no stale or blanket skips). When the SAM translator is
installed, the template is also transformed the way CloudFormation's
``AWS::Serverless-2016-10-31`` transform does, linted again, and the HTTP API
routes, integrations and invoke permissions of the result are checked against
the API contract.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cfn import SCENARIOS, TEMPLATE, load, sam_transform

# The tools installed beside the interpreter running the tests (the project's virtualenv).
VENV_BIN = Path(sys.executable).parent
MIN_REASON = 20

ROUTES = {
    ("POST", "/api/videos/{id}/playback"): "PlaybackFunction",
    ("GET", "/api/videos"): "PlaybackFunction",
    ("GET", "/api/videos/{id}"): "PlaybackFunction",
    ("GET", "/api/me"): "PlaybackFunction",
    ("DELETE", "/api/playback-sessions/{session_id}"): "PlaybackFunction",
    ("GET", "/api/me/streams"): "PlaybackFunction",
    ("GET", "/api/admin/users/{user_id}/streams"): "AdminFunction",
    ("DELETE", "/api/admin/users/{user_id}/streams/{session_id}"): "AdminFunction",
    ("GET", "/api/admin/users"): "AdminFunction",
    ("PUT", "/api/admin/users/{user_id}/premium"): "AdminFunction",
    ("GET", "/api/admin/audit"): "AdminFunction",
    ("ANY", "/admin"): "AdminWebFunction",
    ("ANY", "/admin/{proxy+}"): "AdminWebFunction",
    # Web app routes of their own only for their throttles (app/ratelimits.py ROUTE_THROTTLES).
    ("POST", "/auth/{proxy+}"): "WebFunction",
    ("POST", "/watch/{id}/grant"): "WebFunction",
    ("ANY", "$default"): "WebFunction",
    ("POST", "/webhooks/stripe"): "StripeWebhookFunction",
}
"""The HTTP API (docs/openapi.yaml) and the admin pages, by the function that answers them;
the viewer web app takes the rest."""


def _tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the dev extra (make dev) into this virtualenv")
    return str(path)


def _checkov(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            _tool("checkov"),
            "--file", str(path),
            "--framework", "cloudformation",
            "--skip-download",  # no Prisma Cloud calls: the machine is offline
            "--output", "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )  # fmt: skip


def _results(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=240)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {process.returncode}):\n{err[-3000:]}")
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == "cloudformation"]
    if "results" not in report:  # nothing scanned
        pytest.fail(f"checkov scanned nothing: {report}")
    results: dict[str, Any] = report["results"]
    return results


@pytest.fixture(scope="module")
def checkov_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """checkov on the template as it is, and on a copy without any suppression (in parallel)."""
    stripped = load()
    for resource in stripped["Resources"].values():
        if isinstance(resource.get("Metadata"), dict):
            resource["Metadata"].pop("checkov", None)
    copy = tmp_path_factory.mktemp("checkov") / "template-without-skips.json"
    copy.write_text(json.dumps(stripped), encoding="utf-8")
    as_is, bare = _checkov(TEMPLATE), _checkov(copy)
    yield {"as_is": _results(as_is), "without_skips": _results(bare)}


def test_cfn_lint_reports_nothing() -> None:
    result = subprocess.run(
        [_tool("cfn-lint"), "--format", "parseable", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_checkov_finds_no_failed_check(checkov_runs: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in checkov_runs["as_is"]["failed_checks"]
    ]
    assert failed == []
    assert checkov_runs["as_is"]["passed_checks"], "checkov passed nothing: did it scan?"


def test_every_checkov_suppression_has_a_reason(checkov_runs: dict[str, Any]) -> None:
    skipped = checkov_runs["as_is"]["skipped_checks"]
    assert skipped, "expected the documented suppressions to show as skipped"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) >= MIN_REASON, f"{check['check_id']} {check['resource']}"


def test_every_checkov_suppression_hides_a_check_that_really_fails(
    checkov_runs: dict[str, Any],
) -> None:
    skipped = {(c["check_id"], c["resource"]) for c in checkov_runs["as_is"]["skipped_checks"]}
    failing = {
        (c["check_id"], c["resource"]) for c in checkov_runs["without_skips"]["failed_checks"]
    }
    assert skipped == failing, {"stale skips": skipped - failing, "new": failing - skipped}


# --------------------------------------------------------------------------- SAM transform


def _routes(resources: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(method, path) -> the function each AWS::ApiGatewayV2::Route reaches."""
    routes = {}
    for route in (r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"):
        props = route["Properties"]
        assert props["ApiId"] == {"Ref": "HttpApi"}
        match = re.fullmatch(r"integrations/\$\{(\w+)\}", props["Target"]["Fn::Sub"])
        assert match, props["Target"]
        target = resources[match.group(1)]["Properties"]
        assert target["ApiId"] == {"Ref": "HttpApi"}
        assert target["IntegrationType"] == "AWS_PROXY"
        assert target["PayloadFormatVersion"] == "2.0"
        function, attribute = target["IntegrationUri"]["Fn::GetAtt"]
        assert attribute == "Arn"
        method, _, path = props["RouteKey"].partition(" ")
        key = (method, path) if path else ("ANY", method)
        assert key not in routes, f"route {key} defined twice"
        routes[key] = function
    return routes


@pytest.mark.parametrize("scenario", ["oai", "oac", "custom-domain"])
def test_the_sam_transform_accepts_the_template_and_routes_the_api_contract(
    scenario: str,
) -> None:
    output = sam_transform(SCENARIOS[scenario])
    resources = output["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    assert resources["HttpApi"]["Type"] == "AWS::ApiGatewayV2::Api"
    assert resources["HttpApi"]["Properties"]["ProtocolType"] == "HTTP"
    assert _routes(resources) == ROUTES
    for function in set(ROUTES.values()):
        assert resources[function]["Type"] == "AWS::Lambda::Function"
        assert resources[function]["Properties"]["Runtime"] == "python3.12"


def test_api_gateway_may_invoke_exactly_the_routed_functions_and_only_through_this_api() -> None:
    resources = sam_transform(SCENARIOS["oai"])["Resources"]
    invoked = {}
    for name, permission in resources.items():
        if permission["Type"] != "AWS::Lambda::Permission":
            continue
        props = permission["Properties"]
        if props["Principal"] != "apigateway.amazonaws.com":
            continue
        assert props["Action"] == "lambda:InvokeFunction", name
        # Without SourceArn any API in any account could invoke the function.
        assert props["SourceArn"] == {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}"
            ":${HttpApi}/*"
        }, name
        function, _ = props["FunctionName"]["Fn::GetAtt"]
        invoked[function] = name
    assert set(invoked) == set(ROUTES.values())


def test_the_stage_deploys_itself_logs_every_request_and_is_throttled() -> None:
    stages = [r for r in load()["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    (stage,) = stages
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]
    }
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"},
    }


def test_the_transformed_template_passes_cfn_lint_too(tmp_path: Path) -> None:
    # cfn-lint's E3004 also refuses a dependency cycle (tests/infra/test_template_front_door.py).
    output = sam_transform(SCENARIOS["oai"])
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(output), encoding="utf-8")
    result = subprocess.run(
        [_tool("cfn-lint"), "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

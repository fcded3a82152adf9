"""cfn-lint and checkov on infra/template.yaml, and the SAM transform of it.

cfn-lint must report nothing (no error, no warning). checkov must report no
failed check; every check the template suppresses carries its reason in the
resource's ``Metadata.checkov.skip`` and must really fail without the
suppression (no stale or blanket skips). When the SAM translator is
installed, the template is also transformed the way CloudFormation's
``AWS::Serverless-2016-10-31`` transform does, and the HTTP API routes of the
result are checked against the API contract.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.cfn import SCENARIOS, TEMPLATE, load

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
MIN_REASON = 20

ROUTES = {
    ("POST", "/api/videos/{id}/playback"): "PlaybackFunction",
    ("GET", "/api/videos"): "PlaybackFunction",
    ("GET", "/api/videos/{id}"): "PlaybackFunction",
    ("GET", "/api/me"): "PlaybackFunction",
    ("GET", "/api/admin/users"): "AdminFunction",
    ("PUT", "/api/admin/users/{user_id}/premium"): "AdminFunction",
    ("GET", "/api/admin/audit"): "AdminFunction",
    ("X-AMAZON-APIGATEWAY-ANY-METHOD", "$default"): "WebFunction",
}
"""DESIGN.md's HTTP API, by the function that answers it; the web app takes the rest."""


def _tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run make dev/test to install the dev extra")
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


def _transform(overrides: dict[str, str]) -> dict[str, Any]:
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


@pytest.mark.parametrize("scenario", ["oai", "oac"])
def test_the_sam_transform_accepts_the_template_and_routes_the_api_contract(
    scenario: str,
) -> None:
    output = _transform(SCENARIOS[scenario])
    resources = output["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    paths = resources["HttpApi"]["Properties"]["Body"]["paths"]
    routes = {}
    for path, methods in paths.items():
        for method, operation in methods.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            (function,) = re.findall(r"\$\{(\w+)\.Arn\}", uri)
            routes[(method.upper(), path)] = function
            assert operation["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    assert routes == ROUTES
    for function in set(ROUTES.values()):
        assert resources[function]["Type"] == "AWS::Lambda::Function"
        assert resources[function]["Properties"]["Runtime"] == "python3.12"


def test_the_transformed_template_passes_cfn_lint_too(tmp_path: Path) -> None:
    output = _transform(SCENARIOS["oai"])
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

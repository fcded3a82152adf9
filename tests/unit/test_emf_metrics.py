"""Playback metrics in the Embedded Metric Format: each line is a document CloudWatch accepts.

The shape follows the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
a root object with ``_aws.Timestamp`` (ms) and ``_aws.CloudWatchMetrics``, each directive a
``Namespace``, ``Dimensions`` (arrays of at most 30 keys, each a string member of the root) and
``Metrics`` (at most 100 ``{Name, Unit}``, each name a number member of the root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.auth import Principal
from app.auth.errors import AuthError
from app.errors import DependencyUnavailableError, PremiumRequiredError, VidgateError
from app.http.viewer import ViewerApi
from app.metrics import NAMESPACE, PlaybackMetrics, emf_document
from app.playback import Grant

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip
NOW_MS = 1_780_000_000_000


def assert_valid_emf(line: str) -> dict[str, Any]:
    """The spec's MUSTs for one log event; returns the parsed document."""
    document = json.loads(line)
    assert isinstance(document, dict)
    assert line == line.strip() and "\n" not in line, "one log event, nothing around the object"
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 0
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert directive["Dimensions"], "a directive without dimension sets publishes nothing"
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(document[key], str) and document[key], key
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric["Unit"] in UNITS
            value = document[metric["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool), metric
    return document


def recorded() -> tuple[PlaybackMetrics, list[str]]:
    lines: list[str] = []
    return PlaybackMetrics(lines.append, clock_ms=lambda: NOW_MS), lines


def test_a_grant_is_one_valid_emf_line_counting_one_grant_and_its_latency() -> None:
    metrics, lines = recorded()
    metrics.granted(12.3456, renewal=False)
    (line,) = lines
    document = assert_valid_emf(line)
    assert document["_aws"]["Timestamp"] == NOW_MS
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE == "vidgate"
    assert directive["Dimensions"] == [["Service"]]
    assert directive["Metrics"] == [
        {"Name": "Grants", "Unit": "Count"},
        {"Name": "PlaybackLatency", "Unit": "Milliseconds"},
    ]
    assert document["Grants"] == 1
    assert document["PlaybackLatency"] == 12.346
    assert document["Service"] == "playback"
    assert "Renewals" not in document and "Refusals" not in document


def test_a_renewal_counts_as_a_renewal_not_a_grant() -> None:
    metrics, lines = recorded()
    metrics.granted(3.0, renewal=True)
    document = assert_valid_emf(lines[0])
    assert document["Renewals"] == 1
    assert "Grants" not in document
    assert document["outcome"] == "renewal"


def test_a_refusal_is_counted_in_total_and_per_reason() -> None:
    metrics, lines = recorded()
    metrics.refused("unavailable", 40.0)
    document = assert_valid_emf(lines[0])
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["Service"], ["Service", "Reason"]]
    assert {m["Name"] for m in directive["Metrics"]} == {"Refusals", "PlaybackLatency"}
    assert document["Refusals"] == 1
    assert document["Reason"] == "unavailable"


def test_without_a_writer_nothing_is_written_and_nothing_fails() -> None:
    metrics = PlaybackMetrics()
    assert not metrics.enabled
    metrics.granted(1.0, renewal=False)
    metrics.refused("unauthorized", 1.0)


def test_a_dimension_set_naming_an_absent_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="missing dimensions"):
        emf_document({"Grants": (1, "Count")}, {"Service": "x"}, [["Reason"]], timestamp_ms=1)


def test_a_metric_named_like_a_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="clash"):
        emf_document({"Service": (1, "Count")}, {"Service": "x"}, [["Service"]], timestamp_ms=1)


def test_enable_stdout_prints_one_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = PlaybackMetrics(clock_ms=lambda: NOW_MS)
    metrics.enable_stdout()
    metrics.granted(1.0, renewal=False)
    metrics.refused("not_found", 1.0)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert [assert_valid_emf(line)["outcome"] for line in out] == ["grant", "refusal"]


def test_only_a_lambda_runtime_turns_the_lines_on(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = PlaybackMetrics(clock_ms=lambda: NOW_MS)
    assert quiet.enable_in_lambda({"AWS_REGION": "us-east-1"}) is False
    quiet.granted(1.0, renewal=False)
    assert capsys.readouterr().out == ""
    loud = PlaybackMetrics(clock_ms=lambda: NOW_MS)
    assert loud.enable_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "vidgate-PlaybackFunction-1"})
    loud.granted(1.0, renewal=False)
    assert_valid_emf(capsys.readouterr().out.strip())


@pytest.mark.parametrize(("in_lambda", "enabled"), [(True, True), (False, False)])
def test_the_playback_entry_point_enables_the_lines_in_lambda_only(
    in_lambda: bool, enabled: bool
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    if in_lambda:
        env["AWS_LAMBDA_FUNCTION_NAME"] = "vidgate-PlaybackFunction-1"
    code = "import lambda_handlers.playback, app.metrics as m; print(m.PROCESS.enabled)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(enabled)


# --- the viewer API writes them: one line per playback request, whatever the outcome ---------

PRINCIPAL = Principal("sub-1", "alice", None, (), "access", 2_000_000_000)
GRANT = Grant(
    url="https://d111.cloudfront.net/videos/a/a.mp4?Expires=1",
    expires_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=5),
    content_type="video/mp4",
    key_pair_id="K1",
    video_id="a",
    format="mp4",
)


class FakeVerifier:
    def __init__(self, error: VidgateError | None) -> None:
        self.error = error

    def verify(self, token: str) -> Principal:
        if self.error is not None:
            raise self.error
        return PRINCIPAL


class FakePlayback:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def authorize(self, principal: Principal, video_id: str, now: Any, **_: Any) -> Grant:
        if self.error is not None:
            raise self.error
        return GRANT


class FakeSettings:
    cdn_url = "https://d111.cloudfront.net"


class FakeServices:
    def __init__(self, auth_error: VidgateError | None, grant_error: Exception | None) -> None:
        self.access_verifier = FakeVerifier(auth_error)
        self.playback = FakePlayback(grant_error)
        self.settings = FakeSettings()


def playback_event(body: str = "{}") -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /api/videos/{id}/playback",
        "rawPath": "/api/videos/a/playback",
        "rawQueryString": "",
        "headers": {"authorization": "Bearer abc.def.ghi", "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/api/videos/a/playback", "sourceIp": "192.0.2.1"},
            "requestId": "r1",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def run(
    auth_error: VidgateError | None = None,
    grant_error: Exception | None = None,
    body: str = "{}",
) -> tuple[int, dict[str, Any]]:
    metrics, lines = recorded()
    ticks = iter([10.0, 10.025])
    services: Any = FakeServices(auth_error, grant_error)
    api = ViewerApi(services, metrics=metrics, timer=lambda: next(ticks))
    result = api(playback_event(body))
    (line,) = lines
    return result["statusCode"], assert_valid_emf(line)


def test_a_granted_request_writes_a_grant_line_with_the_requests_latency() -> None:
    status, document = run()
    assert status == 200
    assert document["Grants"] == 1
    assert document["PlaybackLatency"] == 25.0


@pytest.mark.parametrize(
    ("auth_error", "grant_error", "reason", "status"),
    [
        (AuthError("bad token"), None, "unauthorized", 401),
        (None, PremiumRequiredError("premium"), "premium_required", 403),
        (None, DependencyUnavailableError("dynamodb down"), "unavailable", 503),
        (None, RuntimeError("a bug"), "internal", 500),
    ],
)
def test_every_refused_request_writes_its_reason(
    auth_error: VidgateError | None, grant_error: Exception | None, reason: str, status: int
) -> None:
    got_status, document = run(auth_error, grant_error)
    assert got_status == status
    assert document["Refusals"] == 1
    assert document["Reason"] == reason


def test_a_bad_body_is_a_refusal_for_bad_request() -> None:
    status, document = run(body='{"format": "dash"}')
    assert status == 400
    assert document["Reason"] == "bad_request"

"""The API Gateway router: payload 2.0 events, path parameters, 404/405, and errors as JSON.

The HTTP API is the only API Gateway flavour deployed, so a REST API (payload
1.0) event is a malformed event: a 400 JSON error, never a 500 or a guess.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import DependencyUnavailableError, PremiumRequiredError, UnauthorizedError
from app.http.router import (
    MAX_BODY_BYTES,
    MalformedEventError,
    Request,
    Response,
    Router,
    json_response,
    parse_event,
)
from app.json_input import MAX_DEPTH

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def v2(method: str = "GET", path: str = "/api/videos", **fields: Any) -> dict[str, Any]:
    event = load_event("apigw-v2-list-videos.json")
    event["rawPath"] = path
    event["rawQueryString"] = ""
    event.pop("queryStringParameters")
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event.update(fields)
    return event


def rest_api_event(version: str | None = None) -> dict[str, Any]:
    """A REST API proxy event (payload 1.0) for GET /api/me, shaped like AWS's sample."""
    event: dict[str, Any] = {
        "resource": "/api/me",
        "path": "/api/me",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json", "Authorization": "Bearer TOKEN"},
        "multiValueHeaders": {
            "Accept": ["application/json"],
            "Authorization": ["Bearer TOKEN"],
        },
        "queryStringParameters": {"limit": "5"},
        "multiValueQueryStringParameters": {"limit": ["5"]},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/api/me",
            "httpMethod": "GET",
            "path": "/prod/api/me",
            "stage": "prod",
            "requestId": "f4e8b2c5-9be0-4acd-8f4f-6b2c3d4e5f60",
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "curl/8.5.0"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    if version is not None:
        event["version"] = version  # an HTTP API set to payload 1.0 says so
    return event


def body_of(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


seen: list[Request] = []


def echo(request: Request) -> Response:
    seen.append(request)
    return json_response({"params": dict(request.path_params), "query": dict(request.query)})


def explode(request: Request) -> Response:
    raise RuntimeError("secret detail: table vidgate-users")


def needs_json(request: Request) -> Response:
    return json_response(request.json_object(required=True))


def raises(exc: Exception) -> Any:
    def view(request: Request) -> Response:
        raise exc

    return view


@pytest.fixture
def router() -> Router:
    seen.clear()
    r = Router()
    r.add("GET", "/api/videos", echo)
    r.add("GET", "/api/videos/{id}", echo)
    r.add("POST", "/api/videos/{id}/playback", echo)
    r.add("GET", "/api/me", echo)
    r.add("GET", "/boom", explode)
    r.add("POST", "/json", needs_json)
    r.add("GET", "/premium", raises(PremiumRequiredError("needs premium")))
    r.add("GET", "/down", raises(DependencyUnavailableError("DynamoDB at 10.0.0.1 timed out")))
    r.add("GET", "/auth", raises(UnauthorizedError("kid abc not in JWKS")))
    return r


# --- parsing -----------------------------------------------------------------------


def test_an_http_api_v2_sample_event_is_read_with_lower_case_headers_cookies_and_query() -> None:
    event = load_event("apigw-v2-playback.json")
    event["rawQueryString"] = "a=1&b=two%20words"

    request = parse_event(event)

    assert request.method == "POST"
    assert request.path == "/api/videos/VIDEO_ID/playback"
    assert request.header("Authorization") == "Bearer TOKEN"
    assert request.cookies == {"theme": "dark", "lang": "en"}
    assert request.query == {"a": "1", "b": "two words"}
    assert request.source_ip == "192.0.2.1"
    assert request.request_id == "JKJaXmPLvHcESHA="
    assert request.body == b""


@pytest.mark.parametrize("version", [None, "1.0"])
def test_a_payload_1_0_event_is_not_read(version: str | None) -> None:
    with pytest.raises(MalformedEventError):
        parse_event(rest_api_event(version))


@pytest.mark.parametrize("version", [None, "1.0"])
def test_a_payload_1_0_event_is_a_400_json_error_in_the_2_0_result_shape(
    router: Router, version: str | None
) -> None:
    result = router.handle(rest_api_event(version))

    assert result["statusCode"] == 400
    assert result["headers"]["content-type"] == "application/json"
    assert body_of(result)["error"] == "bad_request"
    assert set(body_of(result)) == {"error", "message"}
    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert seen == [], "no view ran"


def test_a_base64_body_is_decoded() -> None:
    event = v2("POST", "/json", body=base64.b64encode(b'{"a": 1}').decode(), isBase64Encoded=True)

    assert parse_event(event).json_object() == {"a": 1}


# --- routing ----------------------------------------------------------------------


def test_path_parameters_are_extracted_and_percent_decoded_in_v2(router: Router) -> None:
    result = router.handle(v2("POST", "/api/videos/caf%C3%A9%201/playback"))

    assert result["statusCode"] == 200
    assert body_of(result)["params"] == {"id": "café 1"}


def test_an_encoded_slash_stays_inside_its_segment(router: Router) -> None:
    result = router.handle(v2("GET", "/api/videos/a%2Fb"))

    assert body_of(result)["params"] == {"id": "a/b"}


def test_a_trailing_slash_matches_the_same_route(router: Router) -> None:
    assert router.handle(v2("GET", "/api/videos/"))["statusCode"] == 200


def test_query_parameters_reach_the_view(router: Router) -> None:
    result = router.handle(load_event("apigw-v2-list-videos.json"))

    assert body_of(result) == {"params": {}, "query": {"limit": "2"}}


def test_a_named_stage_prefix_in_the_raw_path_is_ignored(router: Router) -> None:
    event = v2("GET", "/prod/api/me")
    event["requestContext"]["stage"] = "prod"

    assert router.handle(event)["statusCode"] == 200


def test_an_unknown_path_is_a_json_404(router: Router) -> None:
    result = router.handle(v2("GET", "/api/nothing-here"))

    assert result["statusCode"] == 404
    assert result["headers"]["content-type"] == "application/json"
    assert body_of(result)["error"] == "not_found"
    assert set(body_of(result)) == {"error", "message"}


def test_an_empty_path_parameter_does_not_match(router: Router) -> None:
    assert router.handle(v2("POST", "/api/videos//playback"))["statusCode"] == 404


def test_a_wrong_method_is_a_405_naming_the_allowed_ones(router: Router) -> None:
    result = router.handle(v2("DELETE", "/api/videos/x"))

    assert result["statusCode"] == 405
    assert result["headers"]["allow"] == "GET"
    assert body_of(result)["error"] == "method_not_allowed"


def test_a_lower_case_method_is_matched(router: Router) -> None:
    assert router.handle(v2("get", "/api/me"))["statusCode"] == 200


# --- errors -----------------------------------------------------------------------


def test_a_domain_refusal_becomes_its_status_and_stable_code(router: Router) -> None:
    result = router.handle(v2("GET", "/premium"))

    assert result["statusCode"] == 403
    assert body_of(result) == {"error": "premium_required", "message": "needs premium"}


def test_an_unavailable_dependency_is_a_503_without_its_detail(router: Router) -> None:
    result = router.handle(v2("GET", "/down"))

    assert result["statusCode"] == 503
    assert body_of(result)["error"] == "unavailable"
    assert "10.0.0.1" not in result["body"]


def test_an_auth_refusal_is_a_401_with_a_generic_message_and_a_challenge(router: Router) -> None:
    result = router.handle(v2("GET", "/auth"))

    assert result["statusCode"] == 401
    assert body_of(result)["error"] == "unauthorized"
    assert "kid" not in result["body"]
    assert result["headers"]["www-authenticate"].startswith("Bearer")


def test_an_unexpected_exception_is_a_500_with_the_detail_only_in_the_log(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="vidgate.api")

    result = router.handle(v2("GET", "/boom"))

    assert result["statusCode"] == 500
    assert body_of(result) == {"error": "internal", "message": "internal error"}
    assert "secret detail" in caplog.text


def test_a_non_json_body_is_a_400(router: Router) -> None:
    result = router.handle(v2("POST", "/json", body="not json {"))

    assert result["statusCode"] == 400
    assert body_of(result)["error"] == "bad_request"


@pytest.mark.parametrize(
    "body",
    [
        "[" * 60_000,
        "[" * 30_000 + "]" * 30_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"format": ' + "[" * 33 + "]" * 33 + "}",
    ],
    ids=["open", "balanced", "objects", "just-past-the-limit"],
)
def test_a_deeply_nested_json_body_is_a_400_naming_the_depth(
    router: Router, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    result = router.handle(v2("POST", "/json", body=body))

    assert result["statusCode"] == 400
    assert body_of(result) == {
        "error": "bad_request",
        "message": f"the body nests deeper than {MAX_DEPTH} levels",
    }
    assert "RecursionError" not in caplog.text


def test_a_json_body_that_is_not_an_object_is_a_400(router: Router) -> None:
    assert router.handle(v2("POST", "/json", body="[1, 2]"))["statusCode"] == 400


def test_a_body_over_the_limit_is_a_413(router: Router) -> None:
    result = router.handle(v2("POST", "/json", body="x" * (MAX_BODY_BYTES + 1)))

    assert result["statusCode"] == 413
    assert body_of(result)["error"] == "payload_too_large"


def test_a_huge_base64_body_is_refused_before_decoding(router: Router) -> None:
    huge = base64.b64encode(b"{" * (MAX_BODY_BYTES * 2)).decode()

    result = router.handle(v2("POST", "/json", body=huge, isBase64Encoded=True))

    assert result["statusCode"] == 413


def test_bad_base64_with_is_base64_encoded_is_a_400(router: Router) -> None:
    result = router.handle(v2("POST", "/json", body="***not base64***", isBase64Encoded=True))

    assert result["statusCode"] == 400
    assert body_of(result)["error"] == "bad_request"


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "GET /api/me",
        {},
        {"version": "2.0"},
        {"version": "2.0", "rawPath": "/api/me", "requestContext": {"http": {}}},
        {"version": "2.0", "rawPath": "/api/me", "requestContext": []},
        {"version": "2.0", "rawPath": 7, "requestContext": {"http": {"method": "GET"}}},
        {"version": "2.0", "rawPath": "api/me", "requestContext": {"http": {"method": "GET"}}},
        {"version": "1.0", "rawPath": "/api/me", "requestContext": {"http": {"method": "GET"}}},
        {"httpMethod": "GET", "path": "/api/me"},
    ],
    ids=repr,
)
def test_an_event_of_the_wrong_shape_is_a_400_never_an_exception(
    router: Router, event: Any
) -> None:
    result = router.handle(event)

    assert result["statusCode"] == 400
    assert body_of(result)["error"] == "bad_request"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers", ["authorization", "x"]),
        ("headers", {"authorization": 5}),
        ("cookies", "a=b"),
        ("cookies", [1]),
        ("body", {"a": 1}),
        ("isBase64Encoded", "yes"),
        ("queryStringParameters", {"limit": ["1"]}),
        ("rawQueryString", 5),
    ],
)
def test_a_v2_field_of_the_wrong_type_is_a_400(router: Router, field: str, value: Any) -> None:
    event = v2("GET", "/api/me")
    event["rawQueryString"] = "" if field != "rawQueryString" else value
    event[field] = value

    with pytest.raises(MalformedEventError):
        parse_event(event)
    assert router.handle(event)["statusCode"] == 400


# --- results ----------------------------------------------------------------------


def test_a_v2_result_carries_cookies_in_its_cookies_list() -> None:
    r = Router()
    r.add("GET", "/c", lambda request: Response(200, {"ok": True}, cookies=["a=1; Path=/"]))

    result = r.handle(v2("GET", "/c"))

    assert result["cookies"] == ["a=1; Path=/"]
    assert result["isBase64Encoded"] is False
    assert result["headers"]["cache-control"] == "no-store"


def test_the_result_of_an_unparseable_event_is_a_2_0_result(router: Router) -> None:
    result = router.handle({"version": "2.0", "rawPath": 1})

    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}


def test_a_route_pattern_must_be_absolute() -> None:
    with pytest.raises(ValueError):
        Router().add("GET", "api/me", echo)


# --- fuzz -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "version",
    "rawPath",
    "rawQueryString",
    "headers",
    "cookies",
    "body",
    "isBase64Encoded",
    "requestContext",
    "queryStringParameters",
    "httpMethod",
    "path",
    "multiValueHeaders",
    "multiValueQueryStringParameters",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from(["apigw-v2-playback.json", "rest-api"]),
    changes=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
def test_no_mangled_event_makes_the_router_raise_or_answer_500(
    router: Router, base: str, changes: dict[str, Any]
) -> None:
    event = rest_api_event() if base == "rest-api" else copy.deepcopy(load_event(base))
    event.update(changes)

    result = router.handle(event)

    assert result["statusCode"] in (200, 400, 404, 405, 413)
    assert isinstance(result["body"], str)
    if result["statusCode"] != 200:
        assert set(json.loads(result["body"])) == {"error", "message"}

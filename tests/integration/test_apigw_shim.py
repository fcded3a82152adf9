"""The API Gateway payload 2.0 shim: a tiny Flask app in front of Lambda handlers.

First with a recording handler (what event the handler sees, what response a
result becomes), then with the real viewer API handler over the emulator stack
of ``test_playback_handler``: a grant requested through Flask is fetched from
the local edge.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.http.router import MAX_BODY_BYTES, Router, json_response, parse_event
from app.web.apigw import api_blueprint, build_event, invoke_as, mount_api, to_response
from tests.integration.test_playback_handler import (  # the shared emulator stack
    FREE,
    OBJECTS,
    PREMIUM,
    Stack,
    stack,  # noqa: F401 - a fixture
)


class Recorder:
    """A Lambda handler that remembers its events and answers with a preset result."""

    def __init__(self, result: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = result if result is not None else {"statusCode": 204, "body": ""}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.result


def client_for(handlers: Any) -> FlaskClient:
    app = Flask("shim-test")
    mount_api(app, handlers)
    return app.test_client()


# --- the event the handler sees -----------------------------------------------------


def test_a_request_becomes_a_payload_2_event_like_api_gateway_makes() -> None:
    recorder = Recorder()
    client = client_for(recorder)
    client.set_cookie("theme", "dark")
    client.set_cookie("lang", "en")

    client.post(
        "/api/videos/caf%C3%A9%201/playback?limit=5&limit=6&x=a%20b",
        data=b'{"a": 1}',
        headers=[
            ("Authorization", "Bearer abc"),
            ("X-Twice", "one"),
            ("X-Twice", "two"),
            ("User-Agent", "shim-test/1"),
        ],
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
    )

    (event,) = recorder.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/api/videos/caf%C3%A9%201/playback"
    assert event["rawQueryString"] == "limit=5&limit=6&x=a%20b"
    assert event["queryStringParameters"] == {"limit": "5,6", "x": "a b"}
    assert event["headers"]["authorization"] == "Bearer abc"
    assert event["headers"]["x-twice"].replace(" ", "") == "one,two"  # WSGI joins repeats
    assert "cookie" not in event["headers"]
    assert sorted(event["cookies"]) == ["lang=en", "theme=dark"]
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http == {
        "method": "POST",
        "path": "/api/videos/café 1/playback",
        "protocol": "HTTP/1.1",
        "sourceIp": "192.0.2.44",
        "userAgent": "shim-test/1",
    }
    assert event["requestContext"]["stage"] == "$default"
    assert all(name == name.lower() for name in event["headers"])


def test_the_event_reads_back_through_the_router_with_the_same_path_and_query() -> None:
    recorder = Recorder()
    client_for(recorder).get("/api/videos/zoom%20%2B%20d%C3%A9part?cursor=a%2Bb")

    request = parse_event(recorder.events[0])

    assert request.segments == ("api", "videos", "zoom + départ")
    assert request.query == {"cursor": "a+b"}


def test_a_binary_body_is_sent_base64_encoded() -> None:
    recorder = Recorder()
    client_for(recorder).put("/api/blob", data=b"\xff\x00\xfe")

    event = recorder.events[0]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_only_the_body_limit_plus_one_byte_is_read_so_the_handler_can_refuse_it() -> None:
    router = Router()
    router.add("POST", "/api/echo", lambda request: json_response(request.json_object()))
    client = client_for(lambda event, context: router.handle(event))

    response = client.post("/api/echo", data=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")

    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_a_request_without_body_query_or_cookies_has_none_of_them() -> None:
    recorder = Recorder()
    client_for(recorder).get("/api/me")

    event = recorder.events[0]
    assert "body" not in event
    assert "cookies" not in event
    assert "queryStringParameters" not in event
    assert event["rawQueryString"] == ""


# --- the response a result becomes ----------------------------------------------------


def test_a_proxy_result_becomes_status_headers_cookies_and_body() -> None:
    client = client_for(
        Recorder(
            {
                "statusCode": 201,
                "headers": {"content-type": "application/json", "x-one": "1"},
                "multiValueHeaders": {"x-many": ["a", "b"]},  # payload 1.0 only: ignored
                "cookies": ["a=1; Path=/; HttpOnly", "b=2"],
                "body": '{"ok":true}',
                "isBase64Encoded": False,
            }
        )
    )

    response = client.get("/api/anything")

    assert response.status_code == 201
    assert response.get_json() == {"ok": True}
    assert response.headers["x-one"] == "1"
    assert response.headers.getlist("x-many") == []
    assert response.headers.getlist("Set-Cookie") == ["a=1; Path=/; HttpOnly", "b=2"]


def test_a_base64_result_body_is_decoded() -> None:
    result = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }

    assert client_for(Recorder(result)).get("/api/x").data == b"\x00\x01"


def test_a_result_without_status_code_is_a_200_json_body() -> None:
    response = client_for(Recorder({"hello": "world"})).get("/api/x")

    assert response.status_code == 200
    assert response.get_json() == {"hello": "world"}


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "200"},
        {"statusCode": 99},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "***", "isBase64Encoded": True},
        {"statusCode": 200, "headers": ["x"]},
    ],
)
def test_a_malformed_result_is_a_500_json_error(result: dict[str, Any]) -> None:
    response = to_response(result)

    assert response.status_code == 500
    assert json.loads(response.data) == {"error": "internal", "message": "internal error"}


def test_a_handler_that_raises_is_a_500_json_error_not_a_crash() -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    response = client_for(broken).get("/api/x")

    assert response.status_code == 500
    assert response.get_json()["error"] == "internal"


def test_options_reaches_the_handler_instead_of_flasks_automatic_answer() -> None:
    router = Router()
    router.add("GET", "/api/me", lambda request: json_response({}))
    client = client_for(lambda event, context: router.handle(event))

    response = client.options("/api/me")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


# --- several handlers -----------------------------------------------------------------


def test_the_longest_matching_prefix_picks_the_handler() -> None:
    viewer, admin = Recorder(), Recorder()
    app = Flask("shim-test")
    app.register_blueprint(api_blueprint({"/api": viewer, "/api/admin": admin}))
    client = app.test_client()

    client.get("/api/admin/users")
    client.get("/api/administrators")
    client.get("/api")

    assert [e["rawPath"] for e in admin.events] == ["/api/admin/users"]
    assert [e["rawPath"] for e in viewer.events] == ["/api/administrators", "/api"]


def test_a_path_no_prefix_covers_is_a_json_404() -> None:
    app = Flask("shim-test")
    app.register_blueprint(api_blueprint({"/api/admin": Recorder()}))

    response = app.test_client().get("/api/videos")

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_a_path_prefix_is_put_in_front_of_the_request_path() -> None:
    app = Flask("shim-test")
    with app.test_request_context("/videos/x"):
        from flask import request

        event = build_event(request, path_prefix="/api/")

    assert event["rawPath"] == "/api/videos/x"


# --- calling the API on behalf of a web session ---------------------------------------


def session_app(handler: Any, token: str) -> FlaskClient:
    """A tiny web app whose session route calls the API handler with the session's token."""
    app = Flask("session-test")

    @app.post("/watch/<video_id>/grant")
    def grant(video_id: str) -> Any:
        from flask import request

        return invoke_as(
            handler, request, path=f"/api/videos/{video_id}/playback", access_token=token
        )

    return app.test_client()


def test_a_session_route_sends_the_sessions_token_and_none_of_the_browsers_cookies() -> None:
    recorder = Recorder()
    client = session_app(recorder, "session-access-token")
    client.set_cookie("vidgate_session", "secret-session-id")

    client.post(
        "/watch/zoom%20x/grant",
        headers={"Authorization": "Bearer forged", "X-CSRF-Token": "t"},
    )

    (event,) = recorder.events
    assert event["rawPath"] == "/api/videos/zoom%20x/playback"
    assert event["headers"]["authorization"] == "Bearer session-access-token"
    assert "cookies" not in event
    assert "secret-session-id" not in json.dumps(event)
    assert event["requestContext"]["http"]["method"] == "POST"


# --- the real handler behind Flask ----------------------------------------------------


def test_a_session_route_gets_the_handlers_grant_and_refusal(stack: Stack) -> None:  # noqa: F811
    bob = session_app(stack.handler, stack.accounts["bob"].access_token)

    granted = bob.post(f"/watch/{FREE}/grant")
    refused = bob.post(f"/watch/{PREMIUM}/grant")

    assert granted.status_code == 200
    assert requests.get(granted.get_json()["url"], timeout=10).status_code == 200
    assert (refused.status_code, refused.get_json()["error"]) == (403, "premium_required")


def test_a_grant_through_flask_is_the_handlers_grant_and_the_edge_serves_it(stack: Stack) -> None:  # noqa: F811
    client = client_for(stack.handler)
    token = stack.accounts["bob"].access_token

    response = client.post(
        f"/api/videos/{FREE}/playback", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    grant = response.get_json()
    assert set(grant) == {
        "url",
        "expires_at",
        "content_type",
        "format",
        "session_id",
        "heartbeat_seconds",
    }
    fetched = requests.get(grant["url"], timeout=10)
    assert fetched.content == OBJECTS[f"videos/{FREE}/clip.mp4"]


def test_refusals_through_flask_keep_the_contracts_status_and_json(stack: Stack) -> None:  # noqa: F811
    client = client_for(stack.handler)
    bob = stack.accounts["bob"].access_token

    unauthorized = client.post(f"/api/videos/{FREE}/playback")
    premium = client.post(
        f"/api/videos/{PREMIUM}/playback", headers={"Authorization": f"Bearer {bob}"}
    )
    missing = client.get("/api/videos/nope")

    assert (unauthorized.status_code, unauthorized.get_json()["error"]) == (401, "unauthorized")
    assert (premium.status_code, premium.get_json()["error"]) == (403, "premium_required")
    assert (missing.status_code, missing.get_json()["error"]) == (404, "not_found")


def test_the_catalog_through_flask_pages_with_the_query_string(stack: Stack) -> None:  # noqa: F811
    client = client_for(stack.handler)

    first = client.get("/api/videos?limit=1").get_json()
    second = client.get("/api/videos", query_string={"limit": 1, "cursor": first["next_cursor"]})

    assert len(first["items"]) == 1
    assert second.status_code == 200
    assert second.get_json()["items"][0]["id"] != first["items"][0]["id"]

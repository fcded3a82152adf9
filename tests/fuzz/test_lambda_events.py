"""Hypothesis throws malformed Lambda events at every handler: clean refusals, never an exception.

The API handlers (``lambda_handlers.playback`` and ``lambda_handlers.admin``)
get non-object events, arbitrary JSON objects, and HTTP API events (payload
2.0, built like AWS's samples in ``tests/events``) with keys dropped, values
of the wrong type, huge bodies, odd encodings (lone surrogates, NUL, non-UTF-8
bytes, invalid base64 with ``isBase64Encoded``), odd methods, paths and
tokens, JSON nested far past Python's recursion limit (in bodies and in
paging cursors) and end dates at the edges of the calendar (``0001-01-01``,
``9999-12-31``, leap days, the widest UTC offsets). Every answer must be a
proxy result API Gateway accepts, with a status below 500 and, for a refusal,
``{"error": code, "message": text}`` with a known code. REST API (payload
1.0) events, which the deployed HTTP API never sends, are malformed events: a
400, however they are broken.

The web app's Lambda entry (``app.web.lambda_entry``: apig-wsgi in front of
:func:`app.web.create_app`) gets any request API Gateway can send (any
method, path, query, headers, cookies and body) and must answer below 500;
an event that is not an API Gateway request at all gets a 400.

The Cognito PostConfirmation trigger gets malformed versions of the event
Cognito sends (``triggerSource``, ``userName``, ``request.userAttributes``
with ``sub`` and ``email``). Cognito always sends a well-formed event; a
trigger that raises makes Cognito fail the confirmation with the error
shown to the user, so a malformed event must either be ignored (an unknown
``triggerSource``: the event is returned unchanged) or refused with a clean
``ValueError``/``TypeError`` (or the domain's ``BadRequestError``, a typed
refusal of a bad e-mail or name) and never leave a record behind.

Every test is derandomised and uses no example database, so CI runs the
same examples each time; the counts are in each ``@settings``.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.cognito_triggers import post_confirmation
from app.errors import BadRequestError, EmailInUseError
from app.http.admin import make_handler as make_admin_handler
from app.http.router import MAX_BODY_BYTES
from app.http.viewer import make_handler as make_viewer_handler
from app.users import UserDirectory
from app.web.apigw import to_response
from tests.fuzz import FREE_VIDEO, PREMIUM_VIDEO, World, shared_world
from tests.fuzz.edges import b64url, deep_cursors, deep_json, end_dates

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[1] / "events"
KNOWN_CODES = frozenset(
    {
        "bad_request",
        "unauthorized",
        "forbidden",
        "premium_required",
        "not_found",
        "method_not_allowed",
        "conflict",
        "payload_too_large",
        "precondition_required",
        "precondition_failed",
        "too_many_streams",
        "session_ended",
    }
)
NOBODY = "fuzz-nobody-0000"
"""A user id no record has: the admin PUT events aim here, so fuzzing changes nobody."""


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- the world and the handlers ------------------------------------------------------


Handler = Callable[[object, object], dict[str, Any]]


@pytest.fixture(scope="module")
def world(aws_env: dict[str, str]) -> World:
    return shared_world(aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="module")
def handlers(world: World) -> dict[str, Handler]:
    services = world.services()
    return {"viewer": make_viewer_handler(services), "admin": make_admin_handler(services)}


@pytest.fixture(scope="module")
def directory(world: World) -> UserDirectory:
    return UserDirectory(world.client("dynamodb"), world.tables["users"])


@pytest.fixture(scope="module")
def bearer_values(world: World) -> list[str]:
    """Authorization values: real access tokens of each kind of user, an id token, junk."""
    alice, bob, carol = (world.sign_in(name) for name in ("alice", "bob", "carol"))
    return [
        f"Bearer {alice.access_token}",
        f"Bearer {bob.access_token}",
        f"Bearer {carol.access_token}",
        f"Bearer {carol.id_token}",
        f"bearer {alice.access_token}",
        f"Bearer {alice.access_token[:-4]}AAAA",
        f"Bearer  {alice.access_token} ",
        f"Basic {base64.b64encode(b'alice:pw').decode()}",
        "Bearer",
        "Bearer " + "A" * 9000,
        "",
    ]


# --- events ---------------------------------------------------------------------------


def v2_event(method: str, raw_path: str, *, query: str = "", body: str | None = None) -> dict:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "cookies": ["theme=dark", "CloudFront-Policy=abc"],
        "headers": {
            "accept": "application/json",
            "authorization": "Bearer TOKEN",
            "content-type": "application/json",
            "if-match": '"0"',
            "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        },
        "queryStringParameters": dict(
            part.split("=", 1) for part in query.split("&") if "=" in part
        ),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "fuzz",
            },
            "requestId": "fuzz-request",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1773342238390,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def v1_event(method: str, path: str, *, query: dict | None = None, body: str | None = None) -> dict:
    """A REST API proxy event (payload 1.0), as AWS documents it."""
    headers = {
        "Accept": "application/json",
        "Authorization": "Bearer TOKEN",
        "Content-Type": "application/json",
        "If-Match": "*",
    }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "fuzz-request-v1",
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "fuzz"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _sample(name: str) -> dict:
    text = (EVENTS / name).read_text().replace("VIDEO_ID", PREMIUM_VIDEO)
    return dict(json.loads(text))


PREMIUM_BODY = json.dumps({"premium": True, "until": None})
BASE_EVENTS: list[dict] = [
    v2_event("POST", f"/api/videos/{PREMIUM_VIDEO}/playback"),
    v2_event("POST", f"/api/videos/{FREE_VIDEO}/playback", body="{}"),
    v2_event("GET", "/api/videos", query="limit=1"),
    v2_event("GET", f"/api/videos/{FREE_VIDEO}"),
    v2_event("GET", "/api/me"),
    v2_event("GET", "/api/admin/users", query="limit=2&email_prefix=a"),
    v2_event("PUT", f"/api/admin/users/{NOBODY}/premium", body=PREMIUM_BODY),
    v2_event("GET", "/api/admin/audit", query=f"user_id={NOBODY}"),
    *(_sample(path.name) for path in sorted(EVENTS.glob("apigw-*.json"))),
]
REST_API_EVENTS: list[dict] = [
    v1_event("POST", f"/api/videos/{PREMIUM_VIDEO}/playback"),
    v1_event("GET", "/api/videos", query={"limit": "2"}),
    v1_event("GET", "/api/me"),
    v1_event("PUT", f"/api/admin/users/{NOBODY}/premium", body=PREMIUM_BODY),
    v1_event("GET", "/api/admin/audit"),
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)
non_objects = st.one_of(
    json_scalars,
    st.lists(json_values, max_size=3),
    st.binary(max_size=30),
    st.tuples(json_scalars),
    st.sets(st.integers(), max_size=3),
)
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=20),  # surrogates too
    st.sampled_from(
        [
            "\ud800",  # a lone surrogate, as a JSON "\ud800" escape decodes
            "\x00",
            "\u202e\u2066",
            "\ufeff{}",
            '{"a": NaN}',
            '{"a": 1, "a": 2}',
            "[]",
            "null",
            "1e999",
            "{" * 2000,
            "[" * 100_000,
            "[" * 5000 + "]" * 5000,
            '{"premium":' * 3000 + "true" + "}" * 3000,
            '{"format": ' + "[" * 33 + '"hls"' + "]" * 33 + "}",
            "%2e%2e%2f",
            "..",
            "/api/../api/me",
        ]
    ),
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[Any, Any]:
    """(body, isBase64Encoded): empty, odd text, huge, base64 of any bytes, invalid base64."""
    kind = draw(st.sampled_from(["text", "huge", "b64", "bad-b64", "wrong-type", "json"]))
    if kind == "text":
        return draw(odd_text), False
    if kind == "huge":
        size = draw(st.sampled_from([MAX_BODY_BYTES, MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES + 5]))
        encoded = draw(st.booleans())
        raw = "A" * size
        return (base64.b64encode(raw.encode()).decode() if encoded else raw), encoded
    if kind == "b64":
        return base64.b64encode(draw(st.binary(max_size=60))).decode(), True
    if kind == "bad-b64":
        return draw(st.sampled_from(["%%%", "QQ", "QQ=", "Q===", "not base64!", "\u00e9"])), True
    if kind == "json":
        return json.dumps(draw(json_values)), draw(st.booleans())
    return draw(json_values), draw(json_values)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _parent(event: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        event = event[step]
    return event


@st.composite
def api_events(draw: st.DrawFn, tokens: list[str], bases: list[dict] = BASE_EVENTS) -> dict:
    """A real-looking API Gateway event (one of ``bases``) with up to five things broken."""
    event = copy.deepcopy(draw(st.sampled_from(bases)))
    token = draw(st.sampled_from(tokens))
    for field in ("headers", "multiValueHeaders"):
        for name in list(event.get(field) or {}):
            if name.lower() == "authorization":
                event[field][name] = token if field == "headers" else [token]
    for _ in range(draw(st.integers(0, 5))):
        paths = list(_paths(event))
        action = draw(
            st.sampled_from(["drop", "retype", "text", "body", "method", "path", "header"])
        )
        if action in ("drop", "retype", "text") and paths:
            path = draw(st.sampled_from(paths))
            parent = _parent(event, path)
            if action == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_values if action == "retype" else odd_text)
        elif action == "body":
            event["body"], event["isBase64Encoded"] = draw(bodies())
        elif action == "method":
            method = draw(
                st.sampled_from(["get", "PUT", "DELETE", "OPTIONS", "HEAD", "X" * 17, ""])
            )
            if "httpMethod" in event:
                event["httpMethod"] = method
            elif isinstance(event.get("requestContext"), dict) and isinstance(
                event["requestContext"].get("http"), dict
            ):
                event["requestContext"]["http"]["method"] = method
        elif action == "path":
            path_text = draw(
                st.one_of(
                    odd_text,
                    st.sampled_from(
                        [
                            "/api/videos/a%2Fb/playback",
                            "/api/videos//playback",
                            "/api/videos/%00/playback",
                            "/prod/api/me",
                            "/$default/api/videos",
                            "/api/admin/users/%2E%2E/premium",
                            "/api/videos/" + "x" * 70,
                            "/API/ME",
                            "/api/me/",
                        ]
                    ),
                )
            )
            event["rawPath" if event.get("version") == "2.0" else "path"] = path_text
        else:
            headers = event.get("headers")
            if isinstance(headers, dict):
                name = draw(st.sampled_from(["authorization", "If-Match", "cookie", "x"]))
                headers[name] = draw(st.one_of(odd_text, st.sampled_from(tokens)))
    return event


# --- the properties ------------------------------------------------------------------


def assert_clean_answer(result: object) -> None:
    """A proxy result API Gateway accepts; < 500; a refusal is the JSON error shape."""
    assert isinstance(result, dict), result
    status = result["statusCode"]
    assert isinstance(status, int) and 200 <= status < 500, result
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result["headers"].items())
    assert to_response(result).status_code == status  # what API Gateway would make of it
    if status >= 400:
        body = json.loads(result["body"])
        assert set(body) >= {"error", "message"}, body
        assert body["error"] in KNOWN_CODES, body
        assert isinstance(body["message"], str) and body["message"], body


HANDLER_NAMES = pytest.mark.parametrize("name", ["viewer", "admin"])


@HANDLER_NAMES
@fuzz_settings(100)
@given(event=non_objects)
def test_an_event_that_is_not_an_object_is_a_400(
    handlers: dict[str, Handler], name: str, event: object
) -> None:
    result = handlers[name](event, None)

    assert_clean_answer(result)
    assert result["statusCode"] == 400


@HANDLER_NAMES
@fuzz_settings(150)
@given(event=st.dictionaries(st.text(max_size=15), json_values, max_size=6))
def test_an_arbitrary_json_object_gets_a_typed_refusal(
    handlers: dict[str, Handler], name: str, event: dict
) -> None:
    assert_clean_answer(handlers[name](event, None))


@HANDLER_NAMES
@fuzz_settings(300)
@given(data=st.data())
def test_a_broken_api_gateway_event_gets_a_typed_answer_never_an_exception(
    handlers: dict[str, Handler], bearer_values: list[str], name: str, data: st.DataObject
) -> None:
    event = data.draw(api_events(bearer_values))

    assert_clean_answer(handlers[name](event, None))


@HANDLER_NAMES
@fuzz_settings(100)
@given(data=st.data())
def test_a_rest_api_event_however_broken_is_a_400(
    handlers: dict[str, Handler], bearer_values: list[str], name: str, data: st.DataObject
) -> None:
    event = data.draw(api_events(bearer_values, REST_API_EVENTS))

    result = handlers[name](event, None)

    assert_clean_answer(result)
    assert result["statusCode"] == 400, result
    assert "cookies" not in result


LISTINGS = [
    ("viewer", "/api/videos"),
    ("admin", "/api/admin/users"),
    ("admin", "/api/admin/audit"),
]


@pytest.mark.parametrize(("name", "path"), LISTINGS)
@fuzz_settings(40)
@given(cursor=deep_cursors)
@example(cursor=b64url("[" * 3072))
def test_a_deeply_nested_cursor_is_a_400_on_every_listing(
    handlers: dict[str, Handler], bearer_values: list[str], name: str, path: str, cursor: str
) -> None:
    event = v2_event("GET", path, query=f"limit=2&cursor={cursor}")
    event["headers"]["authorization"] = bearer_values[2]  # carol, an admin

    result = handlers[name](event, None)

    assert_clean_answer(result)
    assert result["statusCode"] == 400, result
    assert json.loads(result["body"])["error"] == "bad_request"


@pytest.mark.parametrize(
    ("name", "path", "method"),
    [
        ("viewer", f"/api/videos/{FREE_VIDEO}/playback", "POST"),
        ("admin", f"/api/admin/users/{NOBODY}/premium", "PUT"),
    ],
)
@fuzz_settings(40)
@given(body=deep_json(MAX_BODY_BYTES))
@example(body="[" * MAX_BODY_BYTES)
def test_a_deeply_nested_body_is_a_400(
    handlers: dict[str, Handler],
    bearer_values: list[str],
    name: str,
    path: str,
    method: str,
    body: str,
) -> None:
    event = v2_event(method, path, body=body)
    event["headers"]["authorization"] = bearer_values[2]

    result = handlers[name](event, None)

    assert_clean_answer(result)
    assert result["statusCode"] == 400, result


@fuzz_settings(120)
@given(until=end_dates)
def test_an_end_date_at_any_edge_of_the_calendar_is_a_400_or_reaches_the_user_lookup(
    handlers: dict[str, Handler], bearer_values: list[str], until: str
) -> None:
    """Aimed at a user that does not exist: a date the API accepts gets as far as the 404."""
    body = json.dumps({"premium": True, "until": until})
    event = v2_event("PUT", f"/api/admin/users/{NOBODY}/premium", body=body)
    event["headers"]["authorization"] = bearer_values[2]

    result = handlers["admin"](event, None)

    assert_clean_answer(result)
    assert result["statusCode"] in (400, 404), result
    hypothesis.event(f"status {result['statusCode']}")


@fuzz_settings(60)
@given(data=st.data())
def test_nobody_is_changed_by_fuzzed_admin_events(
    world: World,
    directory: UserDirectory,
    handlers: dict[str, Handler],
    bearer_values: list[str],
    data: st.DataObject,
) -> None:
    """The events above aim at a user that does not exist; the real users stay as they were."""
    before = {name: directory.get(a.sub).to_dict() for name, a in world.accounts.items()}

    handlers["admin"](data.draw(api_events(bearer_values)), None)

    after = {name: directory.get(a.sub).to_dict() for name, a in world.accounts.items()}
    assert after == before


# --- the web app's Lambda entry (apig-wsgi in front of create_app) -----------------------


@pytest.fixture(scope="module")
def web_entry(world: World) -> Handler:
    """``app.web.lambda_entry.handler``, imported (the app built) with the world's environment."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in world.env.items():
            env.setenv(name, value)
        sys.modules.pop("app.web.lambda_entry", None)
        module = importlib.import_module("app.web.lambda_entry")
    handler: Handler = module.handler
    return handler


WEB_PATHS = [
    "/",
    f"/videos/{FREE_VIDEO}",
    f"/videos/{PREMIUM_VIDEO}",
    f"/videos/{PREMIUM_VIDEO}/grant",
    "/videos/nope/grant",
    "/auth/sign-in",
    "/auth/sign-up",
    "/auth/confirm",
    "/auth/forgot",
    "/auth/reset",
    "/auth/sign-out",
    "/auth/new-password",
    "/auth/callback",
    "/account",
    "/admin",
    "/admin/users",
    "/admin/audit",
    "/admin/videos",
    "/api/videos",
    "/api/me",
    "/api/admin/users",
    "/static/vidgate.css",
]
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@st.composite
def web_events(draw: st.DrawFn) -> dict:
    """A well-formed HTTP API (2.0) event, as API Gateway sends one, with any content.

    Any text goes in the path, query, headers, cookies and body, as a client
    can send it; a body that is not UTF-8 arrives base64-encoded, as API
    Gateway sends it.
    """
    path = draw(st.sampled_from(WEB_PATHS) if draw(st.integers(0, 3)) else url_path)
    method = draw(st.sampled_from(["GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE"]))
    headers = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "accept",
                    "content-type",
                    "origin",
                    "referer",
                    "x-csrf-token",
                    "authorization",
                    "if-match",
                    "range",
                    "x-forwarded-proto",
                ]
            ),
            header_text,
            max_size=4,
        )
    )
    headers["host"] = "abcdef1234.execute-api.us-east-1.amazonaws.com"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": draw(url_text),
        "cookies": draw(st.lists(header_text.filter(lambda c: ";" not in c), max_size=3)),
        "headers": headers,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "fuzz",
            },
            "requestId": "fuzz-web",
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    raw = draw(st.one_of(st.none(), st.binary(max_size=200)))
    if raw is not None:
        try:
            event["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(raw).decode("ascii")
            event["isBase64Encoded"] = True
    return event


url_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
url_path = url_text.map(lambda text: "/" + text)


@fuzz_settings(150)
@given(event=web_events())
def test_the_web_entry_answers_any_request_api_gateway_can_send_below_500(
    web_entry: Handler, event: dict
) -> None:
    result = web_entry(event, None)
    hypothesis.event(f"status {result.get('statusCode')}")

    assert isinstance(result, dict) and isinstance(result["statusCode"], int), result
    assert result["statusCode"] < 500, (event["requestContext"]["http"]["method"], event["rawPath"])


@fuzz_settings(60)
@given(event=st.one_of(non_objects, st.dictionaries(st.text(max_size=12), json_values, max_size=5)))
def test_the_web_entry_answers_a_malformed_event_without_raising(
    web_entry: Handler, event: object
) -> None:
    result = web_entry(event, None)

    assert isinstance(result, dict) and 400 <= result["statusCode"] < 500, result


# --- the Cognito trigger -------------------------------------------------------------

HANDLED_SOURCES = ["PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmForgotPassword"]
MISSING = object()


@st.composite
def confirmation_events(draw: st.DrawFn) -> tuple[Any, bool]:
    """(event, well_formed): the PostConfirmation event Cognito sends, maybe broken.

    Cognito's event: ``{"version": "1", "region", "userPoolId", "userName",
    "callerContext": {...}, "triggerSource", "request": {"userAttributes":
    {"sub": <uuid>, "email": ..., ...}}, "response": {}}``.
    """
    sub = draw(
        st.one_of(
            st.uuids().map(str),
            st.sampled_from([MISSING, None, "", 7, ["x"], {"a": 1}, True]),
        )
    )
    username = draw(
        st.one_of(
            st.sampled_from(["newuser", "Ünïcode", "a" * 128]),
            st.sampled_from([MISSING, None, "", 3, ["u"], {}]),
        )
    )
    email = draw(
        st.one_of(
            st.just("new@example.com"),
            st.sampled_from([MISSING, None, "", "no-at-sign", 5, ["e@x"], "a@b\x00c"]),
        )
    )
    source = draw(
        st.one_of(
            st.sampled_from(HANDLED_SOURCES),
            st.sampled_from(["PostConfirmation_Other", "PreSignUp_SignUp", None, 1, ""]),
        )
    )
    attributes: Any = {}
    for key, value in (("sub", sub), ("email", email)):
        if value is not MISSING:
            attributes[key] = value
    # Broken containers are never objects, so whether an event is well formed stays exact.
    not_object = st.one_of(json_scalars, st.lists(json_values, max_size=3))
    attributes = draw(st.one_of(st.just(attributes), not_object))
    request: Any = draw(st.one_of(st.just({"userAttributes": attributes}), st.just({}), not_object))
    event: dict[str, Any] = {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": "us-east-1_Fuzz",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
        "triggerSource": source,
        "request": request,
        "response": {},
    }
    if username is not MISSING:
        event["userName"] = username
    well_formed = (
        source in HANDLED_SOURCES
        and isinstance(request, dict)
        and isinstance(request.get("userAttributes"), dict)
        and request["userAttributes"] is attributes
        and isinstance(sub, str)
        and sub != ""
        and isinstance(username, str)
        and username != ""
        and email in (MISSING, None, "", "new@example.com")
    )
    return event, well_formed


@fuzz_settings(150)
@given(case=confirmation_events())
def test_a_malformed_confirmation_is_refused_cleanly_or_ignored_and_leaves_no_record(
    directory: UserDirectory, case: tuple[Any, bool]
) -> None:
    event, well_formed = case
    sub = _sub_of(event)
    existed = sub is not None and _has_record(directory, sub)
    sent = copy.deepcopy(event)

    try:
        returned = post_confirmation(event, directory)
    except (ValueError, TypeError, BadRequestError):
        assert not well_formed, event
        assert sub is None or _has_record(directory, sub) == existed, "a refusal left a record"
        return
    except EmailInUseError:
        # A new user whose e-mail another user's record has: refused, nothing written.
        assert well_formed and sub is not None and not existed, event
        assert not _has_record(directory, sub)
        assert directory.find(event["request"]["userAttributes"]["email"]).user_id != sub
        return
    assert returned == sent  # Cognito needs its event back unchanged
    if well_formed:
        assert sub is not None
        assert directory.get(sub).username == event["userName"] or existed
    elif event.get("triggerSource") not in HANDLED_SOURCES:
        assert sub is None or _has_record(directory, sub) == existed, "an ignore left a record"
    else:
        pytest.fail(f"a malformed event was accepted: {event!r}")


@fuzz_settings(60)
@given(event=non_objects)
def test_a_confirmation_that_is_not_an_object_is_a_type_error(event: object) -> None:
    with pytest.raises(TypeError):
        post_confirmation(event, _NeverCalled())  # type: ignore[arg-type]


class _NeverCalled(UserDirectory):
    def __init__(self) -> None:
        pass

    def create_on_signup(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a non-object event reached the user directory")


def _sub_of(event: dict) -> str | None:
    request = event.get("request")
    attributes = request.get("userAttributes") if isinstance(request, dict) else None
    sub = attributes.get("sub") if isinstance(attributes, dict) else None
    if isinstance(sub, str) and sub and len(sub) <= 128 and sub.isprintable():
        return sub
    return None


def _has_record(directory: UserDirectory, sub: str) -> bool:
    try:
        directory.get(sub)
    except Exception:
        return False
    return True


def test_a_well_formed_confirmation_creates_one_record_and_a_retry_keeps_it(
    directory: UserDirectory,
) -> None:
    sub = str(uuid.uuid4())
    event = {
        "version": "1",
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "userName": "dora",
        "request": {"userAttributes": {"sub": sub, "email": "dora@example.com"}},
        "response": {},
    }

    assert post_confirmation(copy.deepcopy(event), directory) == event
    first = directory.get(sub)
    assert post_confirmation(copy.deepcopy(event), directory) == event

    assert directory.get(sub) == first
    assert (first.username, first.email, first.premium) == ("dora", "dora@example.com", False)

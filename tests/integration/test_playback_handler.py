"""The viewer API handler end to end: real Cognito tokens, DynamoDB, Secrets Manager, S3 and edge.

Everything comes from the AWS emulator and the real modules: a user pool and
app client with users signed in through ``USER_PASSWORD_AUTH``, tables from
:func:`app.tables.create_tables`, an ECDSA key stored in Secrets Manager by
:mod:`app.keys`, a private bucket, and the local CloudFront edge trusting the
key's public half. Events are the AWS-shaped HTTP API samples (payload 2.0)
in ``tests/events``, filled in per test. A URL the handler grants is fetched
from the edge, and its bytes must be the object's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

import lambda_handlers.playback as playback_module
from app.catalog import MAX_CACHE_SECONDS, Video, VideoCatalog
from app.config import Settings, load_settings
from app.dynamo import CLIENT_CONFIG, MAX_PAGE_SIZE, dynamodb_client
from app.entitlements import EntitlementStore
from app.errors import VideoNotFoundError
from app.http.viewer import NEEDS, ViewerApi, make_handler
from app.keys import generate_key_pair, store_private_key
from app.local.edge import EdgeApp, EdgeServer, serve_edge
from app.local.emulator import Emulator
from app.local.ports import free_port
from app.services import Services
from app.tables import create_tables
from app.users import UserDirectory
from tests.cognito_accounts import Account, create_pool, sign_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
KEY_PAIR_ID = "KVIDGATETEST01"

FREE = "free-clip"
PREMIUM = "premium-zoom"
PREMIUM_KEY = "videos/premium zoom/zoom + départ.mp4"
OBJECTS = {
    f"videos/{FREE}/clip.mp4": os.urandom(150_000),
    PREMIUM_KEY: os.urandom(90_000),
    "videos/premium-two/two.mp4": os.urandom(1000),
    f"posters/{FREE}.jpg": b"\xff\xd8\xff poster bytes",
}


@dataclass
class Stack:
    env: dict[str, str]
    settings: Settings
    session: boto3.Session
    edge: EdgeServer
    accounts: dict[str, Account]
    entitlements: EntitlementStore
    handler: ViewerApi


@pytest.fixture(scope="module")
def stack(emulator: Emulator, boto_session: boto3.Session) -> Iterator[Stack]:
    prefix = f"pb{uuid.uuid4().hex[:10]}"
    cognito: Any = boto_session.client("cognito-idp")
    pool_id, client_id = create_pool(cognito, prefix)
    accounts = {
        name: sign_in(cognito, pool_id, client_id, name, ("admin",) if name == "alice" else ())
        for name in ("alice", "bob", "erin", "dave")
    }

    tables = {logical: f"{prefix}-{logical}" for logical in ("users", "videos", "audit")}
    dynamodb = dynamodb_client(boto_session)
    create_tables(dynamodb, tables)
    directory = UserDirectory(dynamodb, tables["users"])
    entitlements = EntitlementStore(dynamodb, tables["users"], tables["audit"])
    for account in accounts.values():
        directory.create_on_signup(account.sub, account.username, f"{account.username}@example.com")
    entitlements.set_premium(accounts["alice"].sub, True, None, actor="test")

    s3: Any = boto_session.client("s3")
    bucket = f"{prefix}-media"
    s3.create_bucket(Bucket=bucket)
    for key, data in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="video/mp4")
    catalog = VideoCatalog(dynamodb, tables["videos"])
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for offset, (video_id, tier, key) in enumerate(
        [
            (FREE, "free", f"videos/{FREE}/clip.mp4"),
            (PREMIUM, "premium", PREMIUM_KEY),
            ("premium-two", "premium", "videos/premium-two/two.mp4"),
        ]
    ):
        catalog.put(
            Video(
                video_id=video_id,
                title=video_id.replace("-", " ").title(),
                description=f"about {video_id}",
                tier=tier,  # type: ignore[arg-type]
                object_key=key,
                content_type="video/mp4",
                duration_seconds=12.5,
                poster_key=f"posters/{FREE}.jpg" if video_id == FREE else None,
                size_bytes=len(OBJECTS[key]),
                created_at=created + timedelta(minutes=offset),
            )
        )

    pair = generate_key_pair("ecdsa-p256")
    secret_id = f"{prefix}/cloudfront-key"
    store_private_key(boto_session.client("secretsmanager"), secret_id, pair.private_pem)
    edge = serve_edge(
        EdgeApp(
            s3_client=boto_session.client("s3"),
            bucket=bucket,
            trusted_keys={KEY_PAIR_ID: pair.public_pem},
        )
    )
    env = {
        "AWS_REGION": "us-east-1",
        "VIDGATE_USER_POOL_ID": pool_id,
        "VIDGATE_CLIENT_ID": client_id,
        "VIDGATE_JWKS_URL": f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_CDN_URL": edge.url,
        "VIDGATE_SIGNING_KEY_SECRET": secret_id,
        "VIDGATE_KEY_PAIR_ID": KEY_PAIR_ID,
        # These tests open many streams per user; the limits have their own tests
        # (test_playback_sessions.py, e2e/test_stream_limits.py).
        "VIDGATE_STREAM_LIMIT_FREE": "100",
        "VIDGATE_STREAM_LIMIT_PREMIUM": "100",
    }
    settings = load_settings(env, NEEDS)
    handler = make_handler(Services(settings, session=boto_session))
    yield Stack(env, settings, boto_session, edge, accounts, entitlements, handler)
    edge.stop()


# --- events -----------------------------------------------------------------------


def _fill(value: Any, video_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("VIDEO_ID", video_id)
    if isinstance(value, list):
        return [_fill(item, video_id) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, video_id) for key, item in value.items()}
    return value


def playback_event(video_id: str, token: str | None) -> dict[str, Any]:
    """The AWS-shaped playback event for ``video_id``."""
    event = _fill(json.loads((EVENTS / "apigw-v2-playback.json").read_text()), video_id)
    return with_token(event, token)


def with_token(event: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is None:
        del event["headers"]["authorization"]
    else:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def me_event(token: str | None) -> dict[str, Any]:
    return with_token(json.loads((EVENTS / "apigw-v2-me.json").read_text()), token)


def rest_api_event(method: str, path: str, token: str) -> dict[str, Any]:
    """A REST API proxy event (payload 1.0), shaped like AWS's sample: not what we deploy."""
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def list_event(query: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "apigw-v2-list-videos.json").read_text())
    event["rawQueryString"] = query
    event.pop("queryStringParameters")
    return event


def get_event(video_id: str) -> dict[str, Any]:
    event = list_event("")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/videos/{video_id}"
    return event


def body(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


# --- grants -----------------------------------------------------------------------


def test_a_free_video_is_granted_and_the_edge_serves_its_bytes(stack: Stack) -> None:
    result = stack.handler(playback_event(FREE, stack.accounts["bob"].access_token))

    assert result["statusCode"] == 200, result
    grant = body(result)
    assert set(grant) == {
        "url",
        "expires_at",
        "content_type",
        "format",
        "session_id",
        "heartbeat_seconds",
    }
    assert grant["content_type"] == "video/mp4"
    assert grant["url"].startswith(f"{stack.edge.url}/videos/{FREE}/clip.mp4?")
    fetched = requests.get(grant["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == OBJECTS[f"videos/{FREE}/clip.mp4"]


def test_a_premium_video_is_granted_to_a_premium_user_and_plays_with_ranges(stack: Stack) -> None:
    result = stack.handler(playback_event(PREMIUM, stack.accounts["alice"].access_token))

    assert result["statusCode"] == 200, result
    url = body(result)["url"]
    assert "/videos/premium%20zoom/zoom%20%2B%20d%C3%A9part.mp4?" in url
    ranged = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == OBJECTS[PREMIUM_KEY][1000:2000]


def test_the_grant_expires_after_the_configured_lifetime(stack: Stack) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = stack.handler(playback_event(FREE, stack.accounts["bob"].access_token))
    after = datetime.now(UTC)

    expires_at = body(result)["expires_at"]
    assert expires_at.endswith("Z")
    expires = datetime.fromisoformat(expires_at)
    ttl = timedelta(seconds=stack.settings.url_ttl_seconds)
    assert before + ttl <= expires <= after + ttl
    assert stack.settings.url_ttl_seconds == 300


def test_a_granted_url_with_one_character_changed_is_refused_by_the_edge(stack: Stack) -> None:
    url = body(stack.handler(playback_event(FREE, stack.accounts["bob"].access_token)))["url"]
    tampered = url.replace("clip.mp4", "clip.mp5")

    assert requests.get(tampered, timeout=10).status_code == 403


# --- refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["none", "garbage", "id-token"],
)
def test_a_request_without_a_valid_access_token_is_401(stack: Stack, token: str) -> None:
    alice = stack.accounts["alice"]
    value = {"none": None, "garbage": "not.a.jwt", "id-token": alice.id_token}[token]

    result = stack.handler(playback_event(FREE, value))

    assert result["statusCode"] == 401
    assert body(result)["error"] == "unauthorized"


def test_a_free_user_asking_for_a_premium_video_is_403_premium_required(stack: Stack) -> None:
    result = stack.handler(playback_event(PREMIUM, stack.accounts["bob"].access_token))

    assert result["statusCode"] == 403
    assert body(result)["error"] == "premium_required"


def test_an_unknown_video_is_404(stack: Stack) -> None:
    result = stack.handler(playback_event("no-such-video", stack.accounts["alice"].access_token))

    assert result["statusCode"] == 404
    assert body(result)["error"] == "not_found"


def test_a_non_json_body_is_400(stack: Stack) -> None:
    event = playback_event(FREE, stack.accounts["bob"].access_token)
    event["body"] = "url please"

    assert stack.handler(event)["statusCode"] == 400


def test_a_wrong_method_on_the_playback_route_is_405(stack: Stack) -> None:
    event = playback_event(FREE, stack.accounts["bob"].access_token)
    event["requestContext"]["http"]["method"] = "GET"

    assert stack.handler(event)["statusCode"] == 405


@pytest.mark.parametrize(
    ("method", "path"), [("POST", f"/api/videos/{FREE}/playback"), ("GET", "/api/me")]
)
def test_a_rest_api_payload_1_0_event_is_a_400_json_error_and_grants_nothing(
    stack: Stack, method: str, path: str
) -> None:
    result = stack.handler(rest_api_event(method, path, stack.accounts["alice"].access_token))

    assert result["statusCode"] == 400
    assert result["headers"]["content-type"] == "application/json"
    assert body(result)["error"] == "bad_request"
    assert set(body(result)) == {"error", "message"}
    assert "cookies" not in result and "Signature=" not in result["body"]


def test_premium_is_refused_at_exactly_its_end_and_granted_one_second_before(stack: Stack) -> None:
    erin = stack.accounts["erin"]
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    stack.entitlements.set_premium(erin.sub, True, until, actor="test")
    services = stack.handler.services
    event = playback_event(PREMIUM, erin.access_token)

    just_before = ViewerApi(services, clock=lambda: until - timedelta(seconds=1))
    at_the_end = ViewerApi(services, clock=lambda: until)

    assert just_before(event)["statusCode"] == 200
    assert at_the_end(event)["statusCode"] == 403


def test_a_revocation_takes_effect_on_the_next_grant(stack: Stack) -> None:
    dave = stack.accounts["dave"]
    granted = stack.entitlements.set_premium(dave.sub, True, None, actor="test")
    event = playback_event(PREMIUM, dave.access_token)
    assert stack.handler(event)["statusCode"] == 200

    stack.entitlements.set_premium(
        dave.sub, False, None, actor="test", expected_version=granted.version
    )

    result = stack.handler(event)
    assert result["statusCode"] == 403
    assert body(result)["error"] == "premium_required"


# --- catalog changes made by another process -----------------------------------------

CHANGES = {
    # name: (tier before, the change, who asks, the answer after it)
    "a free video made premium": ("free", "premium", "bob", 403),
    "a free video unpublished": ("free", "unpublish", "bob", 404),
    "a free video removed": ("free", "remove", "bob", 404),
    "a premium video unpublished": ("premium", "unpublish", "alice", 404),
    "a premium video removed": ("premium", "remove", "alice", 404),
}


@pytest.mark.parametrize("case", CHANGES)
def test_a_catalog_change_in_another_process_stops_grants_here_within_a_second(
    stack: Stack, case: str
) -> None:
    """Two composition roots over the same DynamoDB, as two Lambda processes would be.

    ``viewer`` grants (its catalog remembers what it read, for at most a second);
    ``admin`` changes the video. A second later, whatever ``viewer`` remembered is
    gone and its grants follow the change: within the two seconds the product
    promises.
    """
    tier, change, who, answer = CHANGES[case]
    viewer = make_handler(Services(stack.settings, session=stack.session))
    admin = Services(stack.settings, session=stack.session)
    video_id = f"flip-{uuid.uuid4().hex[:12]}"
    admin.catalog.put(
        Video(
            video_id=video_id,
            title="Flip",
            description="changes under a grant",
            tier=tier,  # type: ignore[arg-type]
            object_key=f"videos/{video_id}/flip.mp4",
            content_type="video/mp4",
            duration_seconds=1.0,
            poster_key=None,
            size_bytes=1000,
            created_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
    )
    event = playback_event(video_id, stack.accounts[who].access_token)
    try:
        assert viewer(event)["statusCode"] == 200  # and now its catalog remembers the video

        if change == "premium":
            admin.catalog.update(video_id, tier="premium")
        elif change == "unpublish":
            admin.catalog.unpublish(video_id)
        else:
            admin.catalog.remove(video_id)

        time.sleep(MAX_CACHE_SECONDS)
        result = viewer(event)
        assert result["statusCode"] == answer, result
        assert "url" not in body(result)
    finally:
        with contextlib.suppress(VideoNotFoundError):
            admin.catalog.remove(video_id)


def test_a_grant_costs_one_dynamodb_read_and_one_conditional_write(stack: Stack) -> None:
    """A video not read in the last second comes with the viewer's item (entitlement and
    stream slots) in one BatchGetItem, then only that item is read; one conditional
    UpdateItem opens the stream (docs/playback-sessions.md)."""
    services = Services(stack.settings, session=stack.session)
    # A clock that stands still: the catalog's copies do not run out during the test.
    services.catalog = VideoCatalog(
        services.dynamodb, stack.settings.videos_table, clock=lambda: 0.0
    )
    viewer = make_handler(services)
    free = playback_event(FREE, stack.accounts["bob"].access_token)
    premium = playback_event(PREMIUM, stack.accounts["alice"].access_token)
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    services.dynamodb.meta.events.register("before-call.dynamodb.*", count)
    answers = [viewer(event)["statusCode"] for event in (free, premium, free, premium)]

    assert answers == [200, 200, 200, 200]
    assert calls == [
        "BatchGetItem",
        "UpdateItem",
        "BatchGetItem",
        "UpdateItem",
        "GetItem",
        "UpdateItem",
        "GetItem",
        "UpdateItem",
    ]


# --- failing closed ---------------------------------------------------------------


def test_dynamodb_down_is_503_and_no_url(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vidgate")
    services = Services(stack.settings, session=stack.session)
    # Nothing listens on this port: every DynamoDB call fails to connect.
    services.dynamodb = stack.session.client(
        "dynamodb", endpoint_url=f"http://127.0.0.1:{free_port()}", config=CLIENT_CONFIG
    )
    handler = make_handler(services)

    for video_id in (PREMIUM, FREE):
        result = handler(playback_event(video_id, stack.accounts["alice"].access_token))
        assert result["statusCode"] == 503
        assert body(result) == {"error": "unavailable", "message": body(result)["message"]}
        assert "url" not in result["body"]
    assert "DynamoDB is unavailable" in caplog.text


def test_a_missing_signing_secret_is_503_for_grants_while_the_catalog_still_answers(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vidgate")
    env = {**stack.env, "VIDGATE_SIGNING_KEY_SECRET": f"missing-{uuid.uuid4().hex}"}
    handler = make_handler(Services(load_settings(env, NEEDS), session=stack.session))

    result = handler(playback_event(FREE, stack.accounts["bob"].access_token))

    assert result["statusCode"] == 503
    assert body(result)["error"] == "unavailable"
    assert "signing_key_unavailable" in caplog.text
    assert handler(list_event(""))["statusCode"] == 200


# --- catalog and me ---------------------------------------------------------------


def test_the_catalog_pages_newest_first_with_a_public_poster_url(stack: Stack) -> None:
    first = body(stack.handler(list_event("limit=2")))
    assert [item["id"] for item in first["items"]] == ["premium-two", PREMIUM]
    assert first["next_cursor"]

    second = body(stack.handler(list_event(f"limit=2&cursor={first['next_cursor']}")))
    assert [item["id"] for item in second["items"]] == [FREE]
    assert second["next_cursor"] is None
    item = second["items"][0]
    assert set(item) == {
        "id",
        "title",
        "description",
        "tier",
        "duration_seconds",
        "poster_url",
        "categories",  # added by the catalog's categories (docs/catalog.md)
    }
    assert item["tier"] == "free"
    poster = requests.get(item["poster_url"], timeout=10)
    assert poster.status_code == 200
    assert poster.content == OBJECTS[f"posters/{FREE}.jpg"]


def test_the_catalog_accepts_the_largest_page_size_and_refuses_one_more(stack: Stack) -> None:
    largest = stack.handler(list_event(f"limit={MAX_PAGE_SIZE}"))
    assert largest["statusCode"] == 200
    assert [item["id"] for item in body(largest)["items"]] == ["premium-two", PREMIUM, FREE]

    assert stack.handler(list_event(f"limit={MAX_PAGE_SIZE + 1}"))["statusCode"] == 400


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "cursor=garbage"])
def test_a_bad_catalog_query_is_400(stack: Stack, query: str) -> None:
    result = stack.handler(list_event(query))

    assert result["statusCode"] == 400
    assert body(result)["error"] == "bad_request"


def test_one_video_is_served_by_id_and_an_unknown_one_is_404(stack: Stack) -> None:
    found = stack.handler(get_event(PREMIUM))
    assert found["statusCode"] == 200
    assert body(found)["id"] == PREMIUM
    assert body(found)["poster_url"] is None

    assert stack.handler(get_event("nope"))["statusCode"] == 404


def test_me_shows_the_user_with_the_email_from_their_record(stack: Stack) -> None:
    alice = stack.accounts["alice"]

    result = stack.handler(me_event(alice.access_token))

    assert result["statusCode"] == 200
    assert body(result) == {
        "user_id": alice.sub,
        "username": "alice",
        "email": "alice@example.com",
        "premium": True,
        "premium_until": None,
        "groups": ["admin"],
    }


def test_me_needs_an_access_token(stack: Stack) -> None:
    assert stack.handler(me_event(None))["statusCode"] == 401
    assert stack.handler(me_event(stack.accounts["bob"].id_token))["statusCode"] == 401


# --- the default, environment-configured handler ------------------------------------


def test_the_module_handler_builds_itself_once_from_the_environment(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playback_module.handler, "api", None)
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    event = playback_event(FREE, stack.accounts["bob"].access_token)

    assert playback_module.handler(event, None)["statusCode"] == 200
    built = playback_module.handler.api
    assert playback_module.handler(event, None)["statusCode"] == 200
    assert playback_module.handler.api is built


def test_the_module_handler_answers_500_json_when_misconfigured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(playback_module.handler, "api", None)
    monkeypatch.delenv("VIDGATE_USER_POOL_ID", raising=False)

    result = playback_module.handler(list_event(""), None)

    assert result["statusCode"] == 500
    assert body(result) == {"error": "internal", "message": "internal error"}
    assert playback_module.handler.api is None


def test_importing_the_handler_loads_neither_flask_nor_the_local_stack() -> None:
    code = (
        "import sys, lambda_handlers.playback;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'moto')"
        " or m.startswith('app.local') or m.startswith('app.web')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr

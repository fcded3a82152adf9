"""HLS grants end to end: the viewer API, the web app's grant route, and the local edge.

Two tiny HLS rendition sets (text playlists, small dummy init and media
segments: the edge serves bytes, it does not decode them) are written by the
test and uploaded by the bootstrap's own :func:`~app.local.bootstrap.upload_folder`
under ``videos/<id>/hls/``, beside each video's MP4, into a private bucket of
the AWS emulator; the catalog names both. Grants come from the real handler
(real Cognito tokens, DynamoDB, Secrets Manager), and every cookie they set is
presented to the local CloudFront edge: video A's cookies open A's playlists
and segments and nothing of B's.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from flask import Flask, url_for
from flask.testing import FlaskClient

from app.catalog import Video, VideoCatalog, hls_folder
from app.config import Settings, load_settings
from app.dynamo import dynamodb_client
from app.entitlements import EntitlementStore
from app.http.viewer import ViewerApi, make_handler
from app.keys import generate_key_pair, store_private_key
from app.local.bootstrap import ensure_session_key, upload_folder, upload_if_changed
from app.local.edge import EdgeApp, EdgeServer, serve_edge
from app.local.emulator import Emulator
from app.services import Services
from app.tables import TABLES, create_tables
from app.users import UserDirectory
from app.web import NEEDS as WEB_NEEDS
from app.web import create_app
from tests.cognito_accounts import PASSWORD, Account, create_pool, sign_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
KEY_PAIR_ID = "KVIDGATEHLS001"
VIDEO_A = "hls-a"  # premium
VIDEO_B = "hls-b"  # free
HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
TIMEOUT = 10
SESSION_KEYS = {"session_id", "heartbeat_seconds"}
GRANT_KEYS = {
    "url",
    "expires_at",
    "content_type",
    "format",
    "cookies",
    "cookie_path",
} | SESSION_KEYS
CLOUDFRONT_COOKIES = (
    "CloudFront-Policy",
    "CloudFront-Signature",
    "CloudFront-Key-Pair-Id",
    "CloudFront-Hash-Algorithm",
)


def write_hls_tree(folder: Path, video_id: str) -> dict[str, bytes]:
    """A two-rung CMAF rendition set: playlist text and dummy segment bytes; name → bytes."""
    files = {
        "master.m3u8": (
            b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            b'#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=416x234,CODECS="avc1.640015"\n'
            b"234p/index.m3u8\n"
            b'#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e"\n'
            b"360p/index.m3u8\n"
        ),
    }
    for rung in ("234p", "360p"):
        files[f"{rung}/index.m3u8"] = (
            b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            b'#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nseg_00001.m4s\n#EXTINF:2.0,\n'
            b"seg_00002.m4s\n#EXT-X-ENDLIST\n"
        )
        files[f"{rung}/init.mp4"] = f"init {video_id} {rung}".encode() * 8
        for index in (1, 2):
            files[f"{rung}/seg_0000{index}.m4s"] = f"{video_id}/{rung}/{index}".encode() * 300
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@dataclass
class Stack:
    settings: Settings
    session: boto3.Session
    edge: EdgeServer
    accounts: dict[str, Account]
    entitlements: EntitlementStore
    catalog: VideoCatalog
    handler: ViewerApi
    app: Flask
    objects: dict[str, bytes]


@pytest.fixture(scope="module")
def stack(
    emulator: Emulator,
    aws_env: dict[str, str],
    boto_session: boto3.Session,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    prefix = f"hls{uuid.uuid4().hex[:10]}"
    cognito: Any = boto_session.client("cognito-idp")
    pool_id, client_id = create_pool(cognito, prefix)
    accounts = {
        name: sign_in(cognito, pool_id, client_id, name) for name in ("alice", "bob", "dave")
    }
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
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
    catalog = VideoCatalog(dynamodb, tables["videos"])
    media = tmp_path_factory.mktemp("hls-media")
    objects: dict[str, bytes] = {}
    for offset, (video_id, tier) in enumerate(((VIDEO_A, "premium"), (VIDEO_B, "free"))):
        tree = write_hls_tree(media / video_id / "hls", video_id)
        keys = upload_folder(s3, bucket, media / video_id / "hls", hls_folder(video_id))
        assert keys == sorted(hls_folder(video_id) + name for name in tree)
        objects.update({hls_folder(video_id) + name: data for name, data in tree.items()})
        mp4 = media / video_id / "clip.mp4"
        mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + video_id.encode() * 2000)
        mp4_key = f"videos/{video_id}/clip.mp4"
        upload_if_changed(s3, bucket, mp4_key, mp4, "video/mp4")
        objects[mp4_key] = mp4.read_bytes()
        catalog.put(
            Video(
                video_id=video_id,
                title=video_id.upper(),
                description="",
                tier=tier,  # type: ignore[arg-type]
                object_key=mp4_key,
                content_type="video/mp4",
                duration_seconds=4.0,
                poster_key=None,
                size_bytes=len(objects[mp4_key]),
                created_at=datetime(2026, 1, 1, 0, offset, tzinfo=UTC),
                hls_key=hls_folder(video_id) + "master.m3u8",
            )
        )

    pair = generate_key_pair("ecdsa-p256")
    secret_id = f"{prefix}/cloudfront-key"
    store_private_key(boto_session.client("secretsmanager"), secret_id, pair.private_pem)
    edge = serve_edge(
        EdgeApp(s3_client=s3, bucket=bucket, trusted_keys={KEY_PAIR_ID: pair.public_pem})
    )
    env = {
        **aws_env,
        "VIDGATE_USER_POOL_ID": pool_id,
        "VIDGATE_CLIENT_ID": client_id,
        "VIDGATE_JWKS_URL": f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_SESSIONS_TABLE": tables["sessions"],
        "VIDGATE_SESSION_KEY_ID": ensure_session_key(
            boto_session.client("kms"), f"alias/{prefix}-session-tokens"
        ),
        "VIDGATE_BUCKET": bucket,
        "VIDGATE_CDN_URL": edge.url,
        "VIDGATE_SIGNING_KEY_SECRET": secret_id,
        "VIDGATE_KEY_PAIR_ID": KEY_PAIR_ID,
        "VIDGATE_SECRET_KEY": "hls-grant-test-secret-" + "k" * 32,
        "VIDGATE_BASE_URL": "http://localhost",
        # These tests open many streams per user; the limits have their own tests.
        "VIDGATE_STREAM_LIMIT_FREE": "100",
        "VIDGATE_STREAM_LIMIT_PREMIUM": "100",
    }
    settings = load_settings(env, WEB_NEEDS)
    services = Services(settings, session=boto_session)
    handler = make_handler(services)
    app = create_app(settings, services=services, local_triggers=True)
    app.config["TESTING"] = True
    yield Stack(
        settings, boto_session, edge, accounts, entitlements, catalog, handler, app, objects
    )
    edge.stop()


# --- helpers ------------------------------------------------------------------------


def playback_event(video_id: str, token: str | None, body: object = None) -> dict[str, Any]:
    """The HTTP API (payload 2.0) playback event for ``video_id``, as ``token``'s user."""
    text = (EVENTS / "apigw-v2-playback.json").read_text().replace("VIDEO_ID", video_id)
    event: dict[str, Any] = json.loads(text)
    headers = event["headers"]
    for header in [h for h in headers if h.lower() == "authorization"]:
        del headers[header]
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def set_cookies(result: dict[str, Any]) -> list[str]:
    """The Set-Cookie values of a payload 2.0 result (API Gateway sends one header each)."""
    return list(result.get("cookies", []))


def grant(stack: Stack, video_id: str, user: str = "alice", body: object = None) -> dict[str, Any]:
    result = stack.handler(playback_event(video_id, stack.accounts[user].access_token, body))
    assert result["statusCode"] == 200, result
    return result


def edge_url(stack: Stack, key: str) -> str:
    return f"{stack.edge.url}/{key}"


def refusal_code(response: requests.Response) -> str:
    assert response.status_code == 403, (response.status_code, response.text[:200])
    code = ET.fromstring(response.content).findtext("Code")
    return code or ""


# --- the grant ----------------------------------------------------------------------


def test_an_hls_grant_answers_the_playlist_url_and_sets_cookies_for_the_videos_folder(
    stack: Stack,
) -> None:
    result = stack.handler(playback_event(VIDEO_A, stack.accounts["alice"].access_token))

    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert set(body) == GRANT_KEYS
    assert body["format"] == "hls"
    assert body["content_type"] == HLS_CONTENT_TYPE
    assert body["url"] == f"{stack.edge.url}/videos/{VIDEO_A}/hls/master.m3u8"
    assert body["cookie_path"] == f"/videos/{VIDEO_A}/"
    assert list(body["cookies"]) == list(CLOUDFRONT_COOKIES)
    headers = set_cookies(result)
    assert len(headers) == len(CLOUDFRONT_COOKIES)
    expires_at = datetime.fromisoformat(body["expires_at"])
    for header in headers:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        ((name, morsel),) = jar.items()
        assert morsel.value == body["cookies"][name]
        assert morsel["path"] == f"/videos/{VIDEO_A}/"
        assert morsel["max-age"] == str(stack.settings.url_ttl_seconds)
        assert parsedate_to_datetime(morsel["expires"]) == expires_at
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert not morsel["secure"], "the local edge is plain http"


def test_video_as_cookies_fetch_its_playlists_and_segments_from_the_edge(stack: Stack) -> None:
    body = json.loads(grant(stack, VIDEO_A)["body"])
    cookies = body["cookies"]

    master = requests.get(body["url"], cookies=cookies, timeout=TIMEOUT)
    assert master.status_code == 200
    assert master.headers["Content-Type"] == HLS_CONTENT_TYPE
    assert master.content == stack.objects[f"videos/{VIDEO_A}/hls/master.m3u8"]
    for name, content_type in (
        ("master.m3u8", HLS_CONTENT_TYPE),
        ("360p/index.m3u8", HLS_CONTENT_TYPE),
        ("360p/init.mp4", "video/mp4"),
        ("360p/seg_00002.m4s", "video/iso.segment"),
        ("234p/seg_00001.m4s", "video/iso.segment"),
    ):
        key = f"videos/{VIDEO_A}/hls/{name}"
        fetched = requests.get(edge_url(stack, key), cookies=cookies, timeout=TIMEOUT)
        assert fetched.status_code == 200, (name, fetched.text[:200])
        assert fetched.headers["Content-Type"] == content_type
        assert fetched.content == stack.objects[key]


@pytest.mark.parametrize(
    "key",
    [
        f"videos/{VIDEO_B}/hls/master.m3u8",
        f"videos/{VIDEO_B}/hls/360p/index.m3u8",
        f"videos/{VIDEO_B}/hls/360p/seg_00001.m4s",
        f"videos/{VIDEO_A}/clip.mp4",  # A's own MP4 is outside hls/: not in the cookie policy
    ],
)
def test_video_as_cookies_open_nothing_outside_as_hls_folder(stack: Stack, key: str) -> None:
    cookies = json.loads(grant(stack, VIDEO_A)["body"])["cookies"]

    response = requests.get(edge_url(stack, key), cookies=cookies, timeout=TIMEOUT)

    assert refusal_code(response) == "AccessDenied"


def test_a_browser_sends_video_as_cookies_only_to_video_as_path(stack: Stack) -> None:
    result = grant(stack, VIDEO_A)
    browser = requests.Session()
    host = stack.edge.url.split("://", 1)[1].split(":", 1)[0]
    for header in set_cookies(result):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            browser.cookies.set(name, morsel.value, domain=host, path=morsel["path"])

    own = browser.get(edge_url(stack, f"videos/{VIDEO_A}/hls/360p/seg_00001.m4s"), timeout=TIMEOUT)
    other = browser.get(edge_url(stack, f"videos/{VIDEO_B}/hls/master.m3u8"), timeout=TIMEOUT)

    assert own.status_code == 200
    assert refusal_code(other) == "MissingKey"


@pytest.mark.parametrize("name", ["master.m3u8", "360p/seg_00001.m4s"])
def test_without_cookies_the_edge_refuses_with_missing_key(stack: Stack, name: str) -> None:
    response = requests.get(edge_url(stack, f"videos/{VIDEO_A}/hls/{name}"), timeout=TIMEOUT)

    assert refusal_code(response) == "MissingKey"


def test_each_video_gets_cookies_for_its_own_folder_only(stack: Stack) -> None:
    cookies_b = json.loads(grant(stack, VIDEO_B, user="bob")["body"])["cookies"]

    own = requests.get(
        edge_url(stack, f"videos/{VIDEO_B}/hls/234p/seg_00002.m4s"), cookies=cookies_b, timeout=10
    )
    other = requests.get(
        edge_url(stack, f"videos/{VIDEO_A}/hls/234p/seg_00002.m4s"), cookies=cookies_b, timeout=10
    )

    assert own.status_code == 200
    assert refusal_code(other) == "AccessDenied"


def test_asking_for_mp4_gives_the_progressive_fallback_with_no_cookies(stack: Stack) -> None:
    token = stack.accounts["alice"].access_token
    result = stack.handler(playback_event(VIDEO_A, token, {"format": "mp4"}))

    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert set(body) == {"url", "expires_at", "content_type", "format"} | SESSION_KEYS
    assert (body["format"], body["content_type"]) == ("mp4", "video/mp4")
    assert set_cookies(result) == []
    ranged = requests.get(body["url"], headers={"Range": "bytes=4-11"}, timeout=TIMEOUT)
    assert ranged.status_code == 206
    assert ranged.content == stack.objects[f"videos/{VIDEO_A}/clip.mp4"][4:12]


def test_asking_for_hls_explicitly_is_the_default_grant(stack: Stack) -> None:
    body = json.loads(grant(stack, VIDEO_B, user="bob", body={"format": "hls"})["body"])

    assert body["format"] == "hls"
    assert set(body) == GRANT_KEYS


@pytest.mark.parametrize(
    "body",
    [
        {"format": "dash"},
        {"format": "MP4"},
        {"format": None},
        {"quality": "1080p"},
        {"format": "mp4", "extra": True},
        "[]",
        '"mp4"',
        "format=mp4",
    ],
)
def test_a_bad_body_is_400_and_grants_nothing(stack: Stack, body: object) -> None:
    event = playback_event(VIDEO_B, stack.accounts["bob"].access_token, body)

    result = stack.handler(event)

    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"] == "bad_request"
    assert "cookies" not in result and "Signature" not in result["body"]


def test_a_free_user_gets_no_cookies_for_a_premium_hls_video(stack: Stack) -> None:
    for body in (None, {"format": "hls"}, {"format": "mp4"}):
        event = playback_event(VIDEO_A, stack.accounts["bob"].access_token, body)
        result = stack.handler(event)
        assert result["statusCode"] == 403
        assert json.loads(result["body"])["error"] == "premium_required"
        assert "cookies" not in result


def test_a_renewal_sets_fresh_cookies_that_the_edge_accepts(stack: Stack) -> None:
    first = json.loads(grant(stack, VIDEO_A)["body"])
    renewed = json.loads(grant(stack, VIDEO_A, body={})["body"])

    assert renewed["expires_at"] >= first["expires_at"]
    for cookies in (first["cookies"], renewed["cookies"]):
        response = requests.get(
            edge_url(stack, f"videos/{VIDEO_A}/hls/360p/index.m3u8"), cookies=cookies, timeout=10
        )
        assert response.status_code == 200


def test_a_revocation_stops_the_next_hls_grant(stack: Stack) -> None:
    dave = stack.accounts["dave"]
    granted = stack.entitlements.set_premium(dave.sub, True, None, actor="test")
    assert grant(stack, VIDEO_A, user="dave")["cookies"]

    stack.entitlements.set_premium(
        dave.sub, False, None, actor="test", expected_version=granted.version
    )

    result = stack.handler(playback_event(VIDEO_A, dave.access_token))
    assert result["statusCode"] == 403
    assert "cookies" not in result


def test_a_stored_playlist_in_another_videos_folder_is_never_signed(stack: Stack) -> None:
    dynamodb = dynamodb_client(stack.session)
    video_id = f"stray{uuid.uuid4().hex[:6]}"
    stack.catalog.put(
        Video(
            video_id=video_id,
            title="Stray",
            description="",
            tier="free",
            object_key="",
            content_type="",
            duration_seconds=4.0,
            poster_key=None,
            size_bytes=0,
            created_at=datetime(2026, 1, 2, tzinfo=UTC),
            hls_key=hls_folder(video_id) + "master.m3u8",
        )
    )
    # Another writer points the entry at B's playlist, behind the catalog's back.
    dynamodb.update_item(
        TableName=stack.settings.videos_table,
        Key={"video_id": {"S": video_id}},
        UpdateExpression="SET hls_key = :k",
        ExpressionAttributeValues={":k": {"S": f"videos/{VIDEO_B}/hls/master.m3u8"}},
    )

    result = stack.handler(playback_event(video_id, stack.accounts["bob"].access_token))

    assert result["statusCode"] == 503
    assert json.loads(result["body"])["error"] == "unavailable"
    assert "cookies" not in result and "Signature" not in result["body"]


# --- the web app's same-origin grant route ------------------------------------------


def web_sign_in(client: FlaskClient, username: str) -> None:
    form = client.get("/auth/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "no CSRF field on the sign-in form"
    done = client.post(
        "/auth/sign-in",
        data={"csrf_token": token.group(1), "identifier": username, "password": PASSWORD},
    )
    assert done.status_code in (302, 303), done.text[:300]


def web_routes(app: Flask, video_id: str) -> tuple[str, str]:
    """The watch page and grant route of ``video_id``, by endpoint (their paths may move)."""
    with app.test_request_context():
        return (
            url_for("watch.watch", video_id=video_id),
            url_for("watch.grant", video_id=video_id),
        )


def test_the_web_grant_route_passes_the_cloudfront_cookies_to_the_browser(stack: Stack) -> None:
    client = stack.app.test_client()
    web_sign_in(client, "alice")
    watch_path, grant_path = web_routes(stack.app, VIDEO_A)
    page = client.get(watch_path)
    assert page.status_code == 200
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf, "no csrf meta on the watch page"

    answer = client.post(grant_path, json={}, headers={"X-CSRF-Token": csrf.group(1)})

    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert body["format"] == "hls"
    assert "cookies" not in body  # HttpOnly in the browser: page script never sees the values
    assert body["cookie_path"] == f"/videos/{VIDEO_A}/"
    passed = [h for h in answer.headers.getlist("Set-Cookie") if h.startswith("CloudFront-")]
    assert len(passed) == len(CLOUDFRONT_COOKIES)
    jar: dict[str, str] = {}
    for header in passed:
        name, _, rest = header.partition("=")
        jar[name] = rest.split(";", 1)[0]
        assert f"Path=/videos/{VIDEO_A}/" in header and "HttpOnly" in header
    for name in CLOUDFRONT_COOKIES:
        stored = client.get_cookie(name, domain="localhost", path=f"/videos/{VIDEO_A}/")
        assert stored is not None and stored.value == jar[name]
    fetched = requests.get(
        edge_url(stack, f"videos/{VIDEO_A}/hls/360p/init.mp4"),
        cookies=jar,
        timeout=TIMEOUT,
    )
    assert fetched.status_code == 200

    mp4 = client.post(
        grant_path,
        json={"format": "mp4"},
        headers={"X-CSRF-Token": csrf.group(1)},
    )
    assert mp4.status_code == 200
    assert mp4.get_json()["format"] == "mp4"
    assert not [h for h in mp4.headers.getlist("Set-Cookie") if h.startswith("CloudFront-")]

    bad = client.post(
        grant_path,
        json={"format": "dash"},
        headers={"X-CSRF-Token": csrf.group(1)},
    )
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "bad_request"

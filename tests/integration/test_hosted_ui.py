"""Sign-in through the Cognito hosted UI: authorization code + PKCE (S256), state, nonce.

The test runs its own tiny OAuth 2.0 server on a free loopback port, standing
in for the hosted UI: ``/oauth2/authorize`` (hands out a code and remembers
the PKCE challenge and nonce), ``/oauth2/token`` (checks the code verifier
against the challenge, mints RS256 tokens with a key of its own),
``/oauth2/revoke``, ``/logout`` and the JWKS the app's real verifier reads.
Sessions live in the emulator's DynamoDB, as in ``vidgate dev``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, redirect, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import load_settings
from app.dynamo import dynamodb_client
from app.local.bootstrap import ensure_session_key
from app.local.emulator import Emulator
from app.local.webserver import ServerHandle, serve_wsgi
from app.services import Services
from app.tables import TABLES, create_tables
from app.web import NEEDS, create_app
from app.web.presession import COOKIE_NAME as PRE_COOKIE
from app.web.session_store import (
    COOKIE_NAME,
    SIGNED_IN,
    DynamoSessionInterface,
    SessionStore,
)

CLIENT_ID = "hosted-test-client"
POOL_ID = "us-east-1_HostedTest"
KID = "hosted-test-key"
APP_BASE = "http://localhost"
CALLBACK = f"{APP_BASE}/auth/callback"


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class FakeHostedUi:
    """State of the stand-in authorization server; tests read and steer it."""

    key: rsa.RSAPrivateKey
    base_url: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refresh_tokens: dict[str, bool] = field(default_factory=dict)  # token -> revoked
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    nonce_override: str | None = None
    lifetime: int = 3600
    user: dict[str, Any] = field(default_factory=dict)

    def mint(self, token_use: str, *, nonce: str | None = None, lifetime: int) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base_url,
            "sub": self.user["sub"],
            "token_use": token_use,
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        if self.user.get("groups"):
            claims["cognito:groups"] = list(self.user["groups"])
        if token_use == "id":
            claims.update(aud=CLIENT_ID, email=self.user["email"])
            claims["cognito:username"] = self.user["username"]
            if nonce is not None:
                claims["nonce"] = nonce
        else:
            claims.update(
                client_id=CLIENT_ID, username=self.user["username"], scope="openid email profile"
            )
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def issue(self, *, nonce: str | None, with_refresh: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.mint("access", lifetime=self.lifetime),
            "id_token": self.mint("id", nonce=nonce, lifetime=self.lifetime),
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = False
            body["refresh_token"] = refresh
        return body


def _oauth_app(fake: FakeHostedUi) -> Flask:
    app = Flask("fake-hosted-ui")

    def authorize() -> Any:
        params = request.args.to_dict()
        fake.authorize_requests.append(params)
        if (
            params.get("client_id") != CLIENT_ID
            or params.get("response_type") != "code"
            or params.get("redirect_uri") != CALLBACK
            or params.get("code_challenge_method") != "S256"
            or not params.get("code_challenge")
        ):
            return Response("bad authorization request", status=400)
        code = secrets.token_urlsafe(16)
        fake.codes[code] = params
        query = urlencode({"code": code, "state": params.get("state", "")})
        return redirect(f"{params['redirect_uri']}?{query}")

    for path in ("/oauth2/authorize", "/signup", "/forgotPassword"):
        app.add_url_rule(path, path, authorize)

    @app.post("/oauth2/token")
    def token() -> Any:
        form = request.form.to_dict()
        fake.token_requests.append(form)
        if form.get("client_id") != CLIENT_ID:
            return jsonify(error="invalid_client"), 400
        if form.get("grant_type") == "authorization_code":
            pending = fake.codes.pop(form.get("code", ""), None)  # one use only
            if (
                pending is None
                or form.get("redirect_uri") != pending["redirect_uri"]
                or s256(form.get("code_verifier", "")) != pending["code_challenge"]
            ):
                return jsonify(error="invalid_grant"), 400
            nonce = fake.nonce_override or pending.get("nonce")
            return jsonify(fake.issue(nonce=nonce, with_refresh=True))
        if form.get("grant_type") == "refresh_token":
            revoked = fake.refresh_tokens.get(form.get("refresh_token", ""))
            if revoked is None or revoked:
                return jsonify(error="invalid_grant"), 400
            return jsonify(fake.issue(nonce=None, with_refresh=False))
        return jsonify(error="unsupported_grant_type"), 400

    @app.post("/oauth2/revoke")
    def revoke() -> Any:
        token_value = request.form.get("token", "")
        if request.form.get("client_id") != CLIENT_ID:
            return jsonify(error="invalid_client"), 400
        if token_value in fake.refresh_tokens:
            fake.refresh_tokens[token_value] = True
        fake.revoked.append(token_value)
        return Response("", status=200)

    @app.get("/logout")
    def logout() -> Any:
        fake.logouts.append(request.args.to_dict())
        return Response("signed out of the hosted UI", status=200)

    @app.get("/.well-known/jwks.json")
    def jwks() -> Any:
        numbers = fake.key.public_key().public_numbers()
        return jsonify(
            keys=[
                {
                    "kty": "RSA",
                    "kid": KID,
                    "alg": "RS256",
                    "use": "sig",
                    "n": _b64uint(numbers.n),
                    "e": _b64uint(numbers.e),
                }
            ]
        )

    return app


@dataclass
class Hosted:
    app: Flask
    fake: FakeHostedUi
    dynamodb: Any
    sessions_table: str


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[tuple[FakeHostedUi, ServerHandle]]:
    fake = FakeHostedUi(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    handle = serve_wsgi(_oauth_app(fake), 0, name="fake-hosted-ui")
    fake.base_url = f"http://127.0.0.1:{handle.port}"
    yield fake, handle
    handle.stop()


@pytest.fixture(scope="module")
def hosted_app(
    emulator: Emulator,
    aws_env: dict[str, str],
    boto_session: boto3.Session,
    oauth_server: tuple[FakeHostedUi, ServerHandle],
) -> Hosted:
    fake, _ = oauth_server
    dynamodb = dynamodb_client(boto_session)
    prefix = f"hui{uuid.uuid4().hex[:10]}"
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
    create_tables(dynamodb, tables)
    env = {
        **aws_env,
        "VIDGATE_USER_POOL_ID": POOL_ID,
        "VIDGATE_CLIENT_ID": CLIENT_ID,
        "VIDGATE_COGNITO_ISSUER": fake.base_url,
        "VIDGATE_JWKS_URL": f"{fake.base_url}/.well-known/jwks.json",
        "VIDGATE_COGNITO_DOMAIN": fake.base_url,
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_SESSIONS_TABLE": tables["sessions"],
        "VIDGATE_SESSION_KEY_ID": ensure_session_key(
            boto_session.client("kms"), f"alias/{prefix}-session-tokens"
        ),
        "VIDGATE_BUCKET": "unused-bucket",
        "VIDGATE_CDN_URL": "https://cdn.example.test",
        "VIDGATE_SIGNING_KEY_SECRET": "unused/secret",
        "VIDGATE_KEY_PAIR_ID": "KUNUSED",
        "VIDGATE_SECRET_KEY": "hosted-secret-key-" + "h" * 32,
        "VIDGATE_BASE_URL": APP_BASE,
    }
    settings = load_settings(env, NEEDS)
    app = create_app(
        settings, services=Services(settings, session=boto_session), local_triggers=False
    )
    return Hosted(app, fake, dynamodb, tables["sessions"])


@pytest.fixture
def fake(hosted_app: Hosted) -> Iterator[FakeHostedUi]:
    """The server, reset for each test, signing in a fresh user."""
    server = hosted_app.fake
    name = f"hu{uuid.uuid4().hex[:8]}"
    server.user = {
        "sub": str(uuid.uuid4()),
        "username": name,
        "email": f"{name}@example.com",
        "groups": [],
    }
    server.nonce_override = None
    server.lifetime = 3600
    for log in (server.authorize_requests, server.token_requests, server.revoked, server.logouts):
        log.clear()
    yield server


# --------------------------------------------------------------------------- helpers


def start_sign_in(client: FlaskClient, path: str = "/auth/sign-in?next=/account") -> str:
    """The app's redirect to the hosted UI, then the hosted UI's redirect back (a callback URL)."""
    response = client.get(path)
    assert response.status_code == 302
    authorize_url = response.headers["Location"]
    back = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = back.headers["Location"]
    assert callback.startswith(CALLBACK + "?")
    return callback


def follow_callback(client: FlaskClient, callback_url: str) -> TestResponse:
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def with_state(callback_url: str, state: str) -> str:
    parts = urlsplit(callback_url)
    query = parse_qs(parts.query)
    return f"{CALLBACK}?{urlencode({'code': query['code'][0], 'state': state})}"


def signed_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


def interface_of(hosted: Hosted) -> DynamoSessionInterface:
    interface = hosted.app.session_interface
    assert isinstance(interface, DynamoSessionInterface)
    return interface


def signed_in_tokens(hosted: Hosted, client: FlaskClient) -> dict[str, Any]:
    """The session's sign-in as the app unseals it (tokens included)."""
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    found = interface_of(hosted).store.load(cookie.value)
    assert found is not None
    signed_in: dict[str, Any] = found.data[SIGNED_IN]
    return signed_in


def session_item(hosted: Hosted, client: FlaskClient) -> dict[str, Any] | None:
    cookie = client.get_cookie(COOKIE_NAME)
    if cookie is None:
        return None
    item: dict[str, Any] | None = hosted.dynamodb.get_item(
        TableName=hosted.sessions_table,
        Key={"session_id": {"S": SessionStore.key_for(cookie.value)}},
        ConsistentRead=True,
    ).get("Item")
    return item


# --------------------------------------------------------------------------- tests


def test_hosted_sign_in_uses_pkce_s256_with_state_and_nonce(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    callback = start_sign_in(client)
    sent = fake.authorize_requests[-1]
    assert sent["client_id"] == CLIENT_ID
    assert sent["response_type"] == "code"
    assert sent["redirect_uri"] == CALLBACK
    assert "openid" in sent["scope"].split()
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 32 and len(sent["nonce"]) >= 32
    assert "code_verifier" not in sent

    response = follow_callback(client, callback)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    exchange = fake.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert 43 <= len(exchange["code_verifier"]) <= 128
    assert s256(exchange["code_verifier"]) == sent["code_challenge"]
    assert exchange["redirect_uri"] == CALLBACK
    page = client.get("/account")
    assert page.status_code == 200
    assert fake.user["username"] in page.text and fake.user["email"] in page.text
    cookies = response.headers.getlist("Set-Cookie")
    (set_cookie,) = [c for c in cookies if c.startswith(f"{COOKIE_NAME}=")]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    (pending,) = [c for c in cookies if c.startswith(f"{PRE_COOKIE}=")]
    assert pending.startswith(f"{PRE_COOKIE}=;"), "the pending sign-in is used up"


def test_a_callback_with_another_state_is_refused_before_any_token_request(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    callback = start_sign_in(client)
    response = follow_callback(client, with_state(callback, "forged-" + "x" * 40))
    assert response.status_code == 400
    assert "not valid for this browser" in response.text
    assert fake.token_requests == []
    assert not signed_in(client)
    # The pending sign-in is used up: the genuine callback no longer works either.
    assert follow_callback(client, callback).status_code == 400
    assert fake.token_requests == []


def test_a_callback_in_another_browser_or_replayed_is_refused(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    victim = hosted_app.app.test_client()
    callback = start_sign_in(victim)
    attacker = hosted_app.app.test_client()
    assert follow_callback(attacker, callback).status_code == 400
    assert not signed_in(attacker)

    assert follow_callback(victim, callback).status_code == 302
    assert signed_in(victim)
    replay = follow_callback(victim, callback)
    assert replay.status_code == 400


def test_an_id_token_with_another_nonce_is_refused(hosted_app: Hosted, fake: FakeHostedUi) -> None:
    fake.nonce_override = "a-nonce-this-browser-never-sent"
    client = hosted_app.app.test_client()
    response = follow_callback(client, start_sign_in(client))
    assert response.status_code == 401
    assert "could not be verified" in response.text
    assert not signed_in(client)


def test_the_token_endpoint_refuses_a_code_verifier_that_does_not_match(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    callback = start_sign_in(client)
    assert client.get_cookie(COOKIE_NAME) is None, "a pending sign-in writes no session item"
    pending = client.get_cookie(PRE_COOKIE)
    assert pending is not None
    # Swap the pending verifier (only the app's key can): the challenge sent no longer matches.
    codec = interface_of(hosted_app).pre_session(hosted_app.app)
    state = codec.open(pending.value)
    assert state is not None and "code_verifier" in state["oauth"]
    state["oauth"]["code_verifier"] = "tampered" + state["oauth"]["code_verifier"]
    client.set_cookie(PRE_COOKIE, codec.seal(state))
    response = follow_callback(client, callback)
    assert response.status_code == 401
    assert "did not complete" in response.text
    assert len(fake.token_requests) == 1
    assert not signed_in(client)


def test_an_error_from_the_hosted_ui_is_a_friendly_page(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    callback = start_sign_in(client)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    response = client.get(f"/auth/callback?error=access_denied&state={state}")
    assert response.status_code == 401
    assert "did not complete" in response.text
    assert "Traceback" not in response.text
    assert not signed_in(client)


def test_sign_out_revokes_the_refresh_token_and_ends_the_hosted_ui_session(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    follow_callback(client, start_sign_in(client))
    refresh_token = signed_in_tokens(hosted_app, client)["refresh_token"]
    page = client.get("/account").text
    assert fake.base_url in client.get("/account").headers["Content-Security-Policy"]
    token = page.split('name="csrf_token" value="')[1].split('"')[0]

    response = client.post("/auth/sign-out", data={"csrf_token": token})
    assert response.status_code == 302
    logout = urlsplit(response.headers["Location"])
    assert f"{logout.scheme}://{logout.netloc}{logout.path}" == f"{fake.base_url}/logout"
    assert parse_qs(logout.query) == {"client_id": [CLIENT_ID], "logout_uri": [f"{APP_BASE}/"]}
    assert fake.revoked == [refresh_token]
    assert fake.refresh_tokens[refresh_token] is True
    assert not signed_in(client)


def test_near_expiry_tokens_are_refreshed_at_the_token_endpoint(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    fake.lifetime = 60  # inside the two-minute refresh margin from the start
    client = hosted_app.app.test_client()
    follow_callback(client, start_sign_in(client))
    before = signed_in_tokens(hosted_app, client)
    fake.lifetime = 3600

    assert signed_in(client)
    assert fake.token_requests[-1]["grant_type"] == "refresh_token"
    assert fake.token_requests[-1]["refresh_token"] == before["refresh_token"]
    after = signed_in_tokens(hosted_app, client)
    assert after["access_token"] != before["access_token"]
    item = session_item(hosted_app, client)
    assert item is not None
    assert int(item["token_expires_at"]["N"]) > time.time() + 600
    assert after["refresh_token"] == before["refresh_token"]


def test_sign_up_and_forgotten_password_go_to_the_hosted_ui(
    hosted_app: Hosted, fake: FakeHostedUi
) -> None:
    client = hosted_app.app.test_client()
    for path, page in (("/auth/sign-up", "/signup"), ("/auth/forgot", "/forgotPassword")):
        location = client.get(path).headers["Location"]
        assert location.startswith(f"{fake.base_url}{page}?")
        assert parse_qs(urlsplit(location).query)["code_challenge_method"] == ["S256"]
    assert 'href="/auth/sign-up"' not in client.get("/").text

"""Faults: the AWS emulator dies and comes back, DynamoDB throttles, the JWKS endpoint is down,
the signing key is missing or garbage. The product fails closed every time (503 ``unavailable``,
nothing granted, never a URL signed with anything but the real key) and recovers by itself.

The handlers and the web app run in this process over the real modules
(:class:`~app.services.Services`, ``lambda_handlers.playback``,
:func:`app.web.create_app`) against the AWS emulator. The outage test starts
an emulator of its own, kills it mid-run and starts it again on the same
port; the others share the session's emulator and break one collaborator
each: a botocore ``before-send`` hook that answers every DynamoDB call with
a throttling error, a JWKS fetcher that can be switched off, a secret that
is missing or holds no key.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from app.auth.jwks import JwksCache, urllib_fetch
from app.catalog import VideoCatalog
from app.dynamo import client_config
from app.http.viewer import SIGNER_RETRY_SECONDS, ViewerApi, make_handler
from app.local import emulator as emulator_module
from app.local.emulator import Emulator
from app.local.ports import LOOPBACK, PortBusyError, free_port
from app.web import create_app
from tests.fuzz import FREE_VIDEO, PREMIUM_VIDEO, World, build_world, shared_world

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


# --- helpers --------------------------------------------------------------------------


def v2_event(method: str, path: str, token: str | None = None) -> dict[str, Any]:
    headers = {"accept": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }


def grant(api: Callable[..., dict[str, Any]], token: str, video: str = PREMIUM_VIDEO) -> Any:
    """(status, body) of a playback grant through the Lambda handler."""
    result = api(v2_event("POST", f"/api/videos/{video}/playback", token), None)
    return result["statusCode"], json.loads(result["body"])


def assert_unavailable(status: int, body: Any) -> None:
    assert (status, body["error"]) == (503, "unavailable"), body
    assert "url" not in body


def sign_in(client: FlaskClient, username: str, password: str) -> None:
    page = client.get("/auth/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None, page[:500]
    response = client.post(
        "/auth/sign-in",
        data={"identifier": username, "password": password, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302, response.text[:500]


def page_csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


def web_grant(client: FlaskClient, csrf: str, video: str = PREMIUM_VIDEO) -> Any:
    """The watch page's grant route, called as the player's fetch() does."""
    return client.post(
        f"/watch/{video}/grant",
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )


def free_but_lingering(port: int, what: str) -> None:
    """Like :func:`app.local.ports.ensure_free`, but a port whose old connections linger in
    TIME_WAIT counts as free, as it does for the emulator's server (SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise PortBusyError(port, what) from exc


@pytest.fixture(scope="module")
def world(aws_env: dict[str, str]) -> World:
    return shared_world(aws_env["AWS_ENDPOINT_URL"])


def web_app(world: World, services: Any, **overrides: str) -> Flask:
    app = create_app(world.settings(**overrides), services=services)
    app.config["TESTING"] = True
    return app


# --- the emulator dies mid-run and comes back -------------------------------------------


def test_an_emulator_outage_grants_nothing_and_grants_resume_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator killed mid-run closed its connections first: they linger in TIME_WAIT
    # for a minute, which the plain bind check of Emulator.start would take as busy.
    monkeypatch.setattr(emulator_module, "ensure_free", free_but_lingering)
    port = free_port()
    log = str(tmp_path / "moto.log")
    emulators = [Emulator(port, log_path=log).start()]
    try:
        world = build_world(emulators[0].endpoint)
        for name, value in world.env.items():
            monkeypatch.setenv(name, value)
        services = world.services()
        api = make_handler(services)
        app = web_app(world, services)
        browser = app.test_client()
        sign_in(browser, "alice", "Fuzz-Fault-Passw0rd!")
        csrf = page_csrf(browser, f"/watch/{PREMIUM_VIDEO}")
        alice = world.accounts["alice"].access_token
        assert grant(api, alice)[0] == 200
        assert web_grant(browser, csrf).status_code == 200
        saved = world.snapshot()

        emulators.pop().stop()

        assert_unavailable(*grant(api, alice))
        assert_unavailable(*grant(api, alice, FREE_VIDEO))
        from_player = web_grant(browser, csrf)
        assert from_player.status_code == 503
        assert_unavailable(503, from_player.get_json())
        page = browser.get(f"/watch/{PREMIUM_VIDEO}", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert page.mimetype == "text/html"
        assert "temporarily unavailable" in page.text.lower()
        assert "Traceback" not in page.text and "botocore" not in page.text

        emulators.append(Emulator(port, log_path=log).start())
        world.restore(saved)

        # The same handler and the same app, never restarted: grants resume.
        status, body = grant(api, alice)
        assert status == 200, body
        assert body["url"].startswith(world.env["VIDGATE_CDN_URL"])
        resumed = web_grant(browser, csrf)
        assert resumed.status_code == 200, resumed.text
        assert set(resumed.get_json()) == {
            "url",
            "expires_at",
            "content_type",
            "format",
            "session_id",
            "heartbeat_seconds",
        }
    finally:
        for emulator in emulators:
            emulator.stop()


# --- DynamoDB throttling ------------------------------------------------------------------

THROTTLING = {
    "ProvisionedThroughputExceededException": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "ThrottlingException": ("com.amazon.coral.availability#ThrottlingException", "Rate exceeded"),
}


class _Raw:
    """The raw body botocore reads from an AWSResponse."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


@pytest.mark.parametrize("code", list(THROTTLING))
def test_dynamodb_throttling_is_retried_in_standard_mode_then_refused_with_503(
    world: World, code: str
) -> None:
    services = world.services()
    # A clock that stands still: the catalog keeps its copy of the video for the whole test.
    services.catalog = VideoCatalog(
        services.dynamodb, services.settings.videos_table, clock=lambda: 0.0
    )
    api = make_handler(services)
    alice = world.sign_in("alice").access_token
    assert grant(api, alice)[0] == 200
    client = services.dynamodb
    assert client.meta.config.retries["mode"] == "standard"
    attempts: list[str] = []
    error_type, message = THROTTLING[code]

    def throttle(request: Any, **kwargs: Any) -> AWSResponse:
        attempts.append(request.headers.get("X-Amz-Target", b"").decode())
        body = json.dumps({"__type": error_type, "message": message}).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = "throttled"
        return AWSResponse(request.url, 400, headers, _Raw(body))

    client.meta.events.register("before-send.dynamodb", throttle)
    try:
        assert_unavailable(*grant(api, alice))
    finally:
        client.meta.events.unregister("before-send.dynamodb", throttle)

    # One call (the entitlement, read fresh; the video is the catalog's copy), tried
    # 1 + max_attempts times (app.dynamo).
    total = client_config().retries["max_attempts"] + 1  # type: ignore[attr-defined]
    assert client.meta.config.retries["total_max_attempts"] == total
    assert attempts == ["DynamoDB_20120810.GetItem"] * total
    assert grant(api, alice)[0] == 200


# --- the JWKS endpoint is down ----------------------------------------------------------


class Switch:
    """A JWKS fetcher over the real endpoint that can be turned off, and a settable clock."""

    def __init__(self, up: bool) -> None:
        self.up = up
        self.calls = 0
        self.now = 1000.0

    def fetch(self, url: str) -> bytes:
        self.calls += 1
        if not self.up:
            raise OSError("connection refused (the JWKS endpoint is down)")
        return urllib_fetch(url)

    def clock(self) -> float:
        return self.now


def _services_with_jwks(world: World, switch: Switch) -> Any:
    services = world.services()
    services.jwks = JwksCache(
        world.env["VIDGATE_JWKS_URL"], fetch=switch.fetch, clock=switch.clock, penalty_seconds=10
    )
    return services


def forged_token(world: World, sub: str, kid: str) -> str:
    """A well-formed Cognito-like access token signed by a key the pool never had."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "sub": sub,
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{world.pool_id}",
        "client_id": world.client_id,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "username": "alice",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_with_the_jwks_down_known_keys_keep_verifying_and_unknown_keys_are_refused(
    world: World,
) -> None:
    switch = Switch(up=True)
    api = make_handler(_services_with_jwks(world, switch))
    assert grant(api, world.sign_in("alice").access_token)[0] == 200  # the JWKS is loaded
    assert switch.calls == 1

    switch.up = False
    fresh = world.sign_in("alice").access_token  # a token the verifier has not seen
    status, body = grant(api, fresh)
    assert status == 200, body
    me = api(v2_event("GET", "/api/me", world.sign_in("bob").access_token), None)
    assert me["statusCode"] == 200

    forged = forged_token(world, world.accounts["alice"].sub, kid="rotated-in-kid")
    assert grant(api, forged)[0] == 401  # moments after the load: refused without a fetch
    assert switch.calls == 1
    switch.now += 11
    status, body = grant(api, forged)
    assert (status, body["error"]) == (401, "unauthorized")
    assert "url" not in body
    assert switch.calls == 2  # one refetch for the unknown kid, which failed
    status, _ = grant(api, forged_token(world, world.accounts["alice"].sub, kid="another"))
    assert status == 401
    assert switch.calls == 2  # within the penalty window: no refetch at all

    switch.now += 11
    assert grant(api, forged)[0] == 401
    assert switch.calls == 3
    assert grant(api, world.sign_in("alice").access_token)[0] == 200


def test_a_jwks_that_cannot_be_loaded_at_all_is_503_and_it_recovers_without_a_restart(
    world: World,
) -> None:
    switch = Switch(up=False)
    api = make_handler(_services_with_jwks(world, switch))
    alice = world.sign_in("alice").access_token

    assert_unavailable(*grant(api, alice))
    me = api(v2_event("GET", "/api/me", alice), None)
    assert (me["statusCode"], json.loads(me["body"])["error"]) == (503, "unavailable")
    catalog = api(v2_event("GET", "/api/videos"), None)
    assert catalog["statusCode"] == 200  # anonymous browsing needs no JWKS
    assert switch.calls == 1
    assert_unavailable(*grant(api, alice))
    assert switch.calls == 1  # the penalty window holds back a flood of fetches

    switch.up = True
    switch.now += 11
    status, body = grant(api, alice)
    assert status == 200, body


# --- the signing key secret is missing or unreadable ---------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


GARBAGE = {
    "not a key": "hello, I am not a key",
    "truncated PEM": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n"
    "-----END PRIVATE KEY-----\n",
    "a public key": "",  # filled in below: the public half is not a signing key
}


def _secret(world: World, value: str | None) -> str:
    """A fresh secret id holding ``value`` (None: no such secret at all)."""
    secret_id = f"{world.prefix}/faults/{uuid.uuid4().hex[:8]}"
    if value is not None:
        world.client("secretsmanager").create_secret(Name=secret_id, SecretString=value)
    return secret_id


@pytest.mark.parametrize("case", ["missing", *GARBAGE])
def test_without_a_usable_signing_key_grants_are_503_and_nothing_is_signed(
    world: World, case: str
) -> None:
    value = None if case == "missing" else GARBAGE[case] or world.key.public_pem.decode()
    secret_id = _secret(world, value)
    services = world.services(VIDGATE_SIGNING_KEY_SECRET=secret_id)
    ticker = Ticker()
    api = ViewerApi(services, monotonic=ticker)
    api.warm()
    alice = world.sign_in("alice").access_token

    assert_unavailable(*grant(api, alice))
    assert_unavailable(*grant(api, alice, FREE_VIDEO))
    assert "signer" not in vars(services)  # no signer was ever built, with any key
    assert api(v2_event("GET", "/api/me", alice), None)["statusCode"] == 200
    assert api(v2_event("GET", f"/api/videos/{FREE_VIDEO}"), None)["statusCode"] == 200

    # An operator stores the real key; within SIGNER_RETRY_SECONDS grants pick it up.
    secrets = world.client("secretsmanager")
    if value is None:
        secrets.create_secret(Name=secret_id, SecretString=world.key.private_pem.decode())
    else:
        secrets.put_secret_value(SecretId=secret_id, SecretString=world.key.private_pem.decode())
    assert_unavailable(*grant(api, alice))  # not retried on every request
    ticker.now += SIGNER_RETRY_SECONDS + 1
    status, body = grant(api, alice)
    assert status == 200, body
    assert f"Key-Pair-Id={world.env['VIDGATE_KEY_PAIR_ID']}" in body["url"]


def test_the_web_grant_route_without_a_signing_key_is_a_503_and_the_site_stays_up(
    world: World,
) -> None:
    secret_id = _secret(world, None)
    services = world.services(VIDGATE_SIGNING_KEY_SECRET=secret_id)
    app = web_app(world, services, VIDGATE_SIGNING_KEY_SECRET=secret_id)
    browser = app.test_client()
    assert browser.get("/").status_code == 200
    sign_in(browser, "alice", "Fuzz-Fault-Passw0rd!")
    csrf = page_csrf(browser, f"/watch/{PREMIUM_VIDEO}")

    response = web_grant(browser, csrf)

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "unavailable" and body["message"]
    assert "url" not in body
    assert (
        "Set-Cookie" not in response.headers or "CloudFront" not in response.headers["Set-Cookie"]
    )
    assert "signer" not in vars(services)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _env_without_signing_secret(world: World) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
    env.update(world.env)
    del env["VIDGATE_SIGNING_KEY_SECRET"]
    return env


def test_a_lambda_without_the_signing_secret_setting_names_it_and_grants_nothing(
    world: World,
) -> None:
    code = (
        "import json, lambda_handlers.playback as p\n"
        f"event = {v2_event('POST', f'/api/videos/{FREE_VIDEO}/playback', 'x')!r}\n"
        "print(json.dumps(p.handler(event, None)))\n"
    )
    done = _run(code, _env_without_signing_secret(world))

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statusCode"] == 500
    assert json.loads(result["body"])["error"] == "internal"
    assert "VIDGATE_SIGNING_KEY_SECRET is missing" in done.stderr


def test_the_web_app_refuses_to_start_without_the_signing_secret_setting(world: World) -> None:
    done = _run("import app.web.lambda_entry", _env_without_signing_secret(world))

    assert done.returncode != 0
    assert "ConfigurationError" in done.stderr
    assert "VIDGATE_SIGNING_KEY_SECRET is missing" in done.stderr

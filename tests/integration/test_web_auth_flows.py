"""The web sign-in flows end to end: Flask test client -> app -> the AWS emulator.

Each test module run gets its own user pool (e-mail alias, strict password
policy), app client, ``admin`` group and tables, so the flows run exactly as
``vidgate dev`` runs them: real Cognito API calls, the real verifier against
the emulator's JWKS, sessions in DynamoDB, and the PostConfirmation handler
called in-process (the emulator fires no triggers).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import Settings, load_settings
from app.dynamo import dynamodb_client
from app.errors import UserNotFoundError
from app.local.bootstrap import ensure_session_key
from app.local.emulator import Emulator
from app.local.ports import free_port
from app.services import Services
from app.tables import TABLES, create_tables
from app.web import NEEDS, create_app
from app.web.csrf import NONCE_COOKIE
from app.web.presession import COOKIE_NAME as PRE_COOKIE
from app.web.session_store import (
    COOKIE_NAME,
    SIGNED_IN,
    DynamoSessionInterface,
    SessionStore,
    StoredSession,
)

PASSWORD = "Correct-Horse-2026!"
NEW_PASSWORD = "Battery-Staple-2027!"
PASSWORD_POLICY: Any = {
    "MinimumLength": 12,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
    "TemporaryPasswordValidityDays": 7,
}
TRACEBACK_MARKERS = ("Traceback", 'File "', "RuntimeError", "werkzeug", "botocore")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


@dataclass
class Stack:
    app: Flask
    settings: Settings
    services: Services
    cognito: Any
    dynamodb: Any
    pool_id: str
    client_id: str
    tables: dict[str, str]
    env: dict[str, str]


def _env(
    emulator: Emulator,
    pool_id: str,
    client_id: str,
    tables: dict[str, str],
    aws_env: dict[str, str],
    session_key_id: str,
) -> dict[str, str]:
    return {
        **aws_env,
        "VIDGATE_USER_POOL_ID": pool_id,
        "VIDGATE_CLIENT_ID": client_id,
        "VIDGATE_JWKS_URL": f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_SESSIONS_TABLE": tables["sessions"],
        "VIDGATE_SESSION_KEY_ID": session_key_id,
        "VIDGATE_BUCKET": "unused-bucket",
        "VIDGATE_CDN_URL": "https://cdn.example.test",
        "VIDGATE_SIGNING_KEY_SECRET": "unused/secret",
        "VIDGATE_KEY_PAIR_ID": "KUNUSED",
        "VIDGATE_SECRET_KEY": "test-secret-key-" + "k" * 32,
        "VIDGATE_BASE_URL": "http://localhost",
    }


@pytest.fixture(scope="module")
def stack(emulator: Emulator, aws_env: dict[str, str], boto_session: boto3.Session) -> Stack:
    cognito = boto_session.client("cognito-idp")
    dynamodb = dynamodb_client(boto_session)
    prefix = f"web{uuid.uuid4().hex[:10]}"
    pool_id = cognito.create_user_pool(
        PoolName=prefix,
        Policies={"PasswordPolicy": PASSWORD_POLICY},
        AliasAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}
        ],
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        EnableTokenRevocation=True,
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(GroupName="admin", UserPoolId=pool_id)
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
    create_tables(dynamodb, tables)
    key_id = ensure_session_key(boto_session.client("kms"), f"alias/{prefix}-session-tokens")
    env = _env(emulator, pool_id, client_id, tables, aws_env, key_id)
    settings = load_settings(env, NEEDS)
    services = Services(settings, session=boto_session)
    app = create_app(settings, services=services, local_triggers=True)
    return Stack(app, settings, services, cognito, dynamodb, pool_id, client_id, tables, env)


# --------------------------------------------------------------------------- helpers


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def cookie_value(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def session_item(stack: Stack, sid: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = stack.dynamodb.get_item(
        TableName=stack.tables["sessions"],
        Key={"session_id": {"S": SessionStore.key_for(sid)}},
        ConsistentRead=True,
    ).get("Item")
    return item


def store_of(app: Flask) -> SessionStore:
    interface = app.session_interface
    assert isinstance(interface, DynamoSessionInterface)
    return interface.store


def stored(stack: Stack, sid: str) -> StoredSession:
    """The session as the app reads it (tokens unsealed with the app's own KMS key)."""
    found = store_of(stack.app).load(sid)
    assert found is not None, "no live session"
    return found


def tokens_of(stack: Stack, sid: str) -> tuple[str, str, str]:
    """(access, id, refresh) token of a live session, as the app unseals them."""
    signed_in: dict[str, Any] = stored(stack, sid).data[SIGNED_IN]
    return signed_in["access_token"], signed_in["id_token"], signed_in["refresh_token"]


def update_session(stack: Stack, sid: str, **numbers_or_strings: int | str) -> None:
    names = {f"#a{i}": name for i, name in enumerate(numbers_or_strings)}
    values = {
        f":v{i}": ({"N": str(value)} if isinstance(value, int) else {"S": value})
        for i, value in enumerate(numbers_or_strings.values())
    }
    stack.dynamodb.update_item(
        TableName=stack.tables["sessions"],
        Key={"session_id": {"S": SessionStore.key_for(sid)}},
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(names))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def make_user(
    stack: Stack,
    username: str,
    *,
    groups: tuple[str, ...] = (),
    password: str = PASSWORD,
    record: bool = False,
) -> str:
    """A confirmed user with a permanent password; returns the e-mail.

    ``record``: also create the user record now (as the bootstrap does for demo users).
    """
    email = f"{username}@example.com"
    stack.cognito.admin_create_user(
        UserPoolId=stack.pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    stack.cognito.admin_set_user_password(
        UserPoolId=stack.pool_id, Username=username, Password=password, Permanent=True
    )
    for group in groups:
        stack.cognito.admin_add_user_to_group(
            UserPoolId=stack.pool_id, Username=username, GroupName=group
        )
    if record:
        found = stack.cognito.admin_get_user(UserPoolId=stack.pool_id, Username=username)
        sub = next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "sub")
        stack.services.users.create_on_signup(sub, username, email)
    return email


def post_form(
    client: FlaskClient, page: str, action: str, data: dict[str, str], **kwargs: Any
) -> TestResponse:
    """GET ``page`` for its CSRF token, then POST ``data`` to ``action``."""
    token = csrf_from(client.get(page, **kwargs).text)
    return client.post(action, data={"csrf_token": token, **data}, **kwargs)


def sign_in(
    client: FlaskClient, identifier: str, password: str = PASSWORD, **kwargs: Any
) -> TestResponse:
    return post_form(
        client,
        "/auth/sign-in",
        "/auth/sign-in",
        {"identifier": identifier, "password": password},
        **kwargs,
    )


def sign_out(client: FlaskClient) -> TestResponse:
    return post_form(client, "/account", "/auth/sign-out", {})


def assert_signed_out(client: FlaskClient) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/sign-in")


def refresh_works(stack: Stack, refresh_token: str) -> bool:
    try:
        stack.cognito.initiate_auth(
            ClientId=stack.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NotAuthorizedException"
        return False
    return True


# --------------------------------------------------------------------------- sign up, sign in


def test_a_new_user_signs_up_confirms_gets_a_user_record_and_signs_in(stack: Stack) -> None:
    client = stack.app.test_client()
    username = unique("dave")
    email = f"{username}@example.com"

    response = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": username,
            "email": email,
            "password": PASSWORD,
            "password_repeat": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/auth/confirm?username={username}"
    with pytest.raises(UserNotFoundError):
        stack.services.users.find(username)

    response = post_form(
        client,
        f"/auth/confirm?username={username}",
        "/auth/confirm",
        {"username": username, "code": "123456"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/sign-in")
    record = stack.services.users.find(username)
    assert record.username == username
    assert record.email == email
    assert not record.premium

    response = sign_in(client, username)
    assert response.status_code == 302
    page = client.get("/account")
    assert page.status_code == 200
    assert username in page.text and email in page.text


def test_sign_in_with_the_email_address_resolves_the_username(stack: Stack) -> None:
    username = unique("erin")
    email = make_user(stack, username)
    client = stack.app.test_client()
    # The directory must know the e-mail: sign in once by username to create the record.
    assert sign_in(client, username).status_code == 302
    sign_out(client)

    client = stack.app.test_client()
    response = sign_in(client, email.upper())
    assert response.status_code == 302
    assert f"Account ({username})" in client.get("/").text


def session_set_cookie(response: TestResponse) -> str:
    (header,) = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE_NAME}=")
    ]
    return header


def test_the_session_cookie_is_opaque_httponly_lax_and_set_at_sign_in(stack: Stack) -> None:
    username = unique("fay")
    make_user(stack, username)
    client = stack.app.test_client()
    form = client.get("/auth/sign-in")
    assert cookie_value(client) is None, "an anonymous visitor has no server-side session"
    nonce = client.get_cookie(NONCE_COOKIE)
    assert nonce is not None, "the form's token is bound to a nonce cookie instead"
    csrf_cookie = form.headers["Set-Cookie"]
    assert csrf_cookie.startswith(f"{NONCE_COOKIE}=")
    assert "HttpOnly" in csrf_cookie and "SameSite=Lax" in csrf_cookie

    response = sign_in(client, username)
    assert response.status_code == 302
    set_cookie = session_set_cookie(response)
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Path=/" in set_cookie
    assert "Secure" not in set_cookie  # plain http, http base URL
    signed_in_sid = cookie_value(client)
    assert signed_in_sid is not None
    assert client.get_cookie(NONCE_COOKIE) is None, "the anonymous nonce is retired at sign-in"

    item = session_item(stack, signed_in_sid)
    assert item is not None
    tokens = list(tokens_of(stack, signed_in_sid))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signed_in_sid)
    assert all(token not in set_cookie for token in tokens)
    assert "session_id" in item and item["session_id"]["S"] != signed_in_sid
    assert int(item["expires_at"]["N"]) > time.time()
    page = client.get("/account").text
    assert all(token not in page for token in tokens), "tokens never reach a page"


def test_over_https_the_session_cookie_is_secure(stack: Stack) -> None:
    username = unique("gus")
    make_user(stack, username)
    client = stack.app.test_client()
    response = sign_in(client, username, base_url="https://localhost")
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_the_account_page_shows_premium_state_and_until_when(stack: Stack) -> None:
    username = unique("hal")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    page = client.get("/account")
    assert 'data-premium="inactive"' in page.text

    record = stack.services.users.find(username)
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    stack.services.entitlements.set_premium(
        record.user_id, True, until, actor="test", expected_version=record.version
    )
    page = client.get("/account")
    assert 'data-premium="active"' in page.text
    assert "Premium until <time" in page.text  # localized by static/localtime.js
    stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'datetime="{stamp}">{until.strftime("%d %B %Y, %H:%M UTC")}</time>' in page.text


# --------------------------------------------------------------------------- sign out


def test_sign_out_revokes_the_refresh_token_and_the_old_cookie_stops_working(
    stack: Stack,
) -> None:
    username = unique("ivy")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    sid = cookie_value(client)
    assert sid is not None
    refresh_token = tokens_of(stack, sid)[2]
    assert refresh_works(stack, refresh_token)

    response = sign_out(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert session_item(stack, sid) is None
    assert cookie_value(client) != sid
    assert not refresh_works(stack, refresh_token)
    assert "You are signed out." in client.get("/").text
    assert_signed_out(client)

    replay = stack.app.test_client()
    replay.set_cookie(COOKIE_NAME, sid)
    assert_signed_out(replay)


# --------------------------------------------------------------------------- refusals


def test_wrong_password_unknown_user_and_unconfirmed_user_get_friendly_messages(
    stack: Stack,
) -> None:
    username = unique("jo")
    make_user(stack, username)
    client = stack.app.test_client()

    wrong = sign_in(client, username, "Not-The-Password-1!")
    assert wrong.status_code == 400
    assert "The username, e-mail or password is not right." in wrong.text

    unknown = sign_in(client, unique("nobody"))
    assert unknown.status_code == 400
    assert "The username, e-mail or password is not right." in unknown.text
    unknown_email = sign_in(client, f"{unique('nobody')}@example.com")
    assert "The username, e-mail or password is not right." in unknown_email.text

    pending = unique("kim")
    stack.cognito.sign_up(
        ClientId=stack.client_id,
        Username=pending,
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": f"{pending}@example.com"}],
    )
    unconfirmed = sign_in(client, pending)
    assert unconfirmed.status_code == 400
    assert "not confirmed yet" in unconfirmed.text
    assert f'href="/auth/confirm?username={pending}"' in unconfirmed.text
    assert cookie_value(client) is None, "a refused sign-in starts no session"
    assert_signed_out(client)
    for page in (wrong, unknown, unconfirmed):
        assert not any(marker in page.text for marker in TRACEBACK_MARKERS)


def test_sign_up_refusals_are_friendly(stack: Stack) -> None:
    client = stack.app.test_client()
    taken = unique("lee")
    make_user(stack, taken)
    weak = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": unique("mo"),
            "email": "mo@example.com",
            "password": "short",
            "password_repeat": "short",
        },
    )
    assert weak.status_code == 400 and "too weak" in weak.text
    exists = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": taken,
            "email": "other@example.com",
            "password": PASSWORD,
            "password_repeat": PASSWORD,
        },
    )
    assert exists.status_code == 400 and "already exists" in exists.text
    mismatch = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": unique("ned"),
            "email": "ned@example.com",
            "password": PASSWORD,
            "password_repeat": PASSWORD + "x",
        },
    )
    assert mismatch.status_code == 400 and "do not match" in mismatch.text


def test_a_missing_or_wrong_csrf_token_is_refused_with_403(stack: Stack) -> None:
    username = unique("ola")
    make_user(stack, username)
    client = stack.app.test_client()
    client.get("/auth/sign-in")
    data = {"identifier": username, "password": PASSWORD}

    missing = client.post("/auth/sign-in", data=data)
    assert missing.status_code == 403
    assert "This form has expired" in missing.text
    wrong = client.post("/auth/sign-in", data={**data, "csrf_token": "A" * 86})
    assert wrong.status_code == 403

    other_browser = stack.app.test_client()
    foreign_token = csrf_from(other_browser.get("/auth/sign-in").text)
    foreign = client.post("/auth/sign-in", data={**data, "csrf_token": foreign_token})
    assert foreign.status_code == 403, "a token of another session does not count"

    token = csrf_from(client.get("/auth/sign-in").text)
    cross_site = client.post(
        "/auth/sign-in",
        data={**data, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403

    as_json = client.post("/auth/sign-out", json={}, headers={"X-CSRF-Token": "nope"})
    assert as_json.status_code == 403
    assert as_json.get_json() == {"error": "csrf", "message": as_json.get_json()["message"]}

    assert sign_in(client, username).status_code == 302
    signed_in_token = csrf_from(client.get("/account").text)
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/account").text)
    assert meta, "signed-in pages carry the token for fetch() calls"
    assert client.post("/auth/sign-out", data={}).status_code == 403
    assert client.get("/account").status_code == 200, "the refused sign-out did nothing"
    same_origin = client.post(
        "/auth/sign-out",
        headers={
            "X-CSRF-Token": signed_in_token,
            "Origin": "http://localhost",
        },
    )
    assert same_origin.status_code == 302
    assert_signed_out(client)


# --------------------------------------------------------------------------- challenges, reset


def test_a_user_with_a_temporary_password_must_choose_a_new_one(stack: Stack) -> None:
    username = unique("pat")
    stack.cognito.admin_create_user(
        UserPoolId=stack.pool_id,
        Username=username,
        TemporaryPassword="Temp-Pass-2026!x",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
    )
    client = stack.app.test_client()
    response = sign_in(client, username, "Temp-Pass-2026!x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/new-password"
    assert_signed_out(client)

    page = client.get("/auth/new-password")
    assert page.status_code == 200 and username in page.text
    weak = client.post(
        "/auth/new-password",
        data={
            "csrf_token": csrf_from(page.text),
            "password": "weak",
            "password_repeat": "weak",
        },
    )
    assert weak.status_code == 400 and "too weak" in weak.text

    done = post_form(
        client,
        "/auth/new-password",
        "/auth/new-password",
        {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert client.get("/account").status_code == 200
    assert stack.services.users.find(username).username == username
    assert client.get("/auth/new-password").status_code == 302, "the challenge is used up"


def test_a_forgotten_password_is_reset_with_the_emailed_code(stack: Stack) -> None:
    username = unique("quin")
    email = make_user(stack, username, record=True)
    client = stack.app.test_client()
    response = post_form(client, "/auth/forgot", "/auth/forgot", {"identifier": email})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/reset?identifier=")

    # The emulator keeps the code it "sent" only for codes in its own format;
    # one in that format but wrong is a stale code.
    stale = post_form(
        client,
        "/auth/reset",
        "/auth/reset",
        {
            "identifier": email,
            "code": "moto-confirmation-code:000000",
            "password": NEW_PASSWORD,
            "password_repeat": NEW_PASSWORD,
        },
    )
    assert stale.status_code == 400 and "expired" in stale.text

    done = post_form(
        client,
        "/auth/reset",
        "/auth/reset",
        {
            "identifier": email,
            "code": "123456",
            "password": NEW_PASSWORD,
            "password_repeat": NEW_PASSWORD,
        },
    )
    assert done.status_code == 302
    assert "Your password is changed" in client.get(done.headers["Location"]).text
    assert sign_in(client, username, PASSWORD).status_code == 400
    assert sign_in(client, username, NEW_PASSWORD).status_code == 302

    unknown = post_form(
        stack.app.test_client(), "/auth/forgot", "/auth/forgot", {"identifier": unique("ghost")}
    )
    assert unknown.status_code == 302, "an unknown account gets the same answer"


# --------------------------------------------------------------------------- token lifetime


def test_an_access_token_near_expiry_is_refreshed(stack: Stack) -> None:
    username = unique("rae")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    sid = cookie_value(client)
    assert sid is not None
    before = tokens_of(stack, sid)
    update_session(stack, sid, token_expires_at=int(time.time()) + 60)

    assert client.get("/account").status_code == 200
    after = tokens_of(stack, sid)
    assert after[0] != before[0] and after[1] != before[1]
    item = session_item(stack, sid)
    assert item is not None
    assert int(item["token_expires_at"]["N"]) > time.time() + 600
    assert after[2] == before[2], "the refresh token is kept"


def test_a_refused_refresh_ends_the_session(stack: Stack) -> None:
    username = unique("sam")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    sid = cookie_value(client)
    assert sid is not None
    session = stored(stack, sid)
    changed = {
        **session.data[SIGNED_IN],
        "token_expires_at": int(time.time()) + 60,
        "refresh_token": "revoked-or-unknown",
    }
    store_of(stack.app).save(replace(session, data={**session.data, SIGNED_IN: changed}))
    assert_signed_out(client)
    assert session_item(stack, sid) is None
    assert cookie_value(client) is None


def test_an_idle_session_is_over_even_before_dynamodb_deletes_it(stack: Stack) -> None:
    username = unique("tia")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    sid = cookie_value(client)
    assert sid is not None
    long_ago = int(time.time()) - 13 * 3600
    update_session(stack, sid, last_seen_at=long_ago)
    assert_signed_out(client)
    assert session_item(stack, sid) is None


# --------------------------------------------------------------------------- admin, pages


def test_an_admin_sees_the_admin_link_and_a_non_admin_does_not(stack: Stack) -> None:
    admin, viewer = unique("uma"), unique("vic")
    make_user(stack, admin, groups=("admin",))
    make_user(stack, viewer)
    admin_client, viewer_client = stack.app.test_client(), stack.app.test_client()
    sign_in(admin_client, admin)
    sign_in(viewer_client, viewer)
    assert 'data-nav="admin"' in admin_client.get("/").text
    assert ">Admin<" in admin_client.get("/account").text
    assert 'data-nav="admin"' not in viewer_client.get("/").text
    assert ">Admin<" not in viewer_client.get("/account").text
    assert ">Admin<" not in stack.app.test_client().get("/").text


def test_sign_in_goes_back_to_a_local_page_only(stack: Stack) -> None:
    username = unique("wes")
    make_user(stack, username)
    client = stack.app.test_client()
    redirect = client.get("/account")
    assert redirect.headers["Location"] == "/auth/sign-in?next=/account"
    token = csrf_from(client.get("/auth/sign-in?next=/account").text)
    response = client.post(
        "/auth/sign-in",
        data={
            "csrf_token": token,
            "identifier": username,
            "password": PASSWORD,
            "next": "/account",
        },
    )
    assert response.headers["Location"] == "/account"
    other = stack.app.test_client()
    token = csrf_from(other.get("/auth/sign-in").text)
    response = other.post(
        "/auth/sign-in",
        data={
            "csrf_token": token,
            "identifier": username,
            "password": PASSWORD,
            "next": "//evil.example/phish",
        },
    )
    assert response.headers["Location"] == "/"


def test_error_pages_are_friendly_and_never_show_a_traceback(stack: Stack) -> None:
    app = create_app(stack.settings, services=stack.services, local_triggers=True)

    def explode() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", "explode", explode)
    client = app.test_client()
    not_found = client.get("/no/such/page")
    assert not_found.status_code == 404 and "We could not find that page." in not_found.text
    not_allowed = client.post("/account")
    assert not_allowed.status_code == 405 and "Allow" in not_allowed.headers
    broken = client.get("/explode")
    assert broken.status_code == 500
    assert "Something went wrong on our side" in broken.text
    assert "secret internal detail" not in broken.text
    for response in (not_found, not_allowed, broken):
        assert not any(marker in response.text for marker in TRACEBACK_MARKERS)
    as_json = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    assert as_json.get_json() == {"error": "not_found", "message": "We could not find that page."}
    broken_json = client.get("/explode", headers={"Accept": "application/json"})
    assert broken_json.get_json()["error"] == "internal"


def test_every_page_carries_the_security_headers(stack: Stack) -> None:
    client = stack.app.test_client()
    for path in ("/", "/auth/sign-in", "/no/such/page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
    page = client.get("/auth/sign-in").text
    assert "<script>" not in page and "style=" not in page


# --------------------------------------------------------------------------- dependencies down


class _SessionWithDeadService:
    """A boto3 session whose clients of one service talk to a closed port."""

    def __init__(self, real: boto3.Session, service: str, endpoint: str) -> None:
        self._real = real
        self._service = service
        self._endpoint = endpoint

    def client(self, name: str, **kwargs: Any) -> Any:
        if name == self._service:
            kwargs["endpoint_url"] = self._endpoint
        return self._real.client(name, **kwargs)  # type: ignore[call-overload]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def app_with_dead(stack: Stack, boto_session: boto3.Session, service: str) -> Flask:
    dead = _SessionWithDeadService(boto_session, service, f"http://127.0.0.1:{free_port()}")
    services = Services(stack.settings, session=dead)  # type: ignore[arg-type]
    return create_app(stack.settings, services=services, local_triggers=True)


@pytest.fixture
def app_with_dead_cognito(stack: Stack, boto_session: boto3.Session) -> Iterator[Flask]:
    yield app_with_dead(stack, boto_session, "cognito-idp")


def test_cognito_unreachable_gives_a_503_page_and_nobody_is_signed_in(
    stack: Stack, app_with_dead_cognito: Flask
) -> None:
    username = unique("xan")
    make_user(stack, username)
    client = app_with_dead_cognito.test_client()
    client.get("/auth/sign-in")
    before = cookie_value(client)
    response = sign_in(client, username)
    assert response.status_code == 503
    assert "unavailable" in response.text
    assert not any(marker in response.text for marker in TRACEBACK_MARKERS)
    assert cookie_value(client) == before, "no new (signed-in) session"
    assert_signed_out(client)


def test_the_session_table_unreachable_gives_a_503_page_at_sign_in(stack: Stack) -> None:
    username = unique("yul")
    make_user(stack, username, record=True)
    broken = load_settings({**stack.env, "VIDGATE_SESSIONS_TABLE": "no-such-table"}, NEEDS)
    app = create_app(
        broken, services=Services(broken, session=stack.services.session), local_triggers=True
    )
    client = app.test_client()
    assert client.get("/auth/sign-in").status_code == 200, "anonymous pages need no table"
    response = sign_in(client, username)
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text
    assert cookie_value(client) is None


def test_kms_unreachable_gives_a_503_page_and_writes_nothing(
    stack: Stack, boto_session: boto3.Session
) -> None:
    username = unique("zed")
    make_user(stack, username, record=True)
    sub = stack.services.users.find(username).user_id
    app = app_with_dead(stack, boto_session, "kms")
    client = app.test_client()
    response = sign_in(client, username)
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text
    assert not any(marker in response.text for marker in TRACEBACK_MARKERS)
    assert cookie_value(client) is None
    assert not [item for item in all_sessions(stack) if item.get("user_id") == {"S": sub}]

    # A signed-in browser meets a process that cannot reach KMS: 503, not signed out.
    healthy = stack.app.test_client()
    assert sign_in(healthy, username).status_code == 302
    sid = cookie_value(healthy)
    assert sid is not None
    cold = app.test_client()
    cold.set_cookie(COOKIE_NAME, sid)
    assert cold.get("/account").status_code == 503
    assert session_item(stack, sid) is not None
    assert healthy.get("/account").status_code == 200


# ------------------------------------------------------------------ tokens at rest (issue 14.1)


def all_sessions(stack: Stack, table: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in stack.dynamodb.get_paginator("scan").paginate(
        TableName=table or stack.tables["sessions"], ConsistentRead=True
    ):
        items += page["Items"]
    return items


def raw_dump(items: list[dict[str, Any]]) -> str:
    """Everything the items hold as text: strings, numbers, and binary as latin-1 and base64."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, bytes | bytearray):
            parts.append(bytes(value).decode("latin-1"))
            parts.append(base64.b64encode(bytes(value)).decode())
        elif isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
        else:
            parts.append(str(value))

    walk(items)
    return "\n".join(parts)


def test_the_raw_sessions_table_after_a_web_sign_in_holds_nothing_usable(stack: Stack) -> None:
    username = unique("ada")
    make_user(stack, username, groups=("admin",))
    client = stack.app.test_client()
    assert sign_in(client, username).status_code == 302
    assert client.get("/account").status_code == 200
    sid = cookie_value(client)
    assert sid is not None
    secrets = tokens_of(stack, sid)
    assert all(JWT.match(token) for token in secrets[:2]), "the app holds real Cognito JWTs"
    assert refresh_works(stack, secrets[2])

    dump = raw_dump(all_sessions(stack))
    assert not JWT.search(dump), "no JWT shape anywhere in the table"
    for token in secrets:
        for start in range(0, len(token) - 16, 8):
            assert token[start : start + 16] not in dump, "no piece of a token"
    assert sid not in dump, "nor the cookie value"
    item = session_item(stack, sid)
    assert item is not None
    assert not {"access_token", "id_token", "refresh_token"} & set(item)
    assert set(item["tokens"]) == {"B"} and set(item["tokens_key"]) == {"B"}


def test_sealed_tokens_moved_to_another_users_item_sign_that_browser_out(stack: Stack) -> None:
    victim, mallory = unique("bea"), unique("mal")
    make_user(stack, victim, groups=("admin",))
    make_user(stack, mallory)
    victim_client, mallory_client = stack.app.test_client(), stack.app.test_client()
    sign_in(victim_client, victim)
    sign_in(mallory_client, mallory)
    victim_sid, mallory_sid = cookie_value(victim_client), cookie_value(mallory_client)
    assert victim_sid and mallory_sid
    source = session_item(stack, victim_sid)
    assert source is not None
    stack.dynamodb.update_item(
        TableName=stack.tables["sessions"],
        Key={"session_id": {"S": SessionStore.key_for(mallory_sid)}},
        UpdateExpression="SET #t = :t, #k = :k",
        ExpressionAttributeNames={"#t": "tokens", "#k": "tokens_key"},
        ExpressionAttributeValues={":t": source["tokens"], ":k": source["tokens_key"]},
    )
    assert_signed_out(mallory_client)
    assert session_item(stack, mallory_sid) is None
    assert victim_client.get("/account").status_code == 200


def test_a_session_stored_before_tokens_were_sealed_is_signed_out(stack: Stack) -> None:
    username = unique("old")
    make_user(stack, username)
    client = stack.app.test_client()
    sign_in(client, username)
    sid = cookie_value(client)
    assert sid is not None
    access, id_token, refresh = tokens_of(stack, sid)
    # The item as the previous version wrote it: the same sign-in, tokens in plaintext.
    legacy = session_item(stack, sid)
    assert legacy is not None
    legacy.pop("tokens")
    legacy.pop("tokens_key")
    legacy.update(
        access_token={"S": access}, id_token={"S": id_token}, refresh_token={"S": refresh}
    )
    stack.dynamodb.put_item(TableName=stack.tables["sessions"], Item=legacy)
    assert_signed_out(client)
    assert session_item(stack, sid) is None, "the plaintext tokens leave the table"


# ------------------------------------------------------------------ anonymous visitors (issue 14.7)


def fresh_app(stack: Stack) -> tuple[Flask, str]:
    """The web app over a sessions table of its own (empty), sharing everything else."""
    table = f"{stack.tables['sessions']}-{uuid.uuid4().hex[:6]}"
    create_tables(stack.dynamodb, {"sessions": table})
    env = {**stack.env, "VIDGATE_SESSIONS_TABLE": table}
    settings = load_settings(env, NEEDS)
    services = Services(settings, session=stack.services.session)
    return create_app(settings, services=services, local_triggers=True), table


def test_anonymous_visitors_write_nothing_to_the_sessions_table(stack: Stack) -> None:
    app, table = fresh_app(stack)
    client = app.test_client()
    pages = ("/auth/sign-in", "/auth/sign-up", "/auth/forgot", "/auth/reset", "/auth/confirm", "/")
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert cookie_value(client) is None, page
    assert 'name="csrf_token"' in client.get("/auth/sign-in").text
    failed = sign_in(client, unique("nobody"), "Wrong-Password-1!")
    assert failed.status_code == 400
    assert "not right" in failed.text
    assert all_sessions(stack, table) == []

    # Flashed messages still reach an anonymous visitor: through the encrypted cookie.
    username = unique("flo")
    signed_up = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "password_repeat": PASSWORD,
        },
    )
    assert signed_up.status_code == 302
    assert client.get_cookie(PRE_COOKIE) is not None
    confirm_page = client.get(signed_up.headers["Location"])
    assert "We e-mailed you a confirmation code" in confirm_page.text
    assert "We e-mailed you" not in client.get("/auth/confirm").text, "shown once"
    confirmed = post_form(
        client, "/auth/confirm", "/auth/confirm", {"username": username, "code": "123456"}
    )
    assert confirmed.status_code == 302
    assert "Your account is confirmed" in client.get(confirmed.headers["Location"]).text
    forgot = post_form(client, "/auth/forgot", "/auth/forgot", {"identifier": username})
    assert forgot.status_code == 302
    assert "If that account exists" in client.get(forgot.headers["Location"]).text
    assert all_sessions(stack, table) == [], "still nothing written"

    # The server-side session starts at sign-in, and only then.
    assert sign_in(client, username).status_code == 302
    assert len(all_sessions(stack, table)) == 1


def test_an_anonymous_csrf_token_is_bound_to_its_own_browsers_nonce(stack: Stack) -> None:
    client, other = stack.app.test_client(), stack.app.test_client()
    token = csrf_from(client.get("/auth/sign-in").text)
    other_token = csrf_from(other.get("/auth/sign-in").text)
    data = {"identifier": unique("nobody"), "password": "Wrong-Password-1!"}
    assert client.post("/auth/sign-in", data={**data, "csrf_token": other_token}).status_code == 403
    assert client.post("/auth/sign-in", data={**data, "csrf_token": token}).status_code == 400
    # A nonce cookie of the attacker's choosing with a token minted for another nonce: refused.
    nonce = client.get_cookie(NONCE_COOKIE)
    assert nonce is not None
    other.set_cookie(NONCE_COOKIE, "A" * 43)
    assert other.post("/auth/sign-in", data={**data, "csrf_token": token}).status_code == 403
    without_cookie = stack.app.test_client()
    assert (
        without_cookie.post("/auth/sign-in", data={**data, "csrf_token": token}).status_code == 403
    )


# ------------------------------------------------------------------ helpers for other pages


def test_the_helpers_other_blueprints_use_guard_pages_and_hand_out_a_fresh_access_token(
    stack: Stack,
) -> None:
    from flask import Blueprint, jsonify

    from app.web.signin import (
        admin_required,
        current_user,
        login_required,
        session_access_token,
    )

    probe = Blueprint("probe", __name__)

    @probe.post("/probe/token")
    @login_required
    def token() -> Any:
        access = session_access_token()
        principal = stack.services.access_verifier.verify(access)
        user = current_user()
        assert user is not None
        return jsonify(username=principal.username, same_user=principal.user_id == user.user_id)

    @probe.get("/probe/admin")
    @admin_required
    def admin_only() -> str:
        return "admins only"

    app = create_app(stack.settings, services=stack.services, local_triggers=True)
    app.register_blueprint(probe)
    admin, viewer = unique("yan"), unique("zoe")
    make_user(stack, admin, groups=("admin",))
    make_user(stack, viewer)
    admin_client, viewer_client = app.test_client(), app.test_client()
    sign_in(admin_client, admin)
    sign_in(viewer_client, viewer)

    anonymous = app.test_client()
    assert anonymous.get("/probe/admin").status_code == 302
    assert anonymous.post("/probe/token", json={}).status_code in (401, 403)
    assert viewer_client.get("/probe/admin").status_code == 403
    assert "You do not have access" in viewer_client.get("/probe/admin").text
    assert admin_client.get("/probe/admin").text == "admins only"

    page = viewer_client.get("/account").text
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert meta
    headers = {"X-CSRF-Token": meta.group(1), "Accept": "application/json"}
    assert viewer_client.post("/probe/token", json={}).status_code == 403, "no CSRF header"
    answer = viewer_client.post("/probe/token", json={}, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"username": viewer, "same_user": True}

    sid = cookie_value(viewer_client)
    assert sid is not None
    before = tokens_of(stack, sid)
    update_session(stack, sid, token_expires_at=int(time.time()) + 30)
    assert viewer_client.post("/probe/token", json={}, headers=headers).status_code == 200
    assert tokens_of(stack, sid)[0] != before[0]

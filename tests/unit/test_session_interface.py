"""Unit tests of the session interface inside a small Flask app: what a request writes
(nothing for an anonymous visitor, whose state goes into the encrypted pre-session cookie;
for a signed-in one nothing unless the session changed or is due a touch), the cookies,
rotation, sign-out, timeouts on a fixed clock, a session deleted meanwhile, DynamoDB or KMS
down. The table and KMS are recording fakes; no network.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask, flash, get_flashed_messages, jsonify, request, session
from flask.testing import FlaskClient
from werkzeug.exceptions import InternalServerError
from werkzeug.test import TestResponse

from app.errors import DependencyUnavailableError
from app.web import session_store
from app.web.presession import COOKIE_NAME as PRE_COOKIE
from app.web.presession import PreSessionCookie
from app.web.session_store import (
    COOKIE_NAME,
    CSRF_SECRET,
    SIGNED_IN,
    ServerSession,
    SessionStore,
    current_session,
)
from tests.unit.session_fakes import Clock, FakeDynamoDB, FakeKms, make_store

SECRET_KEY = "k" * 40
SIGNED_IN_VALUE = {
    "user_id": "u-1",
    "username": "alice",
    "email": "alice@example.com",
    "groups": [],
    "access_token": "ACCESS.TOKEN.value",
    "id_token": "ID.TOKEN.value",
    "refresh_token": "REFRESH-TOKEN-value",
    "token_expires_at": 1_800_003_600,
    "method": "password",
}


class World:
    """One app (one "process"): its store, fakes and pre-session cookie share the clock."""

    def __init__(
        self,
        fake: FakeDynamoDB | None = None,
        kms: FakeKms | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.kms = kms or FakeKms()
        self.store, self.fake = make_store(self.clock, fake, self.kms)
        self.pre = PreSessionCookie(SECRET_KEY.encode(), clock=self.clock)
        self.app = make_app(self.store, self.fake, self.pre)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def writes(self) -> list[str]:
        return [call for call in self.fake.calls if call != "get_item"]


def this_session() -> ServerSession:
    opened = current_session()
    assert opened is not None
    return opened


def make_app(store: SessionStore, fake: FakeDynamoDB, pre: PreSessionCookie) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SECURE=False,
    )
    session_store.init_app(app, store, sessionless=("/static/", "/api/"), pre_session=pre)

    @app.get("/read")
    def read() -> str:
        return str(session.get("n", "none"))

    @app.get("/state")
    def state() -> Any:
        return jsonify(signed_in=SIGNED_IN in session, csrf=CSRF_SECRET in session)

    @app.post("/set")
    def set_value() -> str:
        session["n"] = request.form["n"]
        return "ok"

    @app.post("/flash")
    def add_flash() -> str:
        flash(request.form.get("text", "hi"), "info")
        return "ok"

    @app.get("/flashes")
    def flashes() -> Any:
        return jsonify(get_flashed_messages(with_categories=True))

    @app.post("/sign-in")
    def sign_in() -> str:
        session.clear()
        this_session().regenerate()
        session[SIGNED_IN] = SIGNED_IN_VALUE
        session[CSRF_SECRET] = "csrf-secret"
        if request.form.get("n"):
            session["n"] = request.form["n"]
        return "ok"

    @app.post("/sign-out")
    def sign_out() -> str:
        this_session().end()
        if request.form.get("then_flash"):
            flash("You are signed out.", "info")
        return "ok"

    @app.post("/drop-sign-in")
    def drop_sign_in() -> str:
        session.pop(SIGNED_IN)
        return "ok"

    @app.post("/other-tab-signs-out")
    def other_tab() -> str:
        fake.items.clear()
        if request.form.get("n"):
            session["n"] = request.form["n"]
        return "ok"

    @app.get("/api/thing")
    def api_thing() -> str:
        return str(session.get("n", "none"))

    @app.errorhandler(DependencyUnavailableError)
    def unavailable(exc: DependencyUnavailableError) -> tuple[str, int]:
        return "down", 503

    @app.errorhandler(InternalServerError)
    def internal(exc: InternalServerError) -> tuple[str, int]:
        cause = exc.original_exception
        return ("down", 503) if isinstance(cause, DependencyUnavailableError) else ("boom", 500)

    return app


def sid_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def pre_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(PRE_COOKIE)
    return cookie.value if cookie else None


def start(world: World, client: FlaskClient, n: str = "1") -> str:
    """Sign ``client`` in (one item); returns its session id."""
    assert client.post("/sign-in", data={"n": n}).status_code == 200
    sid = sid_of(client)
    assert sid is not None
    world.fake.calls.clear()
    world.kms.calls.clear()
    return sid


def set_cookies(response: TestResponse) -> dict[str, str]:
    """The response's Set-Cookie headers by cookie name (one each)."""
    found: dict[str, str] = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        assert name not in found, f"two Set-Cookie for {name}"
        found[name] = header
    return found


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------- anonymous


def test_reading_without_a_cookie_asks_dynamodb_nothing_and_sets_no_cookie(world: World) -> None:
    response = world.client().get("/read")
    assert response.text == "none"
    assert world.fake.calls == [] and world.kms.calls == []
    assert "Set-Cookie" not in response.headers
    assert "Cookie" in response.headers.get("Vary", ""), "the page read the session"


def test_an_anonymous_change_writes_nothing_and_travels_in_an_encrypted_cookie(
    world: World,
) -> None:
    client = world.client()
    response = client.post("/set", data={"n": "visible-if-not-encrypted"})
    assert world.fake.calls == [] and world.kms.calls == []
    cookie = set_cookies(response)[PRE_COOKIE]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"):
        assert attribute in cookie
    assert "Secure" not in cookie
    value = pre_of(client)
    assert value is not None
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert b"visible-if-not-encrypted" not in raw and b'"n"' not in raw
    assert COOKIE_NAME not in set_cookies(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/read").text == "visible-if-not-encrypted"
    assert world.fake.calls == [], "reading it back asks DynamoDB nothing either"


def test_flashed_messages_of_an_anonymous_visitor_are_shown_once(world: World) -> None:
    client = world.client()
    client.post("/flash", data={"text": "check your e-mail"})
    assert client.get("/flashes").get_json() == [["info", "check your e-mail"]]
    assert client.get("/flashes").get_json() == []
    assert world.fake.calls == []


def test_an_emptied_anonymous_session_clears_its_cookie(world: World) -> None:
    client = world.client()
    client.post("/flash", data={"text": "saved"})
    response = client.get("/flashes")
    assert f"{PRE_COOKIE}=;" in set_cookies(response)[PRE_COOKIE]
    assert pre_of(client) is None


def test_a_browser_that_never_renders_keeps_only_the_newest_flashes(world: World) -> None:
    client = world.client()
    for number in range(8):
        client.post("/flash", data={"text": f"message {number}"})
    assert [m for _, m in client.get("/flashes").get_json()] == [
        f"message {number}" for number in range(3, 8)
    ]


@pytest.mark.parametrize(
    "value",
    ["garbage", "A" * 200, "", "!!!!"],
    ids=["garbage", "zeros", "empty", "not-base64"],
)
def test_a_forged_pre_session_cookie_counts_for_nothing_and_is_cleared(
    world: World, value: str
) -> None:
    client = world.client()
    client.set_cookie(PRE_COOKIE, value)
    response = client.get("/read")
    assert response.text == "none"
    assert f"{PRE_COOKIE}=;" in set_cookies(response)[PRE_COOKIE]


def test_a_pre_session_cookie_of_another_app_key_or_too_old_counts_for_nothing(
    world: World,
) -> None:
    other = PreSessionCookie(b"x" * 40, clock=world.clock)
    client = world.client()
    client.set_cookie(PRE_COOKIE, other.seal({"n": "1"}))
    assert client.get("/read").text == "none"
    client.set_cookie(PRE_COOKIE, world.pre.seal({"n": "2"}))
    world.clock.now += 3599
    assert client.get("/read").text == "2"
    world.clock.now += 1
    assert client.get("/read").text == "none"


def test_a_pre_session_cookie_can_never_carry_a_sign_in_or_a_csrf_secret(world: World) -> None:
    client = world.client()
    forged = world.pre.seal({SIGNED_IN: SIGNED_IN_VALUE, CSRF_SECRET: "mine", "n": "1"})
    client.set_cookie(PRE_COOKIE, forged)
    assert client.get("/state").get_json() == {"signed_in": False, "csrf": False}
    assert client.get("/read").text == "1"
    assert world.fake.calls == []


# --------------------------------------------------------------------------- signed in


def test_sign_in_creates_the_item_with_an_httponly_lax_cookie(world: World) -> None:
    client = world.client()
    response = client.post("/sign-in")
    assert world.fake.calls == ["put_item"]
    assert world.kms.calls == ["GenerateDataKey"]
    cookie = set_cookies(response)[COOKIE_NAME]
    sid = sid_of(client)
    assert sid is not None and SessionStore.well_formed(sid)
    assert cookie.startswith(f"{COOKIE_NAME}={sid};")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"):
        assert attribute in cookie
    assert "Secure" not in cookie
    assert list(world.fake.items) == [SessionStore.key_for(sid)]
    assert response.headers["Cache-Control"] == "no-store"


def test_sign_in_moves_the_anonymous_state_out_of_the_cookie_into_the_item(world: World) -> None:
    client = world.client()
    client.post("/flash", data={"text": "kept"})
    assert pre_of(client) is not None
    response = client.post("/sign-in", data={"n": "7"})
    cookies = set_cookies(response)
    assert f"{PRE_COOKIE}=;" in cookies[PRE_COOKIE]
    assert COOKIE_NAME in cookies
    assert pre_of(client) is None
    assert client.get("/read").text == "7"
    assert client.get("/flashes").get_json() == [], "sign-in starts from nothing"


def test_over_https_every_cookie_is_secure(world: World) -> None:
    client = world.client()
    anonymous = client.post("/set", data={"n": "1"}, base_url="https://localhost")
    assert "Secure" in set_cookies(anonymous)[PRE_COOKIE]
    signed_in = client.post("/sign-in", base_url="https://localhost")
    assert "Secure" in set_cookies(signed_in)[COOKIE_NAME]


def test_a_request_that_changes_nothing_writes_nothing(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 59
    response = client.get("/read")
    assert response.text == "1"
    assert world.fake.calls == ["get_item"]
    assert world.kms.calls == [], "the data key this process made opens its own items"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


def test_a_change_to_a_live_session_rewrites_its_item_under_the_same_id(world: World) -> None:
    client = world.client()
    sid = start(world, client)
    response = client.post("/set", data={"n": "2"})
    assert world.writes() == ["put_item"]
    assert "Set-Cookie" not in response.headers
    assert sid_of(client) == sid
    assert client.get("/read").text == "2"


def test_flashed_messages_of_a_signed_in_user_are_kept_in_the_item_and_shown_once(
    world: World,
) -> None:
    client = world.client()
    start(world, client)
    response = client.post("/flash", data={"text": "saved"})
    assert PRE_COOKIE not in set_cookies(response)
    assert world.writes() == ["put_item"]
    assert client.get("/flashes").get_json() == [["info", "saved"]]
    assert client.get("/flashes").get_json() == []


def test_another_process_opens_the_item_with_one_kms_decrypt(world: World) -> None:
    client = world.client()
    start(world, client)
    other = World(fake=world.fake, kms=world.kms, clock=world.clock)
    replay = other.client()
    replay.set_cookie(COOKIE_NAME, sid_of(client) or "")
    for _ in range(3):
        assert replay.get("/state").get_json()["signed_in"] is True
    assert world.kms.calls == ["Decrypt"], "decrypted once, then cached"


# --------------------------------------------------------------------------- rotation, sign-out


def test_regenerate_moves_the_session_to_a_fresh_id_and_deletes_the_old_item(
    world: World,
) -> None:
    client = world.client()
    old = start(world, client)
    response = client.post("/sign-in")
    new = sid_of(client)
    assert new is not None and new != old
    assert world.writes() == ["put_item", "delete_item"]
    assert list(world.fake.items) == [SessionStore.key_for(new)]
    assert "Max-Age=86400" in set_cookies(response)[COOKIE_NAME]
    assert client.get("/read").text == "none", "nothing is kept from before"
    replay = world.client()
    replay.set_cookie(COOKIE_NAME, old)
    assert replay.get("/read").text == "none"


def test_end_deletes_the_item_at_once_and_clears_the_cookie(world: World) -> None:
    client = world.client()
    old = start(world, client)
    response = client.post("/sign-out")
    assert world.fake.items == {}
    assert world.writes() == ["delete_item"]
    assert f"{COOKIE_NAME}=;" in set_cookies(response)[COOKIE_NAME]
    assert sid_of(client) is None
    replay = world.client()
    replay.set_cookie(COOKIE_NAME, old)
    assert replay.get("/read").text == "none"


def test_what_is_set_after_end_goes_into_the_anonymous_cookie(world: World) -> None:
    client = world.client()
    start(world, client)
    client.post("/sign-out", data={"then_flash": "1"})
    assert world.fake.items == {}
    assert world.writes() == ["delete_item"]
    assert sid_of(client) is None and pre_of(client) is not None
    assert client.get("/flashes").get_json() == [["info", "You are signed out."]]


def test_a_sign_in_taken_out_of_the_session_takes_its_item_with_it(world: World) -> None:
    client = world.client()
    start(world, client)
    response = client.post("/drop-sign-in")
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookies(response)[COOKIE_NAME]
    assert client.get("/read").text == "1", "what is left is the visitor's, in the cookie"


# --------------------------------------------------------------------------- time


def test_activity_is_recorded_at_most_once_per_touch_interval(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 30
    client.get("/read")
    assert world.writes() == []
    world.clock.now += 31
    response = client.get("/read")
    assert world.writes() == ["update_item"]
    assert "Set-Cookie" not in response.headers
    client.get("/read")
    assert world.writes() == ["update_item"]


def test_an_idle_session_is_over_removed_and_its_cookie_cleared(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 3599
    assert client.get("/read").text == "1"
    world.clock.now += 3600
    response = client.get("/read")
    assert response.text == "none"
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookies(response)[COOKIE_NAME]


def test_touches_keep_a_session_only_until_its_absolute_lifetime(world: World) -> None:
    client = world.client()
    start(world, client)
    for _ in range(28):
        world.clock.now += 3000
        assert client.get("/read").text == "1"
    world.clock.now += 2400  # 86400 s after sign-in
    assert client.get("/read").text == "none"


# --------------------------------------------------------------------------- deleted meanwhile


def test_a_session_deleted_meanwhile_is_not_recreated_by_a_change(world: World) -> None:
    client = world.client()
    start(world, client)
    response = client.post("/other-tab-signs-out", data={"n": "2"})
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookies(response)[COOKIE_NAME]
    assert sid_of(client) is None


def test_a_session_deleted_meanwhile_is_not_recreated_by_a_touch(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 120
    response = client.post("/other-tab-signs-out")
    assert world.writes() == ["update_item"]
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookies(response)[COOKIE_NAME]


# --------------------------------------------------------------------------- where, and failures


def test_sessionless_paths_never_read_the_session(world: World) -> None:
    client = world.client()
    start(world, client)
    response = client.get("/api/thing")
    assert response.text == "none"
    assert world.fake.calls == []
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")


def test_a_session_that_cannot_be_read_fails_the_request_before_the_view(world: World) -> None:
    client = world.client()
    start(world, client)
    world.fake.down = True
    response = client.post("/set", data={"n": "2"})
    assert (response.status_code, response.text) == (503, "down")
    assert world.fake.calls == ["get_item"], "the view did not run, nothing was written"
    assert "Set-Cookie" not in response.headers


def test_a_failed_save_is_not_tried_again_for_the_error_page(world: World) -> None:
    client = world.client()
    world.fake.down = True
    response = client.post("/sign-in")
    assert (response.status_code, response.text) == (503, "down")
    assert world.fake.calls == ["put_item"]
    assert "Set-Cookie" not in response.headers


def test_kms_down_at_sign_in_is_a_503_and_nothing_is_written(world: World) -> None:
    client = world.client()
    world.kms.down = True
    response = client.post("/sign-in")
    assert (response.status_code, response.text) == (503, "down")
    assert world.fake.calls == [], "never a plaintext write"
    assert world.fake.items == {}
    assert "Set-Cookie" not in response.headers


def test_kms_down_when_a_new_process_reads_the_session_is_a_503_and_keeps_it(
    world: World,
) -> None:
    client = world.client()
    sid = start(world, client)
    other = World(fake=world.fake, kms=world.kms, clock=world.clock)
    replay = other.client()
    replay.set_cookie(COOKIE_NAME, sid)
    world.kms.down = True
    response = replay.get("/read")
    assert (response.status_code, response.text) == (503, "down")
    assert list(world.fake.items) == [SessionStore.key_for(sid)], "not signed out by an outage"
    world.kms.down = False
    assert replay.get("/read").text == "1"

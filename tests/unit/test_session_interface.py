"""Unit tests of the DynamoDB session interface inside a small Flask app: what a request
writes (nothing, unless the session changed or is due a touch), the cookie, rotation,
sign-out, timeouts on a fixed clock, a session deleted meanwhile, DynamoDB down. The
table is a recording fake; no network.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, flash, get_flashed_messages, jsonify, request, session
from flask.testing import FlaskClient
from werkzeug.exceptions import InternalServerError
from werkzeug.test import TestResponse

from app.errors import DependencyUnavailableError
from app.web import session_store
from app.web.session_store import (
    COOKIE_NAME,
    SIGNED_IN,
    ServerSession,
    SessionStore,
    current_session,
)
from tests.unit.session_fakes import Clock, FakeDynamoDB, make_store

SIGNED_IN_VALUE = {
    "user_id": "u-1",
    "username": "alice",
    "email": "alice@example.com",
    "groups": [],
    "access_token": "ACCESS",
    "id_token": "ID",
    "refresh_token": "REFRESH",
    "token_expires_at": 1_800_003_600,
    "method": "password",
}


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store, self.fake = make_store(self.clock)
        self.app = make_app(self.store, self.fake)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def writes(self) -> list[str]:
        return [call for call in self.fake.calls if call != "get_item"]


def this_session() -> ServerSession:
    opened = current_session()
    assert opened is not None
    return opened


def make_app(store: SessionStore, fake: FakeDynamoDB) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 40,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SECURE=False,
    )
    session_store.init_app(app, store, sessionless=("/static/", "/api/"))

    @app.get("/read")
    def read() -> str:
        return str(session.get("n", "none"))

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
        return "ok"

    @app.post("/sign-out")
    def sign_out() -> str:
        this_session().end()
        if request.form.get("then_flash"):
            flash("You are signed out.", "info")
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


def start(world: World, client: FlaskClient, n: str = "1") -> str:
    assert client.post("/set", data={"n": n}).status_code == 200
    sid = sid_of(client)
    assert sid is not None
    world.fake.calls.clear()
    return sid


def set_cookie(response: TestResponse) -> str:
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------- writes


def test_reading_without_a_cookie_asks_dynamodb_nothing_and_sets_no_cookie(world: World) -> None:
    response = world.client().get("/read")
    assert response.text == "none"
    assert world.fake.calls == []
    assert "Set-Cookie" not in response.headers
    assert "Cookie" in response.headers.get("Vary", ""), "the page read the session"


def test_a_request_that_changes_nothing_writes_nothing(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 59
    response = client.get("/read")
    assert response.text == "1"
    assert world.fake.calls == ["get_item"]
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


def test_a_first_change_creates_the_session_with_an_httponly_lax_cookie(world: World) -> None:
    client = world.client()
    response = client.post("/set", data={"n": "1"})
    assert world.fake.calls == ["put_item"]
    cookie = set_cookie(response)
    sid = sid_of(client)
    assert sid is not None and SessionStore.well_formed(sid)
    assert cookie.startswith(f"{COOKIE_NAME}={sid};")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=7200"):
        assert attribute in cookie
    assert "Secure" not in cookie
    assert list(world.fake.items) == [SessionStore.key_for(sid)]
    assert response.headers["Cache-Control"] == "no-store"


def test_over_https_the_cookie_is_secure(world: World) -> None:
    response = world.client().post("/set", data={"n": "1"}, base_url="https://localhost")
    assert "Secure" in set_cookie(response)


def test_a_change_to_a_live_session_rewrites_its_item_under_the_same_id(world: World) -> None:
    client = world.client()
    sid = start(world, client)
    response = client.post("/set", data={"n": "2"})
    assert world.writes() == ["put_item"]
    assert "Set-Cookie" not in response.headers
    assert sid_of(client) == sid
    assert client.get("/read").text == "2"


def test_flashed_messages_are_shown_once(world: World) -> None:
    client = world.client()
    client.post("/flash", data={"text": "saved"})
    assert client.get("/flashes").get_json() == [["info", "saved"]]
    assert client.get("/flashes").get_json() == []


def test_an_emptied_session_is_deleted_and_its_cookie_cleared(world: World) -> None:
    client = world.client()
    client.post("/flash", data={"text": "saved"})
    assert len(world.fake.items) == 1
    response = client.get("/flashes")
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookie(response)
    assert sid_of(client) is None


def test_a_browser_that_never_renders_keeps_only_the_newest_flashes(world: World) -> None:
    client = world.client()
    for number in range(8):
        client.post("/flash", data={"text": f"message {number}"})
    assert [m for _, m in client.get("/flashes").get_json()] == [
        f"message {number}" for number in range(3, 8)
    ]


# --------------------------------------------------------------------------- sign-in, sign-out


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
    assert "Max-Age=86400" in set_cookie(response), "a signed-in cookie lives a day here"
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
    assert f"{COOKIE_NAME}=;" in set_cookie(response)
    assert sid_of(client) is None
    replay = world.client()
    replay.set_cookie(COOKIE_NAME, old)
    assert replay.get("/read").text == "none"


def test_what_is_set_after_end_goes_into_a_new_session(world: World) -> None:
    client = world.client()
    old = start(world, client)
    client.post("/sign-out", data={"then_flash": "1"})
    new = sid_of(client)
    assert new is not None and new != old
    assert list(world.fake.items) == [SessionStore.key_for(new)]
    assert client.get("/flashes").get_json() == [["info", "You are signed out."]]


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
    assert f"{COOKIE_NAME}=;" in set_cookie(response)


def test_touches_keep_an_anonymous_session_only_until_its_lifetime(world: World) -> None:
    client = world.client()
    start(world, client)
    for _ in range(2):
        world.clock.now += 3000
        assert client.get("/read").text == "1"
    world.clock.now += 1200  # 7200 s after it was created
    assert client.get("/read").text == "none"


# --------------------------------------------------------------------------- deleted meanwhile


def test_a_session_deleted_meanwhile_is_not_recreated_by_a_change(world: World) -> None:
    client = world.client()
    start(world, client)
    response = client.post("/other-tab-signs-out", data={"n": "2"})
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookie(response)
    assert sid_of(client) is None


def test_a_session_deleted_meanwhile_is_not_recreated_by_a_touch(world: World) -> None:
    client = world.client()
    start(world, client)
    world.clock.now += 120
    response = client.post("/other-tab-signs-out")
    assert world.writes() == ["update_item"]
    assert world.fake.items == {}
    assert f"{COOKIE_NAME}=;" in set_cookie(response)


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
    response = client.post("/set", data={"n": "1"})
    assert (response.status_code, response.text) == (503, "down")
    assert world.fake.calls == ["put_item"]
    assert "Set-Cookie" not in response.headers

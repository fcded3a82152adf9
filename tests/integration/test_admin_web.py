"""The admin pages of the running local stack (``vidgate dev`` as a child process).

carol (group ``admin``) and bob (a free viewer) sign in through the real
sign-in form over HTTP; playback grants come from the stack's own ``/api``
(a Cognito access token from InitiateAuth as the bearer), and granted URLs
are fetched from the local CloudFront edge. Tests read and set state directly
with the core stores, built over the stack's ``dev.env``. The stack is shared
with other test modules, so every test puts back what it changed (bob ends
free, demo videos unchanged).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
import requests
from flask import Flask

from app.config import load_settings
from app.entitlements import EntitlementStore
from app.http.admin import AdminApi
from app.http.viewer import NEEDS as PLAYBACK_NEEDS
from app.ops.admin_cli import OperatorSession, read_env_file
from app.services import Services
from app.web.admin_views import blueprint as admin_blueprint
from tests.stackproc import RunningStack

pytestmark = pytest.mark.integration

DEMO_PREMIUM = "premium-aurora"
DEMO_FREE = "free-sampler"


# --------------------------------------------------------------------------- helpers


@dataclass
class Local:
    """The running stack and in-process clients built from its ``dev.env``."""

    stack: RunningStack
    env: dict[str, str]
    services: Services

    @property
    def web(self) -> str:
        return self.stack.web_url

    def user_id(self, username: str) -> str:
        return self.services.users.find(username).user_id

    def access_token(self, username: str) -> str:
        result = self.services.cognito_idp.initiate_auth(
            ClientId=self.stack.document["cognito"]["client_id"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={
                "USERNAME": username,
                "PASSWORD": self.stack.user(username)["password"],
            },
        )
        return str(result["AuthenticationResult"]["AccessToken"])

    def grant(self, username: str, video_id: str) -> dict[str, Any]:
        """POST /api/videos/{id}/playback as ``username`` (bearer access token)."""
        answer = requests.post(
            f"{self.web}/api/videos/{video_id}/playback",
            headers={"Authorization": f"Bearer {self.access_token(username)}"},
            timeout=10,
        )
        return {"status": answer.status_code, **answer.json()}

    def revoke_quietly(self, username: str) -> None:
        """Put ``username`` back to free (test clean-up)."""
        entitlements: EntitlementStore = self.services.entitlements
        state = entitlements.get(self.user_id(username))
        if state.premium:
            entitlements.set_premium(state.user_id, False, None, actor="test-cleanup")


def local_services(stack: RunningStack) -> tuple[dict[str, str], Services]:
    env = read_env_file(stack.state_dir / "dev.env")
    settings = load_settings(env, PLAYBACK_NEEDS)
    return env, Services(settings, session=OperatorSession(env))


def open_local(stack: RunningStack) -> Local:
    env, services = local_services(stack)
    return Local(stack, env, services)


@pytest.fixture(scope="module")
def local(dev_stack: RunningStack) -> Iterator[Local]:
    handle = open_local(dev_stack)
    yield handle
    handle.revoke_quietly("bob")


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(base: str, username: str, password: str) -> requests.Session:
    browser = requests.Session()
    token = csrf_from(browser.get(f"{base}/auth/sign-in", timeout=10).text)
    answer = browser.post(
        f"{base}/auth/sign-in",
        data={"csrf_token": token, "identifier": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    return browser


def browser_for(local: Local, username: str) -> requests.Session:
    return sign_in(local.web, username, local.stack.user(username)["password"])


def form_fields(html: str, form_id: str) -> dict[str, str]:
    """The hidden and pre-filled inputs of the form with id ``form_id``."""
    found = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S)
    assert found, f"no form {form_id}"
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', found[0])
    }


def row_of(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr[^>]*{attribute}="{re.escape(value)}".*?</tr>', html, re.S)
    assert found, f"no row with {attribute}={value}"
    return found[0]


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")


def tomorrow_words() -> str:
    """Tomorrow as the admin pages write a day: ``28 Nov 2026``."""
    day = datetime.now(UTC) + timedelta(days=1)
    return f"{day.day} {day:%b %Y}"


# --------------------------------------------------------------------------- who may enter


def _routes_of_the_blueprint() -> set[tuple[str, str]]:
    app = Flask("routes-only")
    app.register_blueprint(admin_blueprint)
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            for method in rule.methods or ():
                if method not in {"HEAD", "OPTIONS"}:
                    found.add((method, rule.rule))
    return found


# (method, path, form or body) — {bob} is bob's user id.
WEB_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/admin/", {}),
    ("GET", "/admin/users", {}),
    ("GET", "/admin/users/{bob}", {}),
    ("POST", "/admin/users/{bob}/grant", {"version": "{version}", "until": ""}),
    ("GET", "/admin/users/{bob}/revoke", {}),
    ("POST", "/admin/users/{bob}/revoke", {"version": "{version}", "confirm": "yes"}),
    ("POST", "/admin/users/{bob}/streams/" + "0" * 32 + "/end", {}),
    ("GET", "/admin/audit", {}),
    ("GET", "/admin/users/{bob}/audit", {}),
    ("GET", "/admin/videos", {}),
    ("GET", f"/admin/videos/{DEMO_FREE}", {}),
    ("POST", f"/admin/videos/{DEMO_FREE}", {"title": "pwned", "description": "", "tier": "free"}),
    ("GET", f"/admin/videos/{DEMO_FREE}/unpublish", {}),
    ("POST", f"/admin/videos/{DEMO_FREE}/unpublish", {"confirm": "yes"}),
    ("POST", f"/admin/videos/{DEMO_FREE}/publish", {}),
    ("GET", f"/admin/videos/{DEMO_FREE}/state", {}),
    # The browser-upload pages live under the admin blueprint and are refused the same way.
    ("GET", "/admin/videos/new", {}),
    ("POST", "/admin/uploads", {"title": "pwned", "tier": "free", "filename": "x.mp4"}),
    ("GET", f"/admin/uploads/{DEMO_FREE}/parts", {}),
    ("POST", f"/admin/uploads/{DEMO_FREE}/parts", {}),
    ("POST", f"/admin/uploads/{DEMO_FREE}/complete", {}),
    ("POST", f"/admin/uploads/{DEMO_FREE}/abort", {}),
    ("POST", f"/admin/videos/{DEMO_FREE}/captions", {"language": "en"}),
    ("POST", f"/admin/videos/{DEMO_FREE}/captions/en/delete", {}),
    ("POST", f"/admin/videos/{DEMO_FREE}/poster", {}),
]
API_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/admin/users", {}),
    ("PUT", "/api/admin/users/{bob}/premium", {"premium": True, "until": None}),
    ("GET", "/api/admin/audit", {}),
    ("GET", "/api/admin/users/{bob}/streams", {}),
    ("DELETE", "/api/admin/users/{bob}/streams/" + "0" * 32, {}),
]


def test_the_refusal_tables_cover_every_admin_route() -> None:
    def rule_of(path: str) -> str:
        path = path.replace("{bob}", "<user_id>").replace(DEMO_FREE, "<video_id>")
        path = path.replace("/captions/en/", "/captions/<language>/")
        return path.replace("0" * 32, "<session_id>")

    assert {(m, rule_of(p)) for m, p, _ in WEB_ROUTES} == _routes_of_the_blueprint()
    # The API under /api/admin is the Lambda handler's own route table.
    api_routes = {(route.method, route.pattern) for route in AdminApi(None).router.routes}  # type: ignore[arg-type]
    assert {
        (m, p.replace("{bob}", "{user_id}").replace("0" * 32, "{session_id}"))
        for m, p, _ in API_ROUTES
    } == api_routes


def _state(local: Local) -> tuple[Any, Any]:
    bob = local.services.entitlements.get(local.user_id("bob"))
    video = local.services.catalog.get_any(DEMO_FREE)
    return bob, video


@pytest.mark.parametrize(("method", "path", "form"), WEB_ROUTES)
def test_bob_who_is_not_an_admin_gets_403_on_every_admin_page_and_form(
    local: Local, method: str, path: str, form: dict[str, str]
) -> None:
    bob_id = local.user_id("bob")
    before = _state(local)
    browser = browser_for(local, "bob")
    token = csrf_from(browser.get(f"{local.web}/account", timeout=10).text)
    data = {k: v.replace("{version}", str(before[0].version)) for k, v in form.items()}

    answer = browser.request(
        method,
        local.web + path.replace("{bob}", bob_id),
        data={"csrf_token": token, **data} if method == "POST" else None,
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 403, answer.text[:300]
    assert 'data-code="forbidden"' in answer.text
    assert _state(local) == before


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES)
def test_bob_is_refused_on_every_admin_api_route_of_the_web_mount(
    local: Local, method: str, path: str, body: dict[str, Any]
) -> None:
    bob_id = local.user_id("bob")
    before = _state(local)

    answer = requests.request(
        method,
        local.web + path.replace("{bob}", bob_id),
        json=body or None,
        headers={
            "Authorization": f"Bearer {local.access_token('bob')}",
            "If-Match": f'"{before[0].version}"',
        },
        timeout=10,
    )

    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"
    assert _state(local) == before


@pytest.mark.parametrize(("method", "path", "form"), WEB_ROUTES)
def test_a_visitor_who_is_not_signed_in_gets_nothing_from_the_admin_pages(
    local: Local, method: str, path: str, form: dict[str, str]
) -> None:
    before = _state(local)

    answer = requests.request(
        method,
        local.web + path.replace("{bob}", local.user_id("bob")),
        data=form or None,
        allow_redirects=False,
        timeout=10,
    )

    if method == "GET":
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/auth/sign-in")
    else:
        assert answer.status_code in (401, 403)
    assert _state(local) == before


def test_a_form_without_its_csrf_token_is_refused(local: Local) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    version = local.services.entitlements.get(bob_id).version

    answer = carol.post(
        f"{local.web}/admin/users/{bob_id}/grant", data={"version": str(version)}, timeout=10
    )

    assert answer.status_code == 403
    assert 'data-code="csrf"' in answer.text
    assert local.services.entitlements.get(bob_id).premium is False


# --------------------------------------------------------------------------- users


def test_the_users_page_pages_with_a_cursor_and_searches_by_e_mail_prefix(local: Local) -> None:
    carol = browser_for(local, "carol")

    first = carol.get(f"{local.web}/admin/users?limit=1", timeout=10).text
    next_link = re.search(r'data-next-page href="([^"]+)"', first)
    assert next_link
    second = carol.get(local.web + unescape(next_link.group(1)), timeout=10).text
    found = carol.get(f"{local.web}/admin/users?email_prefix=CAR", timeout=10).text

    users_first = re.findall(r'<tr data-user="([^"]+)"', first)
    users_second = re.findall(r'<tr data-user="([^"]+)"', second)
    assert len(users_first) == len(users_second) == 1
    assert users_first != users_second
    assert re.findall(r'<tr data-user="([^"]+)"', found) == ["carol"]
    alice = row_of(carol.get(f"{local.web}/admin/users", timeout=10).text, "data-user", "alice")
    assert 'data-premium="active"' in alice
    assert "demo setup" in alice  # the last change and who made it, in words
    assert "bootstrap" not in alice


def test_a_stale_form_shows_the_conflict_and_the_current_state_and_never_overwrites(
    local: Local,
) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    page = carol.get(f"{local.web}/admin/users/{bob_id}", timeout=10).text
    fields = form_fields(page, "grant-form")
    # Meanwhile another admin makes bob premium until next week.
    other = local.services.entitlements.set_premium(
        bob_id, True, datetime.now(UTC) + timedelta(days=7), actor="dave-the-other-admin"
    )
    try:
        answer = carol.post(
            f"{local.web}/admin/users/{bob_id}/grant",
            data={**fields, "until": tomorrow()},
            timeout=10,
        )

        assert answer.status_code == 409
        assert 'id="conflict"' in answer.text
        assert "dave-the-other-admin" in answer.text
        assert f'data-version="{other.version}"' in answer.text
        assert form_fields(answer.text, "grant-form")["version"] == str(other.version)
        assert local.services.entitlements.get(bob_id) == other
    finally:
        local.revoke_quietly("bob")


def test_revoking_takes_a_confirmation_step(local: Local) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    granted = local.services.entitlements.set_premium(bob_id, True, None, actor="test")
    try:
        users = carol.get(f"{local.web}/admin/users?email_prefix=bob", timeout=10).text
        link = re.search(r'href="([^"]+/revoke[^"]*)"', row_of(users, "data-user", "bob"))
        assert link
        confirm_page = carol.get(local.web + unescape(link.group(1)), timeout=10).text
        fields = form_fields(confirm_page, "confirm-revoke")
        assert fields["version"] == str(granted.version)

        unconfirmed = carol.post(
            f"{local.web}/admin/users/{bob_id}/revoke",
            data={k: v for k, v in fields.items() if k != "confirm"},
            timeout=10,
        )
        assert unconfirmed.status_code == 200
        assert 'id="confirm-revoke"' in unconfirmed.text
        assert local.services.entitlements.get(bob_id).premium is True

        done = carol.post(
            f"{local.web}/admin/users/{bob_id}/revoke",
            data=fields,
            allow_redirects=False,
            timeout=10,
        )
        assert done.status_code == 302
        assert done.headers["Location"].startswith("/admin/users")
        assert local.services.entitlements.get(bob_id).premium is False
    finally:
        local.revoke_quietly("bob")


def test_a_grant_with_a_date_in_the_past_is_refused_on_the_form(local: Local) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    fields = form_fields(
        carol.get(f"{local.web}/admin/users/{bob_id}", timeout=10).text, "grant-form"
    )

    answer = carol.post(
        f"{local.web}/admin/users/{bob_id}/grant",
        data={**fields, "until": "2001-01-01"},
        timeout=10,
    )

    assert answer.status_code == 400
    assert "The end date has already passed" in answer.text  # a sentence, not API wording
    assert local.services.entitlements.get(bob_id).premium is False


@pytest.mark.parametrize("until", ["9999-12-31", "0001-01-01", "9999-12-31T23:00:00-05:00"])
def test_an_end_date_at_an_edge_of_the_calendar_is_refused_on_the_form(
    local: Local, until: str
) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    fields = form_fields(
        carol.get(f"{local.web}/admin/users/{bob_id}", timeout=10).text, "grant-form"
    )

    answer = carol.post(
        f"{local.web}/admin/users/{bob_id}/grant", data={**fields, "until": until}, timeout=10
    )

    assert answer.status_code == 400
    assert "Pick an end date between 1970 and 9998." in unescape(answer.text)
    assert local.services.entitlements.get(bob_id).premium is False


def test_a_deeply_nested_cursor_on_an_admin_page_is_a_400_page(local: Local) -> None:
    carol = browser_for(local, "carol")
    cursor = base64.urlsafe_b64encode(b"[" * 3072).decode().rstrip("=")

    for page in ("/admin/users", f"/admin/users/{local.user_id('bob')}/audit", "/admin/audit"):
        answer = carol.get(f"{local.web}{page}", params={"cursor": cursor}, timeout=10)
        assert answer.status_code == 400, page
        assert answer.headers["content-type"].startswith("text/html")


# --------------------------------------------------------------------------- the done-when story


def test_carol_grants_bob_until_tomorrow_then_revokes_and_the_audit_shows_both(
    local: Local,
) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    assert local.grant("bob", DEMO_PREMIUM)["status"] == 403

    try:
        # carol finds bob on the users page and makes him premium until tomorrow.
        users = carol.get(f"{local.web}/admin/users?email_prefix=bob", timeout=10).text
        row = row_of(users, "data-user", "bob")
        version = re.search(r'name="version" value="(\d+)"', row)
        assert version
        granted = carol.post(
            f"{local.web}/admin/users/{bob_id}/grant",
            data={
                "csrf_token": csrf_from(users),
                "version": version.group(1),
                "until": tomorrow(),
                "next": "/admin/users?email_prefix=bob",
            },
            timeout=10,
        )
        assert granted.status_code == 200
        assert f"bob is now premium through {tomorrow_words()} UTC." in granted.text
        assert 'data-premium="active"' in row_of(granted.text, "data-user", "bob")

        # bob's premium video now plays: a grant, and the edge serves its playlist.
        grant = local.grant("bob", DEMO_PREMIUM)
        assert grant["status"] == 200, grant
        media = requests.get(grant["url"], cookies=grant["cookies"], timeout=10)
        assert media.status_code == 200
        assert media.content.startswith(b"#EXTM3U")

        # carol revokes, through the confirmation step.
        page = carol.get(f"{local.web}/admin/users/{bob_id}", timeout=10).text
        link = re.search(r'id="revoke-link" href="([^"]+)"', page)
        assert link
        fields = form_fields(
            carol.get(local.web + unescape(link.group(1)), timeout=10).text, "confirm-revoke"
        )
        revoked = carol.post(f"{local.web}/admin/users/{bob_id}/revoke", data=fields, timeout=10)
        assert revoked.status_code == 200
        assert "bob is no longer premium" in revoked.text

        # bob's next renewal fails.
        refused = local.grant("bob", DEMO_PREMIUM)
        assert (refused["status"], refused["error"]) == (403, "premium_required")

        # The audit, overall and bob's own, shows both changes by carol, newest first.
        for page_url in (f"/admin/users/{bob_id}/audit", "/admin/audit"):
            audit = carol.get(local.web + page_url, timeout=10).text
            rows = re.findall(
                r'<tr data-user="bob" data-action="(\w+)" data-actor="([^"]+)"', audit
            )
            assert rows[:2] == [("revoke", "carol"), ("grant", "carol")]
    finally:
        local.revoke_quietly("bob")


# --------------------------------------------------------------------------- audit and videos


def test_the_audit_pages_page_with_a_cursor(local: Local) -> None:
    carol = browser_for(local, "carol")
    bob_id = local.user_id("bob")
    for premium in (True, False, True, False):
        local.services.entitlements.set_premium(bob_id, premium, None, actor="test-pager")

    first = carol.get(f"{local.web}/admin/users/{bob_id}/audit?limit=2", timeout=10).text
    next_link = re.search(r'data-next-page href="([^"]+)"', first)
    assert next_link
    second = carol.get(local.web + unescape(next_link.group(1)), timeout=10).text

    assert re.findall(r'data-action="(\w+)"', first) == ["revoke", "grant"]
    assert re.findall(r'data-action="(\w+)"', second) == ["revoke", "grant"]
    assert "test-pager" in second


@pytest.fixture
def demo_free_restored(local: Local) -> Iterator[None]:
    """Put the demo video back through the web app, so its own catalog cache forgets the edits."""
    before = local.services.catalog.get_any(DEMO_FREE)
    yield
    carol = browser_for(local, "carol")
    token = csrf_from(carol.get(f"{local.web}/admin/videos", timeout=10).text)
    original = {"title": before.title, "description": before.description, "tier": before.tier}
    carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}", data={"csrf_token": token, **original}, timeout=10
    )
    if before.published:
        carol.post(
            f"{local.web}/admin/videos/{DEMO_FREE}/publish", data={"csrf_token": token}, timeout=10
        )
    after = local.services.catalog.get_any(DEMO_FREE)
    assert (after.title, after.description, after.tier, after.published) == (
        before.title,
        before.description,
        before.tier,
        before.published,
    )


@pytest.mark.usefixtures("demo_free_restored")
def test_an_admin_edits_unpublishes_and_publishes_a_video(local: Local) -> None:
    carol = browser_for(local, "carol")
    edit_page = carol.get(f"{local.web}/admin/videos/{DEMO_FREE}", timeout=10).text
    fields = form_fields(edit_page, "video-form")

    saved = carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}",
        data={
            **fields,
            "title": "Free sampler — edited",
            "description": "New words",
            "tier": "premium",
        },
        timeout=10,
    )
    assert saved.status_code == 200
    video = local.services.catalog.get_any(DEMO_FREE)
    assert (video.title, video.description, video.tier) == (
        "Free sampler — edited",
        "New words",
        "premium",
    )
    assert local.grant("bob", DEMO_FREE)["status"] == 403  # now premium-only

    listing = carol.get(f"{local.web}/admin/videos", timeout=10).text
    # One click on Unpublish only asks: the video stays published until confirmed.
    asked = carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}/unpublish",
        data={"csrf_token": csrf_from(listing)},
        timeout=10,
    )
    assert asked.status_code == 200
    assert 'id="confirm-form"' in asked.text
    assert local.services.catalog.get_any(DEMO_FREE).published
    unpublished = carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}/unpublish",
        data=form_fields(asked.text, "confirm-form"),
        timeout=10,
    )
    assert unpublished.status_code == 200
    assert 'data-published="no"' in row_of(unpublished.text, "data-video", DEMO_FREE)
    public, _ = local.services.catalog.list(100, None)
    assert DEMO_FREE not in {v.video_id for v in public}
    assert local.grant("alice", DEMO_FREE)["status"] == 404

    republished = carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}/publish",
        data={"csrf_token": csrf_from(unpublished.text)},
        timeout=10,
    )
    assert 'data-published="yes"' in row_of(republished.text, "data-video", DEMO_FREE)


def test_a_video_edit_with_an_empty_title_is_refused_on_the_form(local: Local) -> None:
    carol = browser_for(local, "carol")
    before = local.services.catalog.get_any(DEMO_FREE)
    fields = form_fields(
        carol.get(f"{local.web}/admin/videos/{DEMO_FREE}", timeout=10).text, "video-form"
    )

    answer = carol.post(
        f"{local.web}/admin/videos/{DEMO_FREE}",
        data={**fields, "title": "   ", "tier": "free"},
        timeout=10,
    )

    assert answer.status_code == 400
    assert local.services.catalog.get_any(DEMO_FREE) == before


def test_an_admin_sees_a_users_stream_and_ends_it_with_an_audit_record(local: Local) -> None:
    opened = local.grant("bob", DEMO_FREE)
    assert opened["status"] == 200, opened
    session_id = opened["session_id"]
    bob_id = local.user_id("bob")
    carol = browser_for(local, "carol")
    page = carol.get(f"{local.web}/admin/users/{bob_id}", timeout=10).text
    row = row_of(page, "data-session-id", session_id)
    assert "python-requests" in row
    ended = carol.post(
        f"{local.web}/admin/users/{bob_id}/streams/{session_id}/end",
        data={"csrf_token": csrf_from(page)},
        timeout=10,
    )
    assert ended.status_code == 200 and "Ended bob" in ended.text
    assert session_id not in [s.session_id for s in local.services.streams.active(bob_id)]
    records, _ = local.services.entitlements.list_audit(bob_id, 5, None)
    assert (records[0].action, records[0].actor) == ("end_stream", "carol")

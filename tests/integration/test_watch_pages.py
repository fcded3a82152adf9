"""The viewer's pages against ``vidgate dev``: catalog, watch, upsell and the grant route.

Each viewer signs in through the web app's own sign-in form (CSRF token and
all) with a ``requests.Session``, as a browser would. The grant route is
exercised the way ``static/player.js`` calls it — ``POST`` with the
``X-CSRF-Token`` header read from the page's ``<meta name="csrf-token">`` —
and the URL it returns is fetched from the local CloudFront edge with a
``Range`` header. The browser-driven player scenarios live in ``tests/e2e``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import boto3
import pytest
import requests

from app.dynamo import MAX_PAGE_SIZE, format_time
from app.users import UserDirectory
from app.web.envelope import EnvelopeCipher
from app.web.session_store import COOKIE_NAME, SIGNED_IN, SessionStore, token_context
from tests.stackproc import RunningStack

pytestmark = pytest.mark.integration

DEMO_TIERS = {"free-sampler": "free", "premium-aurora": "premium", "premium-mandelbrot": "premium"}
GRANT_KEYS = {"url", "expires_at", "content_type", "format", "session_id", "heartbeat_seconds"}
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
TRACEBACK_MARKERS = ("Traceback", 'File "', "BadRequestError", "werkzeug", "botocore")
TIMEOUT = 15


# --------------------------------------------------------------------------- page reading


class _Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def element_by_id(html: str, element_id: str) -> dict[str, str] | None:
    return next((attrs for _, attrs in elements(html) if attrs.get("id") == element_id), None)


def video_cards(html: str) -> list[dict[str, str]]:
    return [
        attrs
        for tag, attrs in elements(html)
        if tag == "li" and "video-card" in attrs.get("class", "").split()
    ]


def meta_csrf(html: str) -> str:
    found = next(
        (a["content"] for t, a in elements(html) if t == "meta" and a.get("name") == "csrf-token"),
        None,
    )
    assert found, "the page has no <meta name=csrf-token>"
    return found


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF form field"
    return found.group(1)


# --------------------------------------------------------------------------- viewers


def anonymous() -> requests.Session:
    return requests.Session()


def sign_in(stack: RunningStack, username: str) -> requests.Session:
    """Sign in through the web app's sign-in form, exactly as a person would."""
    browser = requests.Session()
    form = browser.get(f"{stack.web_url}/auth/sign-in", timeout=TIMEOUT)
    assert form.status_code == 200
    done = browser.post(
        f"{stack.web_url}/auth/sign-in",
        data={
            "csrf_token": form_csrf(form.text),
            "identifier": username,
            "password": stack.user(username)["password"],
            "next": "/",
        },
        timeout=TIMEOUT,
    )
    assert done.status_code == 200, done.text[:500]
    assert f"Account ({username})" in done.text, "the sign-in did not stick"
    return browser


@pytest.fixture(scope="module")
def alice(dev_stack: RunningStack) -> requests.Session:
    return sign_in(dev_stack, "alice")


@pytest.fixture(scope="module")
def bob(dev_stack: RunningStack) -> requests.Session:
    return sign_in(dev_stack, "bob")


def watch(stack: RunningStack, viewer: requests.Session, video_id: str) -> requests.Response:
    return viewer.get(f"{stack.web_url}/watch/{video_id}", timeout=TIMEOUT, allow_redirects=False)


def ask_grant(
    stack: RunningStack,
    viewer: requests.Session,
    video_id: str,
    *,
    token: str | None,
    origin: str | None = None,
    body: dict[str, str] | None = None,
) -> requests.Response:
    """POST the grant route the way player.js does (JSON, same origin, CSRF header)."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["X-CSRF-Token"] = token
    if origin is not None:
        headers["Origin"] = origin
    return viewer.post(
        f"{stack.web_url}/watch/{video_id}/grant",
        json=body or {},
        headers=headers,
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def grant_for(
    stack: RunningStack, viewer: requests.Session, video_id: str, fmt: str | None = None
) -> requests.Response:
    page = watch(stack, viewer, video_id)
    assert page.status_code == 200
    body = {"format": fmt} if fmt else None
    return ask_grant(stack, viewer, video_id, token=meta_csrf(page.text), body=body)


# --------------------------------------------------------------------------- catalog


def test_the_catalog_lists_the_demo_videos_with_edge_posters_and_tier_badges(
    dev_stack: RunningStack,
) -> None:
    page = anonymous().get(f"{dev_stack.web_url}/", timeout=TIMEOUT)
    assert page.status_code == 200
    cards = {card["data-video-id"]: card for card in video_cards(page.text)}
    assert DEMO_TIERS.keys() <= cards.keys()
    for video_id, tier in DEMO_TIERS.items():
        assert cards[video_id]["data-tier"] == tier
        assert f'href="/watch/{video_id}"' in page.text
    badges = [a["data-badge"] for t, a in elements(page.text) if t == "span" and "data-badge" in a]
    assert badges.count("premium") >= 2 and badges.count("free") >= 1
    posters = [a["src"] for t, a in elements(page.text) if t == "img" and "poster" in a["class"]]
    assert len(posters) >= len(DEMO_TIERS)
    for src in posters:
        assert src.startswith(f"{dev_stack.edge_url}/posters/"), src
    # posters/ is the edge's public path: no signature needed.
    poster = requests.get(posters[0], timeout=TIMEOUT)
    assert poster.status_code == 200
    assert poster.content[:3] == b"\xff\xd8\xff", "a JPEG"


def test_the_catalog_pages_through_every_video_with_its_cursor(dev_stack: RunningStack) -> None:
    viewer = anonymous()
    url: str | None = f"{dev_stack.web_url}/?limit=1"
    seen: list[str] = []
    pages = 0
    while url is not None and pages < 20:
        page = viewer.get(url, timeout=TIMEOUT)
        assert page.status_code == 200
        cards = video_cards(page.text)
        assert len(cards) <= 1
        seen += [card["data-video-id"] for card in cards]
        pages += 1
        if pages > 1:
            first = element_by_id(page.text, "catalog-first")
            assert first is not None and first["href"] == "/?limit=1"
        following = element_by_id(page.text, "catalog-next")
        if following is None:
            url = None
        else:
            query = parse_qs(urlsplit(following["href"]).query)
            assert query["limit"] == ["1"] and query["cursor"] == [following["data-cursor"]]
            url = urljoin(dev_stack.web_url, following["href"])
    assert url is None, "the pages never ended"
    assert len(seen) == len(set(seen)), "a video appeared on two pages"
    assert DEMO_TIERS.keys() <= set(seen)
    everything = video_cards(viewer.get(f"{dev_stack.web_url}/", timeout=TIMEOUT).text)
    assert [card["data-video-id"] for card in everything] == seen, "same order, newest first"


def _forged_cursor() -> str:
    """A well-formed cursor for another listing (not the published catalog)."""
    key = {"video_id": {"S": "x"}, "catalog": {"S": "drafts"}, "sort_key": {"S": "y"}}
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "cursor=not-a-cursor",
        "cursor=%25%25%25",
        f"cursor={'A' * 5000}",
        "cursor=e30",  # "{}"
        f"cursor={_forged_cursor()}",
        "limit=0",
        "limit=-3",
        "limit=abc",
        f"limit={MAX_PAGE_SIZE + 1}",
        "limit=100000",
    ],
)
def test_a_malformed_page_link_gives_a_friendly_400_page(
    dev_stack: RunningStack, query: str
) -> None:
    page = anonymous().get(f"{dev_stack.web_url}/?{query}", timeout=TIMEOUT)
    assert page.status_code == 400
    assert "text/html" in page.headers["Content-Type"]
    assert "That page link is not valid" in page.text
    assert 'href="/"' in page.text, "a way back to the first page"
    assert not any(marker in page.text for marker in TRACEBACK_MARKERS)


def test_the_catalog_takes_the_largest_page_size_the_api_takes(dev_stack: RunningStack) -> None:
    page = anonymous().get(f"{dev_stack.web_url}/?limit={MAX_PAGE_SIZE}", timeout=TIMEOUT)

    assert page.status_code == 200
    assert DEMO_TIERS.keys() <= {card["data-video-id"] for card in video_cards(page.text)}
    assert element_by_id(page.text, "catalog-next") is None


# --------------------------------------------------------------------------- watch and upsell


def test_an_anonymous_visitor_gets_the_title_page_with_sign_in_and_back(
    dev_stack: RunningStack,
) -> None:
    for video_id, tier in (("free-sampler", "free"), ("premium-aurora", "premium")):
        page = watch(dev_stack, anonymous(), video_id)
        assert page.status_code == 200
        title = element_by_id(page.text, "title-page")
        assert title is not None and (title["data-video-id"], title["data-tier"]) == (
            video_id,
            tier,
        )
        assert element_by_id(page.text, "player") is None  # no player, no grant
        link = element_by_id(page.text, "title-sign-in")
        assert link is not None
        target = urlsplit(unescape(link["href"]))
        assert target.path == "/auth/sign-in"
        assert parse_qs(target.query)["next"] == [f"/watch/{video_id}"]
        assert ('data-badge="locked"' in page.text) is (tier == "premium")


def test_bob_gets_the_upsell_page_for_a_premium_video_and_no_player(
    dev_stack: RunningStack, bob: requests.Session
) -> None:
    for video_id in ("premium-aurora", "premium-mandelbrot"):
        page = watch(dev_stack, bob, video_id)
        assert page.status_code == 200
        upsell = element_by_id(page.text, "upsell")
        assert upsell is not None and upsell["data-video-id"] == video_id
        assert "This video is for premium members" in page.text
        assert element_by_id(page.text, "player") is None
        assert "<video" not in page.text and "player.js" not in page.text
        assert "data-grant-url" not in page.text and "Signature=" not in page.text


def _assert_player_page(page: requests.Response, video_id: str) -> None:
    assert page.status_code == 200
    player = element_by_id(page.text, "player")
    assert player is not None, "no player on the page"
    assert player["data-video-id"] == video_id
    assert player["data-grant-url"] == f"/watch/{video_id}/grant"
    assert player["data-state"] == "loading"
    assert element_by_id(page.text, "player-video") is not None
    assert element_by_id(page.text, "player-play") is not None
    assert element_by_id(page.text, "player-status") is not None
    assert element_by_id(page.text, "upsell") is None
    scripts = [a for t, a in elements(page.text) if t == "script"]
    assert scripts and all(a.get("src") for a in scripts), "no inline script (CSP)"
    assert any(a["src"].endswith("/static/player.js") for a in scripts)
    assert "Signature=" not in page.text, "the page itself carries no signed URL"
    assert not JWT.search(page.text), "no token in the page"
    meta_csrf(page.text)


def test_bob_gets_the_player_for_the_free_video(
    dev_stack: RunningStack, bob: requests.Session
) -> None:
    _assert_player_page(watch(dev_stack, bob, "free-sampler"), "free-sampler")


def test_alice_gets_the_player_for_both_premium_videos(
    dev_stack: RunningStack, alice: requests.Session
) -> None:
    for video_id in ("premium-aurora", "premium-mandelbrot"):
        _assert_player_page(watch(dev_stack, alice, video_id), video_id)


def test_an_unknown_video_is_a_404_page(dev_stack: RunningStack, alice: requests.Session) -> None:
    page = watch(dev_stack, alice, "no-such-video")
    assert page.status_code == 404
    assert "We could not find that page." in page.text


def test_the_player_page_runs_under_the_strict_csp(
    dev_stack: RunningStack, alice: requests.Session
) -> None:
    page = watch(dev_stack, alice, "premium-aurora")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    media = next(d for d in csp.split(";") if d.strip().startswith("media-src"))
    assert dev_stack.edge_url in media
    assert "style=" not in page.text
    for asset in ("player.js", "player.css"):
        served = alice.get(f"{dev_stack.web_url}/static/{asset}", timeout=TIMEOUT)
        assert served.status_code == 200 and len(served.content) > 100


# --------------------------------------------------------------------------- the grant route


def test_alice_gets_a_grant_whose_url_the_edge_serves_in_ranges(
    dev_stack: RunningStack, alice: requests.Session
) -> None:
    for video_id in ("premium-aurora", "premium-mandelbrot"):
        answer = grant_for(dev_stack, alice, video_id, "mp4")  # the progressive fallback
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("application/json")
        body = answer.json()
        assert set(body) == GRANT_KEYS
        assert body["url"].startswith(f"{dev_stack.edge_url}/videos/{video_id}/")
        assert "Signature=" in body["url"] and "Key-Pair-Id=" in body["url"]
        assert body["content_type"] == "video/mp4"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
        first = requests.get(body["url"], headers={"Range": "bytes=0-1023"}, timeout=TIMEOUT)
        assert first.status_code == 206
        assert first.headers["Content-Range"].startswith("bytes 0-1023/")
        assert first.content[4:8] == b"ftyp", "an MP4 file"
        size = int(first.headers["Content-Range"].rsplit("/", 1)[1])
        tail = requests.get(body["url"], headers={"Range": "bytes=-100"}, timeout=TIMEOUT)
        assert tail.status_code == 206
        assert tail.headers["Content-Range"] == f"bytes {size - 100}-{size - 1}/{size}"


def test_bob_gets_a_grant_for_the_free_video(
    dev_stack: RunningStack, bob: requests.Session
) -> None:
    answer = grant_for(dev_stack, bob, "free-sampler")
    assert answer.status_code == 200
    url = answer.json()["url"]
    # The HLS playlist opens with the cookies the grant set in bob's browser, and only so.
    assert bob.get(url, headers={"Range": "bytes=0-15"}, timeout=TIMEOUT).status_code == 206
    assert requests.get(url, timeout=TIMEOUT).status_code == 403


def test_bob_is_refused_a_premium_grant_with_premium_required(
    dev_stack: RunningStack, bob: requests.Session
) -> None:
    token = meta_csrf(watch(dev_stack, bob, "free-sampler").text)
    for video_id in ("premium-aurora", "premium-mandelbrot"):
        answer = ask_grant(dev_stack, bob, video_id, token=token)
        assert answer.status_code == 403
        assert answer.json()["error"] == "premium_required"
        assert "url" not in answer.json() and "Signature=" not in answer.text


def test_a_grant_without_the_csrf_header_is_refused(
    dev_stack: RunningStack, alice: requests.Session
) -> None:
    for token in (None, "", "forged-token"):
        answer = ask_grant(dev_stack, alice, "premium-aurora", token=token)
        assert answer.status_code == 403
        assert answer.json()["error"] == "csrf"
        assert "Signature=" not in answer.text


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_a_grant_from_a_foreign_origin_is_refused(
    dev_stack: RunningStack, alice: requests.Session, origin: str
) -> None:
    token = meta_csrf(watch(dev_stack, alice, "free-sampler").text)
    answer = ask_grant(dev_stack, alice, "free-sampler", token=token, origin=origin)
    assert answer.status_code == 403
    assert answer.json()["error"] == "csrf"
    same = ask_grant(dev_stack, alice, "free-sampler", token=token, origin=dev_stack.web_url)
    assert same.status_code == 200, "the same origin, with the same token, is fine"


def test_a_grant_for_an_anonymous_session_is_401(dev_stack: RunningStack) -> None:
    visitor = anonymous()
    token = form_csrf(visitor.get(f"{dev_stack.web_url}/auth/sign-in", timeout=TIMEOUT).text)
    answer = ask_grant(dev_stack, visitor, "free-sampler", token=token)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"


def test_a_grant_for_an_unknown_video_is_404(
    dev_stack: RunningStack, alice: requests.Session
) -> None:
    token = meta_csrf(watch(dev_stack, alice, "free-sampler").text)
    for video_id in ("no-such-video", "bad%20id", "x" * 200):
        answer = ask_grant(dev_stack, alice, video_id, token=token)
        assert answer.status_code == 404, video_id
        assert answer.json()["error"] == "not_found"


@pytest.fixture(scope="module")
def sessions_table(dev_stack: RunningStack) -> Iterator[Any]:
    """The stack's sessions, read as the web app reads them (tokens unsealed with its KMS key)."""
    session = boto3.Session(
        region_name=dev_stack.document["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client = session.client("dynamodb", endpoint_url=dev_stack.aws_endpoint)
    kms = session.client("kms", endpoint_url=dev_stack.aws_endpoint)
    table = dev_stack.document["tables"]["sessions"]
    cipher = EnvelopeCipher(
        kms, dev_stack.document["session_key"]["key_id"], context=token_context(table)
    )
    yield SessionStore(client, table, cipher=cipher)
    client.close()
    kms.close()


def test_the_grant_never_hands_the_access_token_to_the_page(
    dev_stack: RunningStack, alice: requests.Session, sessions_table: SessionStore
) -> None:
    answer = grant_for(dev_stack, alice, "premium-aurora")
    assert answer.status_code == 200
    sid = alice.cookies.get(COOKIE_NAME)
    assert sid
    stored = sessions_table.load(sid)
    assert stored is not None
    access_token = stored.data[SIGNED_IN]["access_token"]
    id_token = stored.data[SIGNED_IN]["id_token"]
    assert JWT.fullmatch(access_token), "the session holds a real access token"
    exposed = answer.text + json.dumps(dict(answer.headers))
    for secret in (access_token, id_token, access_token.split(".")[1]):
        assert secret not in exposed
    assert not JWT.search(exposed)
    # The only cookies a grant sets are CloudFront's, scoped to the video's own folder.
    set_cookies = answer.raw.headers.getlist("Set-Cookie")
    assert set_cookies and all(c.startswith("CloudFront-") for c in set_cookies)
    assert all("Path=/videos/premium-aurora/" in c for c in set_cookies)


# --------------------------------------------------------------------------- one rule


@pytest.fixture(scope="module")
def carol(dev_stack: RunningStack) -> requests.Session:
    return sign_in(dev_stack, "carol")


@pytest.fixture
def carol_premium(dev_stack: RunningStack) -> Iterator[Callable[[bool, datetime | None], None]]:
    """Sets carol's premium fields straight in the users table; her record is put back after.

    A direct write, since an expired membership is what time makes of a valid
    one and the store refuses to write an end date in the past.
    """
    client = boto3.client(
        "dynamodb",
        endpoint_url=dev_stack.aws_endpoint,
        region_name=dev_stack.document["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = dev_stack.document["tables"]["users"]
    key = {"user_id": {"S": UserDirectory(client, table).find("carol").user_id}}
    original = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]

    def set_premium(premium: bool, until: datetime | None) -> None:
        item = {name: value for name, value in original.items() if name != "premium_until"}
        item["premium"] = {"BOOL": premium}
        if until is not None:
            item["premium_until"] = {"S": format_time(until)}
        client.put_item(TableName=table, Item=item)

    yield set_premium
    client.put_item(TableName=table, Item=original)
    client.close()


NOW = datetime.now(UTC).replace(microsecond=0)
STATES = {
    # name: (premium, premium_until, may play premium videos)
    "never premium": (False, None, False),
    "premium without an end": (True, None, True),
    "premium until next week": (True, NOW + timedelta(days=7), True),
    "premium that ended yesterday": (True, NOW - timedelta(days=1), False),
    "revoked, its end date left behind": (False, NOW + timedelta(days=7), False),
}


@pytest.mark.parametrize("state", STATES.keys())
def test_the_watch_page_and_the_grant_agree_for_every_membership_state(
    dev_stack: RunningStack,
    carol: requests.Session,
    carol_premium: Callable[[bool, datetime | None], None],
    state: str,
) -> None:
    premium, until, plays_premium = STATES[state]
    carol_premium(premium, until)

    for video_id, tier in DEMO_TIERS.items():
        page = watch(dev_stack, carol, video_id)
        assert page.status_code == 200
        player = element_by_id(page.text, "player") is not None
        upsell = element_by_id(page.text, "upsell") is not None
        assert player != upsell, "one or the other"
        assert player == (tier == "free" or plays_premium), (state, video_id)
        answer = ask_grant(dev_stack, carol, video_id, token=meta_csrf(page.text))
        assert answer.status_code == (200 if player else 403), (state, video_id, answer.text)
        if upsell:
            assert answer.json()["error"] == "premium_required"
            lapsed = element_by_id(page.text, "upsell-lapsed") is not None
            assert lapsed == (state == "premium that ended yesterday"), (state, video_id)

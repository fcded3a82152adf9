"""The local edge enforces the front door's rate limits and adds the managed security headers.

Real sockets, each client on its own loopback address (all of 127/8 is
loopback, and the edge takes the client's address from the socket). The
limiter runs on a stepped clock, so windows pass without waiting; the limits
are the real ones of app/ratelimits.py. The stand-in web app and the bucket are
``test_edge_proxy.py``'s.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from app.local.edge import EdgeApp, EdgeServer, serve_edge
from app.local.ports import LOOPBACK
from app.local.proxy import OriginProxy
from app.local.ratelimiter import RateLimiter
from app.ratelimits import HTML_BODY, JSON_BODY, RATE_RULES, Answer, RateRule
from tests.integration.test_edge_proxy import (
    MEDIA,
    TIMEOUT,
    FrontStack,
    start_front_stack,
    trusted_keys,
)

pytestmark = pytest.mark.integration

LIMITS = {rule.name: rule for rule in RATE_RULES}
MANAGED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-xss-protection": "1; mode=block",
}


class SteppedClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class LimitedFront:
    front: FrontStack
    edge: EdgeServer
    clock: SteppedClock

    def send(
        self, source: str, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(
            LOOPBACK, self.edge.port, timeout=TIMEOUT, source_address=(source, 0)
        )
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def front(boto_session: boto3.Session) -> Iterator[FrontStack]:
    started = start_front_stack(boto_session)
    yield started
    started.stop()


@pytest.fixture
def limited(front: FrontStack) -> Iterator[LimitedFront]:
    """A fresh edge (fresh counts) with the real limits, in front of the shared web app."""
    clock = SteppedClock()
    app = EdgeApp(
        s3_client=front.s3,
        bucket=front.bucket,
        trusted_keys=trusted_keys(),
        origin=OriginProxy(f"http://{LOOPBACK}:{front.web.port}", timeout=TIMEOUT),
        clock=front.clock,
        rate_limiter=RateLimiter(clock=clock),
    )
    front.recorder.reset()
    with serve_edge(app) as edge:
        yield LimitedFront(front, edge, clock)


def _reached(front: FrontStack, path: str) -> int:
    return front.recorder.started.count(path)


def test_past_the_sign_in_limit_a_client_gets_a_429_page_and_the_web_app_nothing(
    limited: LimitedFront,
) -> None:
    auth = LIMITS["auth"]
    for _ in range(auth.limit):
        status, _, _ = limited.send("127.0.0.2", "POST", "/auth/sign-in", b"x=1")
        assert status == 404  # the stand-in web app has no such page: it was reached
    status, headers, body = limited.send("127.0.0.2", "POST", "/auth/sign-in", b"x=1")
    assert status == 429
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body.decode() == HTML_BODY
    assert headers["retry-after"] == str(auth.window_seconds)
    assert _reached(limited.front, "/auth/sign-in") == auth.limit
    # Another address is not affected, and GET pages of the same client still load.
    assert limited.send("127.0.0.3", "POST", "/auth/sign-in", b"x=1")[0] == 404
    assert limited.send("127.0.0.2", "GET", "/echo")[0] == 200


def test_past_the_grant_limit_the_api_and_the_player_route_answer_json(
    limited: LimitedFront,
) -> None:
    grants = LIMITS["grants"]
    for n in range(grants.limit):
        path = "/api/videos/a/playback" if n % 2 else "/watch/a/grant"
        assert limited.send("127.0.0.4", "POST", path, b"{}")[0] in (200, 404)  # reached
    for path in ("/api/videos/a/playback", "/watch/b/grant", "/api/videos/%61/playback"):
        status, headers, body = limited.send("127.0.0.4", "POST", path, b"{}")
        assert status == 429, path
        assert headers["content-type"] == "application/json"
        assert body.decode() == JSON_BODY
        assert headers["retry-after"] == str(grants.window_seconds)
    # The rest of the API is counted apart.
    assert limited.send("127.0.0.4", "GET", "/echo/api-ok")[0] == 200


def test_retry_after_counts_down_and_the_client_gets_through_when_it_reaches_zero(
    limited: LimitedFront,
) -> None:
    auth = LIMITS["auth"]
    for _ in range(auth.limit):
        limited.send("127.0.0.5", "POST", "/auth/forgot", b"e=x")
        limited.clock.now += 1  # the oldest request was at t0, the last at t0 + limit - 1
    limited.clock.now += 100
    status, headers, _ = limited.send("127.0.0.5", "POST", "/auth/forgot", b"e=x")
    assert status == 429
    assert headers["retry-after"] == str(auth.window_seconds - auth.limit - 100)
    limited.clock.now += int(headers["retry-after"])
    assert limited.send("127.0.0.5", "POST", "/auth/forgot", b"e=x")[0] == 404


def test_a_limited_head_request_gets_the_429_headers_without_a_body(front: FrontStack) -> None:
    # Ten requests per minute for everything: a HEAD past it gets the 429, headers only.
    every = RateRule("every", 10, 60, Answer.HTML, "test")
    app = EdgeApp(
        s3_client=front.s3,
        bucket=front.bucket,
        trusted_keys=trusted_keys(),
        origin=OriginProxy(f"http://{LOOPBACK}:{front.web.port}", timeout=TIMEOUT),
        rate_limiter=RateLimiter([every], clock=SteppedClock()),
    )
    with serve_edge(app) as edge:
        statuses = []
        for _ in range(every.limit + 1):
            connection = http.client.HTTPConnection(
                LOOPBACK, edge.port, timeout=TIMEOUT, source_address=("127.0.0.6", 0)
            )
            connection.request("HEAD", "/echo")
            response = connection.getresponse()
            statuses.append(response.status)
            body = response.read()
            connection.close()
    assert statuses == [200] * every.limit + [429]
    assert body == b""
    assert response.getheader("Retry-After") == "60"
    assert response.getheader("Content-Length") == str(len(HTML_BODY.encode()))


def test_signed_media_is_never_counted(limited: LimitedFront) -> None:
    for _ in range(LIMITS["site"].limit + 5):
        status, _, _ = limited.send("127.0.0.7", "GET", "/videos/a/clip.mp4")
        assert status == 403  # unsigned: refused by the signature check, never by the limiter


def test_every_answer_of_the_edge_carries_the_managed_security_headers(
    limited: LimitedFront,
) -> None:
    answers = {
        "page": limited.send("127.0.0.8", "GET", "/echo"),
        "poster": limited.send("127.0.0.8", "GET", "/posters/a.jpg"),
        "refused video": limited.send("127.0.0.8", "GET", "/videos/a/clip.mp4"),
    }
    for _ in range(LIMITS["auth"].limit):
        limited.send("127.0.0.8", "POST", "/auth/sign-up", b"")
    answers["rate limited"] = limited.send("127.0.0.8", "POST", "/auth/sign-up", b"")
    assert answers["poster"][2] == MEDIA["posters/a.jpg"]
    assert answers["rate limited"][0] == 429
    for what, (_, headers, _) in answers.items():
        for name, value in MANAGED.items():
            assert headers.get(name) == value, (what, name)
        assert "strict-transport-security" not in headers, what  # plain HTTP: no HSTS

"""The front door's rate limits: the definition (app.ratelimits) and the edge's limiter.

The limiter runs on a stepped clock, so windows pass without waiting.
"""

from __future__ import annotations

import pytest

from app.local.ratelimiter import SWEEP_EVERY, RateLimiter
from app.ratelimits import (
    MIN_LIMIT,
    RATE_RULES,
    ROUTE_THROTTLES,
    WINDOWS_SECONDS,
    Answer,
    PathPattern,
    RateRule,
    matching_rules,
    normalized_path,
)


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rule(name: str = "t", limit: int = 10, window: int = 60, **kw: object) -> RateRule:
    return RateRule(name, limit, window, Answer.JSON, "test", **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the definition


def test_every_rule_respects_what_aws_waf_accepts() -> None:
    assert [rule.name for rule in RATE_RULES] == ["auth", "grants", "api", "site"]
    for rule in RATE_RULES:
        assert rule.window_seconds in WINDOWS_SECONDS
        assert rule.limit >= MIN_LIMIT


@pytest.mark.parametrize("window", [59, 61, 240, 900])
def test_a_window_waf_does_not_offer_is_refused(window: int) -> None:
    with pytest.raises(ValueError, match="window"):
        _rule(window=window)


def test_the_lowest_limit_is_ten_per_window() -> None:
    assert _rule(limit=MIN_LIMIT).limit == MIN_LIMIT
    with pytest.raises(ValueError, match="limit"):
        _rule(limit=MIN_LIMIT - 1)


def test_sign_in_is_tighter_than_grants_and_grants_tighter_than_the_rest() -> None:
    per_second = {r.name: r.limit / r.window_seconds for r in RATE_RULES}
    assert per_second["auth"] < per_second["grants"] < per_second["api"] <= per_second["site"]


@pytest.mark.parametrize(
    ("method", "path", "rules"),
    [
        ("POST", "/auth/sign-in", ["auth", "site"]),
        ("POST", "/auth/sign-up", ["auth", "site"]),
        ("POST", "/auth/forgot", ["auth", "site"]),
        ("POST", "/auth/confirm", ["auth", "site"]),
        ("POST", "/auth/reset", ["auth", "site"]),
        ("GET", "/auth/sign-in", ["site"]),
        ("post", "/auth/sign-in", ["auth", "site"]),
        ("POST", "/api/videos/premium-aurora/playback", ["grants", "api"]),
        ("POST", "/watch/premium-aurora/grant", ["grants"]),
        ("GET", "/api/videos", ["api"]),
        ("DELETE", "/api/playback-sessions/s1", ["api"]),
        ("GET", "/", ["site"]),
        ("GET", "/static/player.js", ["site"]),
        ("GET", "/posters/premium-aurora.jpg", ["site"]),
        ("GET", "/videos/premium-aurora/hls/720p/seg1.m4s", []),
        # What WAF's URL_DECODE and NORMALIZE_PATH fold, the edge folds too.
        ("POST", "/%61uth/sign-in", ["auth", "site"]),
        ("POST", "//auth//sign-in", ["auth", "site"]),
        ("POST", "/static/../auth/sign-in", ["auth", "site"]),
        ("POST", "/./api/videos/x/playback", ["grants", "api"]),
        ("GET", "/%76ideos/x/clip.mp4", []),
    ],
)
def test_each_request_counts_toward_the_rules_of_its_kind(
    method: str, path: str, rules: list[str]
) -> None:
    assert [rule.name for rule in matching_rules(method, path)] == rules


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/", "/"),
        ("", "/"),
        ("/auth/", "/auth/"),
        ("/a//b/./c/", "/a/b/c/"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/..", "/a/"),
        ("/../a", "/../a"),  # a back-reference at the beginning stays, as in WAF
        ("/a%2Fb", "/a/b"),
        ("/a%252Fb", "/a%2Fb"),  # decoded once, not twice
        ("/a+b", "/a+b"),
    ],
)
def test_paths_are_decoded_once_and_normalised(raw: str, normal: str) -> None:
    assert normalized_path(raw) == normal


def test_json_answers_go_to_json_routes_and_pages_to_the_rest() -> None:
    # The API and the player's grant route speak JSON; a person reading a page gets HTML.
    corpus = [
        ("POST", "/api/videos/a/playback"),
        ("GET", "/api/videos"),
        ("POST", "/watch/a/grant"),
        ("POST", "/auth/sign-in"),
        ("GET", "/watch/a"),
        ("GET", "/"),
        ("GET", "/admin/users"),
    ]
    for method, path in corpus:
        json_route = path.startswith("/api/") or PathPattern("/watch/", "/grant").matches(path)
        for rule in matching_rules(method, path):
            assert (rule.answer is Answer.JSON) == json_route, (rule.name, path)


def test_a_pattern_tests_its_two_ends_apart_as_the_web_acl_does() -> None:
    grant = PathPattern("/watch/", "/grant")
    assert grant.matches("/watch/a/grant")
    assert grant.matches("/watch/grant")  # the ends overlap: still two byte matches that hold
    assert not grant.matches("/watch/a/grants")
    assert not grant.matches("/watchx/a/grant")


def test_route_throttles_name_each_route_once() -> None:
    keys = [throttle.route_key for throttle in ROUTE_THROTTLES]
    assert len(keys) == len(set(keys))
    for throttle in ROUTE_THROTTLES:
        assert throttle.burst >= throttle.rate_per_second > 0


# --------------------------------------------------------------------------- the limiter


def test_a_client_gets_exactly_the_limit_then_429_until_the_oldest_request_leaves() -> None:
    clock = SteppedClock()
    rule = _rule(limit=10, window=60)
    limiter = RateLimiter([rule], clock=clock)
    for i in range(10):
        assert limiter.check("10.0.0.1", "GET", f"/page/{i}") is None
        clock.now += 1
    # Requests at t=1000..1009; the oldest leaves the window at 1060, now is 1010.
    limited = limiter.check("10.0.0.1", "GET", "/page")
    assert limited is not None
    assert limited.rule == rule
    assert limited.retry_after == 50
    assert limited.first
    clock.now = 1059.5
    again = limiter.check("10.0.0.1", "GET", "/page")
    assert again is not None and again.retry_after == 1 and not again.first
    clock.now = 1060.0
    assert limiter.check("10.0.0.1", "GET", "/page") is None


def test_refused_requests_are_not_counted() -> None:
    clock = SteppedClock()
    limiter = RateLimiter([_rule(limit=10, window=60)], clock=clock)
    for _ in range(10):
        assert limiter.check("c", "GET", "/") is None
    for _ in range(500):  # hammering while limited does not extend the wait
        assert limiter.check("c", "GET", "/") is not None
    clock.now += 60
    assert limiter.check("c", "GET", "/") is None


def test_clients_are_counted_apart() -> None:
    limiter = RateLimiter([_rule(limit=10, window=60)], clock=SteppedClock())
    for _ in range(10):
        assert limiter.check("127.0.0.2", "GET", "/") is None
    assert limiter.check("127.0.0.2", "GET", "/") is not None
    for other in range(3, 23):
        assert limiter.check(f"127.0.0.{other}", "GET", "/") is None


def test_requests_no_rule_matches_are_never_limited() -> None:
    limiter = RateLimiter(clock=SteppedClock())
    for _ in range(5000):
        assert limiter.check("c", "GET", "/videos/a/hls/seg.m4s") is None
    assert limiter.tracked == 0


def test_the_first_rule_in_priority_order_that_is_full_refuses() -> None:
    clock = SteppedClock()
    auth = _rule("auth", limit=10, window=300, methods=frozenset({"POST"}))
    site = _rule("site", limit=12, window=300)
    limiter = RateLimiter([auth, site], clock=clock)
    for _ in range(10):
        assert limiter.check("c", "POST", "/auth/sign-in") is None
    refused = limiter.check("c", "POST", "/auth/sign-in")
    assert refused is not None and refused.rule == auth
    # The refused POST counted toward neither: two more pages fit in "site", then it is full.
    assert limiter.check("c", "GET", "/") is None
    assert limiter.check("c", "GET", "/") is None
    full = limiter.check("c", "GET", "/")
    assert full is not None and full.rule == site


def test_the_real_rules_let_twenty_sign_in_posts_through_per_address() -> None:
    limiter = RateLimiter(clock=SteppedClock())
    answers = [limiter.check("203.0.113.9", "POST", "/auth/sign-in") for _ in range(25)]
    assert answers[:20] == [None] * 20
    assert all(a is not None and a.rule.name == "auth" for a in answers[20:])
    assert answers[20] is not None and answers[20].retry_after == 300


def test_clients_whose_windows_emptied_are_forgotten() -> None:
    clock = SteppedClock()
    limiter = RateLimiter([_rule(limit=10, window=60)], clock=clock)
    for n in range(1000):
        limiter.check(f"10.1.{n // 256}.{n % 256}", "GET", "/")
    assert limiter.tracked == 1000
    clock.now += 61
    for _ in range(SWEEP_EVERY):
        limiter.check("10.9.9.9", "GET", "/")
        clock.now += 0.001
    assert limiter.tracked == 1

"""The playback route's HTTP edges: the request body it accepts and the cookies it sets."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest

from app.errors import BadRequestError
from app.http.viewer import grant_cookie_headers, parse_grant_body
from app.playback import Grant

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
COOKIES = {
    "CloudFront-Policy": "eyJTdGF0ZW1lbnQiOltdfQ__",
    "CloudFront-Signature": "MEUCIQ-abc~def_",
    "CloudFront-Key-Pair-Id": "K2JCJMDEHXQW5F",
    "CloudFront-Hash-Algorithm": "SHA256",
}


def hls_grant(lifetime: int = 300) -> Grant:
    return Grant(
        url="https://d111111abcdef8.cloudfront.net/videos/a/hls/master.m3u8?Expires=1",
        expires_at=NOW + timedelta(seconds=lifetime),
        content_type="application/vnd.apple.mpegurl",
        key_pair_id="K2JCJMDEHXQW5F",
        video_id="a",
        format="hls",
        cookies=dict(COOKIES),
        cookie_path="/videos/a/",
        lifetime_seconds=lifetime,
    )


# --- the request body ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "wanted"),
    [({}, None), ({"format": "mp4"}, "mp4"), ({"format": "hls"}, "hls")],
)
def test_a_body_names_a_format_or_nothing(body: dict[str, Any], wanted: str | None) -> None:
    assert parse_grant_body(body) == wanted


@pytest.mark.parametrize(
    "body",
    [
        {"format": "MP4"},
        {"format": "dash"},
        {"format": ""},
        {"format": None},
        {"format": ["mp4"]},
        {"format": 4},
        {"formats": "mp4"},
        {"format": "mp4", "quality": "1080p"},
        {"url": "https://example.com/x.mp4"},
    ],
)
def test_an_unknown_field_or_format_is_a_bad_request(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        parse_grant_body(body)


# --- the cookies --------------------------------------------------------------------


def parsed(header: str) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return jar


def attributes(header: str) -> list[str]:
    """The attribute names of one Set-Cookie value, as written (case matters to CloudFront)."""
    return [part.strip().split("=", 1)[0] for part in header.split(";")[1:]]


def test_each_cloudfront_cookie_gets_its_own_set_cookie_with_the_grants_value() -> None:
    headers = grant_cookie_headers(hls_grant(), secure=True)

    assert len(headers) == len(COOKIES)
    for header, (name, value) in zip(headers, COOKIES.items(), strict=True):
        assert header.startswith(f"{name}={value};")
        assert parsed(header)[name].value == value


def test_the_cookies_live_on_the_videos_path_for_exactly_the_policys_lifetime() -> None:
    grant = hls_grant(lifetime=240)

    for header in grant_cookie_headers(grant, secure=True):
        morsel = next(iter(parsed(header).values()))
        assert morsel["path"] == "/videos/a/"
        assert morsel["max-age"] == "240"
        expires = email.utils.parsedate_to_datetime(morsel["expires"])
        assert expires == grant.expires_at
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["secure"] is True
        assert morsel["domain"] == "", "host-only: no Domain"
        assert attributes(header) == [
            "Path",
            "Max-Age",
            "Expires",
            "Secure",
            "HttpOnly",
            "SameSite",
        ]


def test_over_plain_http_the_cookies_are_not_marked_secure() -> None:
    for header in grant_cookie_headers(hls_grant(), secure=False):
        assert "Secure" not in attributes(header)
        assert next(iter(parsed(header).values()))["httponly"] is True


def test_an_mp4_grant_sets_no_cookies() -> None:
    mp4 = Grant(
        url="https://d111111abcdef8.cloudfront.net/videos/a/a.mp4?Expires=1",
        expires_at=NOW,
        content_type="video/mp4",
        key_pair_id="K2JCJMDEHXQW5F",
        video_id="a",
    )
    assert grant_cookie_headers(mp4, secure=True) == []

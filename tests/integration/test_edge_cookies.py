"""Signed cookies for an HLS folder, set by the web app and honoured by the edge, on one host.

The stand-in web app behind the edge (``test_edge_proxy.py``) answers a grant
the way vidgate's grant route does: one ``Set-Cookie`` per ``CloudFront-*``
cookie, ``Path=/videos/<id>/hls/``, custom policy over
``<site>/videos/<id>/hls/*``. A ``requests.Session`` plays the browser: it
keeps the cookies the front door relayed and sends them back by path. Then
scope (browser path and policy resource), expiry, tampering, missing cookies
and cookies next to URL parameters (docs/cloudfront-signing.md#u-7: the URL
decides when it carries any of ``Expires``, ``Policy``, ``Signature``,
``Key-Pair-Id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest
import requests

from app.signing import UrlSigner, cloudfront_b64decode, cloudfront_b64encode
from tests.integration.test_edge import NOW, TRUSTED, error_code, private_key
from tests.integration.test_edge_proxy import (
    MEDIA,
    MISSING_KEY_BODY,
    TIMEOUT,
    FrontStack,
    start_front_stack,
)

pytestmark = pytest.mark.integration

TTL = 60
MASTER_A = "videos/a/hls/master.m3u8"
Cookies = dict[str, str]


@pytest.fixture(scope="module")
def front(boto_session: boto3.Session) -> Iterator[FrontStack]:
    started = start_front_stack(boto_session)
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _now(front: FrontStack) -> None:
    front.clock.now = NOW


def signer(front: FrontStack, key_pair_id: str = TRUSTED["ec"]) -> UrlSigner:
    return UrlSigner(key_pair_id, private_key("ec"), base_url=front.base, clock=front.clock)


def folder_cookies(front: FrontStack, video: str) -> Cookies:
    return signer(front).cookies_for_prefix(f"videos/{video}/hls/", TTL).cookies


def granted_browser(front: FrontStack, video: str) -> tuple[requests.Session, Cookies]:
    """A browser that asked the web app (through the edge) for ``video``'s grant."""
    cookies = folder_cookies(front, video)
    front.recorder.grants[video] = [
        f"{name}={value}; Path=/videos/{video}/hls/; HttpOnly; SameSite=Lax"
        for name, value in cookies.items()
    ]
    browser = requests.Session()
    answer = browser.post(f"{front.base}/grant/{video}", timeout=TIMEOUT)
    assert answer.status_code == 200
    relayed = answer.raw.headers.getlist("Set-Cookie")
    assert relayed == front.recorder.grants[video], "one Set-Cookie per cookie, all relayed"
    return browser, cookies


def with_cookies(
    front: FrontStack, key: str, cookies: Cookies, query: str = ""
) -> requests.Response:
    """GET ``key`` sending exactly ``cookies`` (whatever their path), as a forged request would."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    url = front.url(key) + (f"?{query}" if query else "")
    return requests.get(url, headers={"Cookie": header} if header else {}, timeout=TIMEOUT)


def assert_refused(answer: requests.Response, code: str) -> None:
    assert answer.status_code == 403, answer.content[:200]
    assert answer.headers["Content-Type"] == "text/xml"
    assert error_code(answer.content) == code
    assert not any(body[:16] in answer.content for body in MEDIA.values())


# --------------------------------------------------------------------------- the happy path


def test_a_grants_cookies_open_every_file_of_that_videos_hls_folder(front: FrontStack) -> None:
    browser, cookies = granted_browser(front, "a")
    assert set(cookies) == {
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
        "CloudFront-Hash-Algorithm",
    }
    for key in ("videos/a/hls/master.m3u8", "videos/a/hls/720p/index.m3u8"):
        answer = browser.get(front.url(key), timeout=TIMEOUT)
        assert (answer.status_code, answer.content) == (200, MEDIA[key])
    segment = browser.get(
        front.url("videos/a/hls/720p/seg1.m4s"), headers={"Range": "bytes=0-7"}, timeout=TIMEOUT
    )
    assert (segment.status_code, segment.content) == (206, MEDIA["videos/a/hls/720p/seg1.m4s"][:8])
    head = browser.head(front.url(MASTER_A), timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(MEDIA[MASTER_A]))


def test_the_playlist_may_carry_its_own_query_under_a_folder_grant(front: FrontStack) -> None:
    # A path ending in "*" implies "\?*" (CP-3): the viewer's own parameters still match.
    answer = with_cookies(front, MASTER_A, folder_cookies(front, "a"), query="v=2")
    assert (answer.status_code, answer.content) == (200, MEDIA[MASTER_A])


# --------------------------------------------------------------------------- scope


def test_the_browser_sends_them_only_under_their_path(front: FrontStack) -> None:
    browser, _ = granted_browser(front, "a")
    for key in ("videos/b/hls/master.m3u8", "videos/a/clip.mp4"):
        answer = browser.get(front.url(key), timeout=TIMEOUT)
        assert answer.status_code == 403
        assert answer.content == MISSING_KEY_BODY


@pytest.mark.parametrize(
    "key", ["videos/b/hls/master.m3u8", "videos/ab/hls/master.m3u8", "videos/a/clip.mp4"]
)
def test_sent_anyway_they_open_nothing_outside_their_folder(front: FrontStack, key: str) -> None:
    assert_refused(with_cookies(front, key, folder_cookies(front, "a")), "AccessDenied")


# --------------------------------------------------------------------------- expiry


def test_they_work_until_the_second_before_expiry_and_a_new_grant_renews_them(
    front: FrontStack,
) -> None:
    browser, _ = granted_browser(front, "a")
    front.clock.now = NOW + TTL - 1
    assert browser.get(front.url(MASTER_A), timeout=TIMEOUT).status_code == 200
    front.clock.now = NOW + TTL
    assert_refused(browser.get(front.url(MASTER_A), timeout=TIMEOUT), "AccessDenied")
    renewed, _ = granted_browser(front, "a")  # signed at the new "now"
    assert renewed.get(front.url(MASTER_A), timeout=TIMEOUT).status_code == 200


# --------------------------------------------------------------------------- tampering


def _flip(text: str, index: int = 20) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _policy_of(cookies: Cookies) -> bytes:
    return cloudfront_b64decode(cookies["CloudFront-Policy"])


TAMPERINGS: list[tuple[str, Callable[[Cookies, Cookies], Cookies], str]] = [
    (
        "signature-changed",
        lambda a, b: {**a, "CloudFront-Signature": _flip(a["CloudFront-Signature"])},
        "AccessDenied",
    ),
    (
        "policy-of-another-video",
        lambda a, b: {**a, "CloudFront-Policy": b["CloudFront-Policy"]},
        "AccessDenied",
    ),
    (
        "policy-widened",
        lambda a, b: {
            **a,
            "CloudFront-Policy": cloudfront_b64encode(
                _policy_of(a).replace(b"/videos/a/hls/*", b"/videos/*")
            ),
        },
        "AccessDenied",
    ),
    (
        "policy-expiry-extended",
        lambda a, b: {
            **a,
            "CloudFront-Policy": cloudfront_b64encode(
                _policy_of(a).replace(str(NOW + TTL).encode(), str(NOW + 86400).encode())
            ),
        },
        "AccessDenied",
    ),
    (
        "signature-dropped",
        lambda a, b: {k: v for k, v in a.items() if k != "CloudFront-Signature"},
        "AccessDenied",
    ),
    (
        "hash-algorithm-dropped",
        lambda a, b: {k: v for k, v in a.items() if k != "CloudFront-Hash-Algorithm"},
        "AccessDenied",
    ),
    (
        "key-pair-id-dropped",
        lambda a, b: {k: v for k, v in a.items() if k != "CloudFront-Key-Pair-Id"},
        "MissingKey",
    ),
    (
        "key-pair-id-unknown",
        lambda a, b: {**a, "CloudFront-Key-Pair-Id": "KNOTINTHEGROUP"},
        "InvalidKey",
    ),
    (
        "policy-not-cloudfront-base64",
        lambda a, b: {**a, "CloudFront-Policy": a["CloudFront-Policy"] + "=="},
        "MalformedPolicy",
    ),
    (
        "policy-dropped",
        lambda a, b: {k: v for k, v in a.items() if k != "CloudFront-Policy"},
        "MalformedPolicy",
    ),
    (
        "names-in-lower-case",
        lambda a, b: {k.lower(): v for k, v in a.items()},
        "MissingKey",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "code"), [case[1:] for case in TAMPERINGS], ids=[case[0] for case in TAMPERINGS]
)
def test_tampered_cookies_are_refused_with_cloudfronts_code(
    front: FrontStack, tamper: Callable[[Cookies, Cookies], Cookies], code: str
) -> None:
    a, b = folder_cookies(front, "a"), folder_cookies(front, "b")
    assert with_cookies(front, MASTER_A, a).status_code == 200  # the baseline is good
    assert_refused(with_cookies(front, MASTER_A, tamper(a, b)), code)


def test_no_cookies_is_missing_key_with_cloudfronts_exact_body(front: FrontStack) -> None:
    answer = requests.get(front.url(MASTER_A), timeout=TIMEOUT)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "text/xml"
    assert answer.content == MISSING_KEY_BODY
    unrelated = with_cookies(front, MASTER_A, {"vidgate_session": "x", "theme": "dark"})
    assert unrelated.content == MISSING_KEY_BODY


# --------------------------------------------------------------------------- URL and cookies


def _signed_query(front: FrontStack, key: str) -> str:
    url = signer(front).url_for_key(key, TTL).url
    return url.split("?", 1)[1]


def test_a_signing_parameter_in_the_url_makes_the_url_decide_and_cookies_count_for_nothing(
    front: FrontStack,
) -> None:
    good = folder_cookies(front, "a")
    assert_refused(with_cookies(front, MASTER_A, good, query="Signature=abc"), "MissingKey")
    assert_refused(with_cookies(front, MASTER_A, good, query="Expires=4000000000"), "MissingKey")
    broken_url = _signed_query(front, MASTER_A).replace("Signature=", "Signature=A")
    assert_refused(with_cookies(front, MASTER_A, good, query=broken_url), "AccessDenied")


def test_hash_algorithm_alone_in_the_url_leaves_the_decision_to_the_cookies(
    front: FrontStack,
) -> None:
    answer = with_cookies(
        front, MASTER_A, folder_cookies(front, "a"), query="Hash-Algorithm=SHA256"
    )
    assert (answer.status_code, answer.content) == (200, MEDIA[MASTER_A])


def test_a_valid_signed_url_is_served_whatever_the_cookies_say(front: FrontStack) -> None:
    query = _signed_query(front, MASTER_A)
    wrong_video = folder_cookies(front, "b")
    tampered = {**folder_cookies(front, "a"), "CloudFront-Signature": "AAAA"}
    for cookies in (wrong_video, tampered, {}):
        answer = with_cookies(front, MASTER_A, cookies, query=query)
        assert (answer.status_code, answer.content) == (200, MEDIA[MASTER_A])

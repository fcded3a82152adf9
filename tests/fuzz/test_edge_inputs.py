"""Hypothesis around valid grants at the local CloudFront edge: no 5xx, no unsigned bytes.

``tests/integration/test_edge_tampering.py`` already sends arbitrary paths,
query strings and cookies and checks for no 5xx; random text almost never
looks like a grant, though, so it says little about "never bytes without a
valid signature". Here every request starts from a grant the edge must
honour (canned and custom signed URLs, canned and custom signed cookies,
ECDSA/SHA-256 and RSA/SHA-1, a URL with its own query parameter) and
hypothesis changes up to four things in its path, query string and cookies.
Each change is known to break the grant (another path, a changed, dropped,
repeated or added parameter, a changed or dropped ``CloudFront-*`` cookie)
or to leave it intact (an unrelated cookie, cookies next to a signed URL,
which wins). The edge must answer below 500 every time, serve the object's
exact bytes when the grant is intact, and never serve a byte when it is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from app.signing import SIGNING_PARAMS
from tests.integration.test_edge import NOW, OBJECTS, EdgeStack, start_edge_stack

pytestmark = pytest.mark.integration

VIDEO = "videos/a.mp4"
OTHER_PATHS = ("/videos/empty.bin", "/premium/b.mp4", "/hls/v1/seg0.ts", "/videos/a.mp4/")
PUBLIC_PREFIX = "/posters/"
"""The edge serves posters without a signature (a cache behaviour with no trusted signers)."""
EXAMPLES = 500

url_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
cookie_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."),
    min_size=1,
    max_size=12,
)


@dataclass(frozen=True)
class Probe:
    """One request: raw path, query pairs, cookie pairs (after any raw cookie text), changes."""

    name: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    raw_cookie: str = ""
    by_cookie: bool = False
    changes: tuple[str, ...] = field(default=())

    @property
    def target(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return self.path + (f"?{query}" if query else "")

    @property
    def cookie_header(self) -> str:
        pairs = [f"{k}={v}" for k, v in self.cookies]
        return "; ".join([self.raw_cookie, *pairs] if self.raw_cookie else pairs)


def _split(url: str, base: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    path, _, query = url.removeprefix(base).partition("?")
    pairs = tuple(tuple(p.split("=", 1)) for p in query.split("&") if p)
    return path, pairs  # type: ignore[return-value]


def starting_points(stack: EdgeStack) -> list[Probe]:
    """Grants the edge must honour, as probes (nothing changed yet)."""
    url = stack.url(VIDEO)
    path = url.removeprefix(stack.base)
    ec, rsa = stack.signer("ec"), stack.signer("rsa")
    probes = []
    for name, signed in (
        ("canned url ecdsa", ec.sign_url(url, expires_at=NOW + 300)),
        ("canned url rsa-sha1", rsa.sign_url(url, expires_at=NOW + 300)),
        ("custom url ecdsa", ec.sign_url(url, expires_at=NOW + 300, starts_at=NOW - 60)),
        ("canned url with own query", rsa.sign_url(url + "?v=1", expires_at=NOW + 300)),
    ):
        signed_path, params = _split(signed, stack.base)
        probes.append(Probe(name, signed_path, params))
    for name, cookies in (
        ("canned cookies ecdsa", ec.sign_cookies(url, expires_at=NOW + 300)),
        ("custom cookies rsa", rsa.sign_cookies(url, expires_at=NOW + 300, ip="127.0.0.0/8")),
    ):
        probes.append(Probe(name, path, (), tuple(cookies.items()), by_cookie=True))
    return probes


@st.composite
def change(draw: st.DrawFn, probe: Probe) -> Probe:
    """``probe`` with one thing changed in its path, query string or cookies."""
    kind = draw(
        st.sampled_from(
            [
                "path",
                "path-char",
                "other-object",
                "param-value",
                "param-drop",
                "param-dup",
                "param-add",
                "cookie-value",
                "cookie-drop",
                "cookie-add",
                "cookie-text",
            ]
        )
    )
    path, params, cookies = probe.path, list(probe.params), list(probe.cookies)
    raw_cookie = probe.raw_cookie
    if kind == "path":
        path = "/" + draw(url_text)
    elif kind == "path-char" and len(path) > 1:
        index = draw(st.integers(1, len(path) - 1))
        path = path[:index] + draw(st.sampled_from("aA%/.~-_+*?0")) + path[index + 1 :]
    elif kind == "other-object":
        path = draw(st.sampled_from(OTHER_PATHS))
    elif kind == "param-add":
        name = draw(names.filter(lambda n: n not in SIGNING_PARAMS))
        params.insert(draw(st.integers(0, len(params))), (name, draw(url_text)))
    elif kind.startswith("param") and params:
        index = draw(st.integers(0, len(params) - 1))
        if kind == "param-drop":
            del params[index]
        elif kind == "param-dup":
            params.insert(draw(st.integers(0, len(params))), params[index])
        else:
            params[index] = (params[index][0], draw(url_text))
    elif kind == "cookie-add":
        name = draw(names.filter(lambda n: not n.startswith("CloudFront-")))
        value = draw(cookie_text.filter(lambda t: ";" not in t))
        cookies.insert(draw(st.integers(0, len(cookies))), (name, value))
    elif kind == "cookie-text":  # the whole header replaced by any text
        cookies, raw_cookie = [], draw(cookie_text)
    elif kind.startswith("cookie") and cookies:
        index = draw(st.integers(0, len(cookies) - 1))
        if kind == "cookie-drop":
            del cookies[index]
        else:
            cookies[index] = (cookies[index][0], draw(cookie_text.filter(lambda t: ";" not in t)))
    return replace(
        probe,
        path=path,
        params=tuple(params),
        cookies=tuple(cookies),
        raw_cookie=raw_cookie,
        changes=(*probe.changes, kind),
    )


def meaning(probe: Probe) -> tuple[object, ...]:
    """What the grant depends on: the path, the own query in order, the signing parameters, and
    (for a cookie grant) the ``CloudFront-*`` cookies; two probes alike in it are equally valid.
    """
    path, _, query = probe.target.partition("?")
    pieces = query.split("&") if query else []
    own = [p for p in pieces if p.partition("=")[0] not in SIGNING_PARAMS]
    signing = sorted(p for p in pieces if p.partition("=")[0] in SIGNING_PARAMS)
    cookies = (
        {n: v.strip() for n, v in probe.cookies if n.startswith("CloudFront-")}
        if probe.by_cookie
        else {}
    )
    return path, own, signing, cookies


@st.composite
def probes(draw: st.DrawFn, points: list[Probe]) -> tuple[Probe, bool]:
    """A starting point with up to four changes, and whether the grant survived them."""
    start = probe = draw(st.sampled_from(points))
    for _ in range(draw(st.integers(0, 4))):
        probe = draw(change(probe))
    return probe, meaning(probe) == meaning(start)


def _request(stack: EdgeStack, probe: Probe) -> Any:
    environ: dict[str, Any] = {"RAW_URI": probe.target, "REMOTE_ADDR": "127.0.0.1"}
    if probe.cookie_header:
        environ["HTTP_COOKIE"] = probe.cookie_header
    # use_cookies=False: with its own jar, the test client would drop HTTP_COOKIE
    return Client(stack.app, use_cookies=False).get(
        "/", environ_overrides=environ, headers={"Host": f"127.0.0.1:{stack.port}"}
    )


@pytest.fixture(scope="module")
def stack(boto_session: boto3.Session) -> Iterator[EdgeStack]:
    started = start_edge_stack(boto_session)
    yield started
    started.server.stop()


@pytest.fixture(scope="module")
def points(stack: EdgeStack) -> list[Probe]:
    return starting_points(stack)


def test_every_starting_point_is_served_as_it_is(stack: EdgeStack, points: list[Probe]) -> None:
    stack.clock.now = NOW
    for probe in points:
        response = _request(stack, probe)
        assert response.status_code == 200, (probe.name, response.data[:300])
        assert response.data == OBJECTS[VIDEO]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_changed_grant_never_yields_bytes_and_an_intact_one_always_does(
    stack: EdgeStack, points: list[Probe], data: st.DataObject
) -> None:
    stack.clock.now = NOW
    probe, intact = data.draw(probes(points))

    response = _request(stack, probe)
    event(f"grant {'intact' if intact else 'changed'}: {response.status_code}")

    assert response.status_code < 500, (probe, response.data[:300])
    if probe.path.startswith(PUBLIC_PREFIX):
        return
    if not intact:
        assert not 200 <= response.status_code < 300, (probe, response.status_code)
        assert response.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error>')
    else:
        assert response.status_code == 200, (probe, response.data[:300])
        assert response.data == OBJECTS[VIDEO]

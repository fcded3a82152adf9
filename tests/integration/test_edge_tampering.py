"""Tampered, forged and malformed requests to the local CloudFront edge, each refused with its code.

Every case starts from a grant our signer (or a hand-signed policy) would
produce and changes one thing; the edge must answer with CloudFront's status
and error code (docs/cloudfront-signing.md#failure-responses) and never with the object or a 5xx.
Requests go out byte for byte through ``http.client``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from app.signing import cloudfront_b64decode, cloudfront_b64encode
from tests.integration.test_edge import (
    NOW,
    OBJECTS,
    TRUSTED,
    EdgeStack,
    error_code,
    private_key,
    raw_request,
    start_edge_stack,
    target_of,
)

pytestmark = pytest.mark.integration

VIDEO = "videos/a.mp4"


@dataclass(frozen=True)
class Req:
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    host: str | None = None


@pytest.fixture(scope="module")
def stack(boto_session: boto3.Session) -> Iterator[EdgeStack]:
    started = start_edge_stack(boto_session)
    yield started
    started.server.stop()


# --- building blocks ------------------------------------------------------------------------


def signed(stack: EdgeStack, key: str = VIDEO, kind: str = "ec", **grant: Any) -> str:
    """A valid signed URL (canned unless the grant asks for more), as a request target."""
    hash_algorithm = grant.pop("hash_algorithm", None)
    query = grant.pop("query", "")
    url = stack.url(key) + (f"?{query}" if query else "")
    grant.setdefault("expires_at", NOW + 300)
    signer = stack.signer(kind, hash_algorithm=hash_algorithm, skew_seconds=0)
    return target_of(signer.sign_url(url, **grant))


def params(target: str) -> list[tuple[str, str]]:
    return [tuple(piece.split("=", 1)) for piece in target.split("?", 1)[1].split("&")]  # type: ignore[misc]


def rebuild(target: str, pairs: list[tuple[str, str]]) -> str:
    return target.split("?", 1)[0] + "?" + "&".join(f"{name}={value}" for name, value in pairs)


def replace(target: str, name: str, value: str) -> str:
    return rebuild(target, [(n, value if n == name else v) for n, v in params(target)])


def drop(target: str, name: str) -> str:
    return rebuild(target, [(n, v) for n, v in params(target) if n != name])


def value_of(target: str, name: str) -> str:
    return dict(params(target))[name]


def flip(text: str, index: int = 12) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def sign_bytes(kind: str, message: bytes, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    key = private_key(kind)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hash_algorithm)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(message, ec.ECDSA(hash_algorithm))


def hand_signed(
    stack: EdgeStack,
    policy: bytes,
    *,
    key: str = VIDEO,
    encode: Callable[[bytes], str] = cloudfront_b64encode,
) -> str:
    """A custom-policy URL over any ``policy`` bytes, validly signed with the trusted EC key."""
    signature = cloudfront_b64encode(sign_bytes("ec", policy, hashes.SHA256()))
    return (
        f"{target_of(stack.url(key))}?Policy={encode(policy)}&Signature={signature}"
        f"&Key-Pair-Id={TRUSTED['ec']}&Hash-Algorithm=SHA256"
    )


def policy_json(stack: EdgeStack, condition: dict[str, Any], resource: str | None = None) -> bytes:
    statement = {"Resource": resource or stack.base + "/videos/*", "Condition": condition}
    return json.dumps({"Statement": [statement]}, separators=(",", ":")).encode()


def standard_b64_policy_url(stack: EdgeStack) -> str:
    for width in range(3):  # find a resource whose standard base64 needs "=" padding
        policy = policy_json(
            stack,
            {"DateLessThan": {"AWS:EpochTime": NOW + 60}},
            stack.base + "/videos/" + "a" * width + "*",
        )
        if "=" in base64.b64encode(policy).decode():
            return hand_signed(stack, policy, encode=lambda data: base64.b64encode(data).decode())
    raise AssertionError("no padded policy found")


def raw_ecdsa(target: str) -> str:
    r, s = decode_dss_signature(cloudfront_b64decode(value_of(target, "Signature")))
    return replace(
        target, "Signature", cloudfront_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    )


def cookies_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def folder_cookies(stack: EdgeStack, resource: str | None = None, **grant: Any) -> dict[str, str]:
    grant.setdefault("expires_at", NOW + 300)
    return stack.signer().sign_cookies(resource or stack.base + "/videos/*", **grant)


def without(mapping: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in mapping.items() if key != name}


# --- the cases: (id, request builder, status, code) --------------------------------------------

Case = tuple[str, Callable[[EdgeStack], Req], int, str]

CASES: list[Case] = [
    # what the URL names
    (
        "changed-path",
        lambda s: Req(signed(s).replace("/videos/a.mp4", "/premium/b.mp4")),
        403,
        "AccessDenied",
    ),
    (
        "changed-custom-resource",
        lambda s: Req(signed(s, resource=s.base + "/premium/*")),
        403,
        "AccessDenied",
    ),
    (
        "signed-for-another-host",
        lambda s: Req(signed(s), host=f"localhost:{s.port}"),
        403,
        "AccessDenied",
    ),
    (
        "signed-for-https",
        lambda s: Req(
            target_of(
                s.signer().sign_url(s.url(VIDEO).replace("http:", "https:"), expires_at=NOW + 60)
            )
        ),
        403,
        "AccessDenied",
    ),
    ("query-added-after-signing", lambda s: Req(signed(s) + "&download=1"), 403, "AccessDenied"),
    (
        "query-added-before-expires",
        lambda s: Req(signed(s, query="a=1").replace("a=1&", "a=1&b=2&")),
        403,
        "AccessDenied",
    ),
    (
        "own-query-reordered",
        lambda s: Req(signed(s, query="a=1&b=2").replace("a=1&b=2", "b=2&a=1")),
        403,
        "AccessDenied",
    ),
    (
        "own-query-removed",
        lambda s: Req(signed(s, query="a=1").replace("a=1&", "")),
        403,
        "AccessDenied",
    ),
    (
        "exact-custom-resource-plus-query",
        lambda s: Req(signed(s, ip="127.0.0.1").replace("?", "?x=1&", 1)),
        403,
        "AccessDenied",
    ),
    (
        "wildcard-in-another-folder",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/a*").replace("/videos/a.mp4", "/premium/b.mp4")
        ),
        403,
        "AccessDenied",
    ),
    (
        "wildcard-for-another-host",
        lambda s: Req(signed(s, resource=f"http://localhost:{s.port}/videos/*")),
        403,
        "AccessDenied",
    ),
    # paths that try to escape or alias
    (
        "dot-dot-under-a-wildcard",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace(
                "/videos/a.mp4", "/videos/../premium/b.mp4"
            )
        ),
        400,
        "InvalidURI",
    ),
    (
        "encoded-dot-dot-under-a-wildcard",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace(
                "/videos/a.mp4", "/videos/%2e%2e/premium/b.mp4"
            )
        ),
        400,
        "InvalidURI",
    ),
    (
        "double-encoded-dot-dot-is-a-literal-missing-key",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace(
                "/videos/a.mp4", "/videos/%252e%252e/premium/b.mp4"
            )
        ),
        404,
        "NoSuchKey",
    ),
    (
        "needless-escape-alias",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace("/videos/a.mp4", "/videos/%61.mp4")
        ),
        400,
        "InvalidURI",
    ),
    (
        "encoded-slash-alias",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace("/videos/a.mp4", "/videos%2Fa.mp4")
        ),
        400,
        "InvalidURI",
    ),
    ("public-prefix-dot-dot", lambda s: Req("/posters/../videos/a.mp4"), 400, "InvalidURI"),
    (
        "public-prefix-encoded-dot-dot",
        lambda s: Req("/posters/%2E%2E/videos/a.mp4"),
        400,
        "InvalidURI",
    ),
    (
        "host-header-smuggling-a-path",
        lambda s: Req(
            signed(s, resource=s.base + "/videos/*").replace("/videos/a.mp4", "/premium/b.mp4"),
            host=f"127.0.0.1:{s.port}/videos",
        ),
        400,
        "InvalidHost",
    ),
    # time and place
    ("expired-canned", lambda s: Req(signed(s, expires_at=NOW)), 403, "AccessDenied"),
    (
        "after-date-less-than",
        lambda s: Req(signed(s, expires_at=NOW, starts_at=NOW - 100)),
        403,
        "AccessDenied",
    ),
    (
        "before-date-greater-than",
        lambda s: Req(signed(s, starts_at=NOW + 100)),
        403,
        "AccessDenied",
    ),
    ("ip-outside-range", lambda s: Req(signed(s, ip="10.0.0.0/8")), 403, "AccessDenied"),
    (
        "x-forwarded-for-does-not-satisfy-the-ip",
        lambda s: Req(signed(s, ip="203.0.113.9"), {"X-Forwarded-For": "203.0.113.9"}),
        403,
        "AccessDenied",
    ),
    # canned policy values
    (
        "changed-expiry",
        lambda s: Req(replace(signed(s), "Expires", str(NOW + 301))),
        403,
        "AccessDenied",
    ),
    (
        "expires-not-a-number",
        lambda s: Req(replace(signed(s), "Expires", "soon")),
        403,
        "AccessDenied",
    ),
    (
        "expires-after-2038",
        lambda s: Req(replace(signed(s), "Expires", "99999999999")),
        403,
        "AccessDenied",
    ),
    (
        "both-expires-and-policy",
        lambda s: Req(signed(s, ip="127.0.0.1").replace("?", f"?Expires={NOW + 60}&", 1)),
        403,
        "AccessDenied",
    ),
    # signatures
    (
        "signature-byte",
        lambda s: Req(replace(signed(s), "Signature", flip(value_of(signed(s), "Signature")))),
        403,
        "AccessDenied",
    ),
    (
        "signature-truncated",
        lambda s: Req(
            replace(
                signed(s, kind="rsa"),
                "Signature",
                value_of(signed(s, kind="rsa"), "Signature")[:-8],
            )
        ),
        403,
        "AccessDenied",
    ),
    ("signature-missing", lambda s: Req(drop(signed(s), "Signature")), 403, "AccessDenied"),
    (
        "signature-standard-base64",
        lambda s: Req(
            replace(
                signed(s, kind="rsa"),
                "Signature",
                base64.b64encode(
                    cloudfront_b64decode(value_of(signed(s, kind="rsa"), "Signature"))
                ).decode(),
            )
        ),
        403,
        "AccessDenied",
    ),
    (
        "signature-base64url",
        lambda s: Req(
            replace(
                signed(s, kind="rsa"),
                "Signature",
                base64.urlsafe_b64encode(
                    cloudfront_b64decode(value_of(signed(s, kind="rsa"), "Signature"))
                )
                .decode()
                .rstrip("="),
            )
        ),
        403,
        "AccessDenied",
    ),
    ("ecdsa-raw-r-s-signature", lambda s: Req(raw_ecdsa(signed(s))), 403, "AccessDenied"),
    (
        "rsa-signature-under-the-ecdsa-key-id",
        lambda s: Req(
            replace(signed(s, kind="rsa", hash_algorithm="SHA256"), "Key-Pair-Id", TRUSTED["ec"])
        ),
        403,
        "AccessDenied",
    ),
    (
        "untrusted-key-with-a-trusted-id",
        lambda s: Req(signed(s, kind="untrusted-ec")),
        403,
        "AccessDenied",
    ),
    (
        "duplicate-signature",
        lambda s: Req(signed(s) + "&Signature=" + value_of(signed(s), "Signature")),
        403,
        "AccessDenied",
    ),
    # key ids
    (
        "unknown-key-id",
        lambda s: Req(replace(signed(s), "Key-Pair-Id", "KUNKNOWN1234")),
        403,
        "InvalidKey",
    ),
    (
        "key-id-in-lower-case",
        lambda s: Req(replace(signed(s), "Key-Pair-Id", TRUSTED["ec"].lower())),
        403,
        "InvalidKey",
    ),
    ("missing-key-id", lambda s: Req(drop(signed(s), "Key-Pair-Id")), 403, "MissingKey"),
    ("empty-key-id", lambda s: Req(replace(signed(s), "Key-Pair-Id", "")), 403, "MissingKey"),
    ("no-signature-at-all", lambda s: Req(target_of(s.url(VIDEO))), 403, "MissingKey"),
    # hash algorithm
    (
        "stripped-hash-algorithm",
        lambda s: Req(drop(signed(s), "Hash-Algorithm")),
        403,
        "AccessDenied",
    ),
    (
        "stripped-hash-algorithm-rsa",
        lambda s: Req(drop(signed(s, kind="rsa", hash_algorithm="SHA256"), "Hash-Algorithm")),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-sha1",
        lambda s: Req(replace(signed(s), "Hash-Algorithm", "SHA1")),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-sha1-on-a-sha1-url",
        lambda s: Req(signed(s, kind="rsa") + "&Hash-Algorithm=SHA1"),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-lower-case",
        lambda s: Req(replace(signed(s), "Hash-Algorithm", "sha256")),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-garbage",
        lambda s: Req(replace(signed(s), "Hash-Algorithm", "MD5")),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-empty",
        lambda s: Req(replace(signed(s), "Hash-Algorithm", "")),
        403,
        "AccessDenied",
    ),
    (
        "hash-algorithm-added-to-a-sha1-url",
        lambda s: Req(signed(s, kind="rsa") + "&Hash-Algorithm=SHA256"),
        403,
        "AccessDenied",
    ),
    # custom policies
    (
        "policy-byte",
        lambda s: Req(
            replace(
                signed(s, ip="127.0.0.1"),
                "Policy",
                cloudfront_b64encode(
                    cloudfront_b64decode(value_of(signed(s, ip="127.0.0.1"), "Policy")).replace(
                        str(NOW + 300).encode(), str(NOW + 900).encode()
                    )
                ),
            )
        ),
        403,
        "AccessDenied",
    ),
    (
        "policy-without-date-less-than",
        lambda s: Req(
            hand_signed(s, policy_json(s, {"DateGreaterThan": {"AWS:EpochTime": NOW - 60}}))
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-not-json",
        lambda s: Req(hand_signed(s, b"Statement: everything")),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-not-base64",
        lambda s: Req(replace(signed(s, ip="127.0.0.1"), "Policy", "!!!!")),
        403,
        "MalformedPolicy",
    ),
    ("policy-standard-base64", lambda s: Req(standard_b64_policy_url(s)), 403, "MalformedPolicy"),
    (
        "policy-empty",
        lambda s: Req(replace(signed(s, ip="127.0.0.1"), "Policy", "")),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-date-as-a-string",
        lambda s: Req(
            hand_signed(s, policy_json(s, {"DateLessThan": {"AWS:EpochTime": str(NOW + 60)}}))
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-misspelt-condition",
        lambda s: Req(
            hand_signed(
                s,
                policy_json(
                    s,
                    {
                        "DateLessThan": {"AWS:EpochTime": NOW + 60},
                        "DateGreaterThen": {"AWS:EpochTime": 1},
                    },
                ),
            )
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-ipv6-source",
        lambda s: Req(
            hand_signed(
                s,
                policy_json(
                    s,
                    {
                        "DateLessThan": {"AWS:EpochTime": NOW + 60},
                        "IpAddress": {"AWS:SourceIp": "::1/128"},
                    },
                ),
            )
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-with-two-statements",
        lambda s: Req(
            hand_signed(
                s,
                json.dumps(
                    {
                        "Statement": [
                            json.loads(
                                policy_json(s, {"DateLessThan": {"AWS:EpochTime": NOW + 60}})
                            )["Statement"][0]
                        ]
                        * 2
                    }
                ).encode(),
            )
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "policy-nested-too-deep",
        lambda s: Req(hand_signed(s, b"[" * 3000 + b"]" * 3000)),
        403,
        "MalformedPolicy",
    ),
    # cookies
    (
        "cookie-without-signature",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            cookies_header(without(folder_cookies(s), "CloudFront-Signature")),
        ),
        403,
        "AccessDenied",
    ),
    (
        "cookie-without-key-pair-id",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            cookies_header(without(folder_cookies(s), "CloudFront-Key-Pair-Id")),
        ),
        403,
        "MissingKey",
    ),
    (
        "cookie-with-an-unknown-key",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            cookies_header({**folder_cookies(s), "CloudFront-Key-Pair-Id": "KNOTINTHEGROUP"}),
        ),
        403,
        "InvalidKey",
    ),
    (
        "cookie-policy-for-another-path",
        lambda s: Req(
            target_of(s.url(VIDEO)), cookies_header(folder_cookies(s, s.base + "/hls/*"))
        ),
        403,
        "AccessDenied",
    ),
    (
        "canned-cookie-for-another-url",
        lambda s: Req(
            target_of(s.url(VIDEO)), cookies_header(folder_cookies(s, s.url("premium/b.mp4")))
        ),
        403,
        "AccessDenied",
    ),
    (
        "cookie-expired",
        lambda s: Req(target_of(s.url(VIDEO)), cookies_header(folder_cookies(s, expires_at=NOW))),
        403,
        "AccessDenied",
    ),
    (
        "cookie-garbled-policy",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            cookies_header({**folder_cookies(s), "CloudFront-Policy": "e30=%%"}),
        ),
        403,
        "MalformedPolicy",
    ),
    (
        "cookie-hash-algorithm-stripped",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            cookies_header(without(folder_cookies(s), "CloudFront-Hash-Algorithm")),
        ),
        403,
        "AccessDenied",
    ),
    (
        "bad-url-wins-over-valid-cookies",
        lambda s: Req(
            replace(signed(s), "Signature", flip(value_of(signed(s), "Signature"))),
            cookies_header(folder_cookies(s)),
        ),
        403,
        "AccessDenied",
    ),
    (
        "expired-url-wins-over-valid-cookies",
        lambda s: Req(signed(s, expires_at=NOW), cookies_header(folder_cookies(s))),
        403,
        "AccessDenied",
    ),
    (
        "a-lone-expires-parameter-makes-it-a-url-request",
        lambda s: Req(
            target_of(s.url(VIDEO)) + f"?Expires={NOW + 60}", cookies_header(folder_cookies(s))
        ),
        403,
        "MissingKey",
    ),
    # malformed input is a 4xx, never a 5xx
    (
        "odd-cookies",
        lambda s: Req(
            target_of(s.url(VIDEO)),
            {"Cookie": ";;; =; CloudFront-Key-Pair-Id; ==CloudFront-Policy=;x"},
        ),
        403,
        "MissingKey",
    ),
    (
        "odd-query",
        lambda s: Req(target_of(s.url(VIDEO)) + "?&&=&Key-Pair-Id&Signature==&Policy=%zz"),
        403,
        "MissingKey",
    ),
    ("huge-query", lambda s: Req(target_of(s.url(VIDEO)) + "?q=" + "x" * 9000), 414, "UriTooLong"),
]


@pytest.mark.parametrize(
    ("build", "status", "code"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_tampered_request_is_refused_with_cloudfronts_code(
    stack: EdgeStack, build: Callable[[EdgeStack], Req], status: int, code: str
) -> None:
    request = build(stack)
    got_status, headers, body = raw_request(
        stack, request.target, headers=request.headers, host=request.host
    )
    assert (got_status, error_code(body)) == (status, code)
    assert headers["Content-Type"] == "text/xml"
    assert OBJECTS[VIDEO][:64] not in body
    assert OBJECTS["premium/b.mp4"][:32] not in body


def test_there_are_at_least_thirty_distinct_tamperings() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


def test_each_untampered_starting_point_is_accepted(stack: EdgeStack) -> None:
    """The cases above fail because of the one change, not because the baseline was bad."""
    baselines = [
        signed(stack),
        signed(stack, kind="rsa"),
        signed(stack, kind="rsa", hash_algorithm="SHA256"),
        signed(stack, query="a=1&b=2"),
        signed(stack, ip="127.0.0.1"),
        signed(stack, resource=stack.base + "/videos/*"),
        signed(stack, resource=stack.base + "/videos/a*"),
        hand_signed(stack, policy_json(stack, {"DateLessThan": {"AWS:EpochTime": NOW + 60}})),
    ]
    for target in baselines:
        status, _, body = raw_request(stack, target)
        assert status == 200, (target, body[:200])
        assert body == OBJECTS[VIDEO]
    status, _, body = raw_request(
        stack, target_of(stack.url(VIDEO)), headers=cookies_header(folder_cookies(stack))
    )
    assert (status, body) == (200, OBJECTS[VIDEO])


def test_a_head_request_is_refused_the_same_way_without_a_body(stack: EdgeStack) -> None:
    status, headers, body = raw_request(stack, drop(signed(stack), "Hash-Algorithm"), method="HEAD")
    assert status == 403
    assert body == b""
    assert headers["Content-Type"] == "text/xml"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
    query=st.text(max_size=200),
    cookie=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200),
    range_header=st.one_of(st.none(), st.text(max_size=30)),
)
def test_arbitrary_input_never_yields_a_server_error(
    stack: EdgeStack, path: str, query: str, cookie: str, range_header: str | None
) -> None:
    # use_cookies=False: otherwise werkzeug's client drops HTTP_COOKIE from the
    # overrides and the cookie input never reaches the edge.
    client = Client(stack.app, use_cookies=False)
    environ: dict[str, Any] = {
        "RAW_URI": "/" + path + ("?" + query if query else ""),
        "HTTP_COOKIE": cookie,
        "REMOTE_ADDR": "127.0.0.1",
    }
    if range_header is not None:
        environ["HTTP_RANGE"] = range_header
    response = client.get(
        "/", environ_overrides=environ, headers={"Host": f"127.0.0.1:{stack.port}"}
    )
    assert response.status_code < 500, response.data[:300]
    # No valid signature can be made up from random text: never any object bytes.
    assert response.status_code >= 400 or response.headers.get("Content-Type", "").startswith(
        "application/xml"
    ), (response.status_code, response.data[:100])

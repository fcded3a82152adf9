"""Signer ↔ local CloudFront edge, over HTTP, against the AWS emulator's S3.

Every grant our signer can issue (ECDSA/SHA-256, RSA/SHA-1, RSA/SHA-256;
canned and custom; wildcards, IP ranges, start times; URLs and cookies) is
accepted by the edge, and so are URLs from botocore's own ``CloudFrontSigner``.
``EdgeStack`` / ``start_edge_stack`` are shared with the tampering and range
tests of this folder.
"""

from __future__ import annotations

import http.client
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.keys import (
    SigningKeyUnavailableError,
    generate_key_pair,
    load_private_key_from_secret,
    store_private_key,
)
from app.local.edge import EdgeApp, EdgeServer, serve_edge
from app.local.emulator import Emulator
from app.signing import (
    PrivateKey,
    UrlSigner,
    load_private_key,
    object_key_to_path,
    public_key_pem,
)

pytestmark = pytest.mark.integration

NOW = 1_800_000_000  # the edge's and the signers' clock (a fixed, settable clock)
TRUSTED = {"ec": "KECDSATRUSTED1", "rsa": "KRSATRUSTED01"}
OBJECTS: dict[str, bytes] = {
    "videos/a.mp4": random.Random(1).randbytes(100_000),
    "videos/with space+plus%percent é.mp4": b"special key " * 100,
    "videos/日本語/ü.mp4": b"unicode key " * 50,
    "videos/empty.bin": b"",
    "premium/b.mp4": b"premium only " * 100,
    "posters/a.jpg": b"\xff\xd8poster\xff\xd9",
    "hls/v1/index.m3u8": b"#EXTM3U\n#EXTINF:4.0,\nseg0.ts\n",
    "hls/v1/seg0.ts": b"G" * 188 * 20,
}
CONTENT_TYPES = {"videos/a.mp4": "video/mp4", "posters/a.jpg": "image/jpeg"}


class FakeClock:
    """A clock the tests set; the edge (in its server thread) and signers read it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@cache
def private_key(name: str) -> PrivateKey:
    """Keys minted once per test session: ec / rsa are trusted, untrusted-* are not."""
    algorithm = "rsa-2048" if name.endswith("rsa") else "ecdsa-p256"
    return load_private_key(generate_key_pair(algorithm).private_pem)  # type: ignore[arg-type]


@dataclass
class EdgeStack:
    """A private bucket with the test objects and an edge serving it on a free port."""

    bucket: str
    s3: Any
    app: EdgeApp
    server: EdgeServer
    clock: FakeClock
    objects: dict[str, bytes] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, key: str) -> str:
        return self.base + object_key_to_path(key)

    def signer(self, kind: str = "ec", **kwargs: Any) -> UrlSigner:
        """A signer with a trusted key (``ec``/``rsa``) or an untrusted one under a trusted id."""
        key_id = kwargs.pop("key_pair_id", TRUSTED.get(kind.removeprefix("untrusted-"), "KUNKNOWN"))
        return UrlSigner(key_id, private_key(kind), base_url=self.base, clock=self.clock, **kwargs)


def create_private_bucket(s3: Any, objects: dict[str, bytes]) -> str:
    bucket = f"vidgate-edge-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    for key, body in objects.items():
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPES.get(key, "binary/octet-stream"),
        )
    return bucket


def start_edge_stack(
    session: boto3.Session,
    *,
    objects: dict[str, bytes] | None = None,
    s3_client: Any = None,
    chunk_size: int = 256 * 1024,
) -> EdgeStack:
    """Create a bucket with ``objects`` (default: OBJECTS) and serve it through a new edge."""
    s3 = session.client("s3")
    objects = OBJECTS if objects is None else objects
    bucket = create_private_bucket(s3, objects)
    clock = FakeClock(NOW)
    app = EdgeApp(
        s3_client=s3_client or s3,
        bucket=bucket,
        trusted_keys={
            TRUSTED["ec"]: public_key_pem(private_key("ec")),
            TRUSTED["rsa"]: public_key_pem(private_key("rsa")).decode(),
        },
        clock=clock,
        chunk_size=chunk_size,
    )
    return EdgeStack(bucket, s3, app, serve_edge(app), clock, dict(objects))


def raw_request(
    stack: EdgeStack,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` byte for byte (``requests`` would normalise ``..`` and escapes)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{stack.port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def target_of(url: str) -> str:
    """The request target (path and query) of an absolute URL, untouched."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def error_code(body: bytes) -> str:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'), body[:200]
    return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()


@pytest.fixture(scope="module")
def stack(boto_session: boto3.Session) -> Iterator[EdgeStack]:
    started = start_edge_stack(boto_session)
    yield started
    started.server.stop()


@pytest.fixture(autouse=True)
def _reset_clock(stack: EdgeStack) -> None:
    stack.clock.now = NOW


# --- our signer's URLs ------------------------------------------------------------------

SIGNERS = [
    pytest.param("ec", None, id="ecdsa-sha256"),
    pytest.param("rsa", None, id="rsa-sha1"),
    pytest.param("rsa", "SHA256", id="rsa-sha256"),
]


@pytest.mark.parametrize(("kind", "hash_algorithm"), SIGNERS)
@pytest.mark.parametrize(
    "grant",
    [
        {},
        {"starts_at": NOW - 60},
        {"resource": "{base}/videos/*"},
        {"resource": "{base}/videos/a.mp4*"},
        {"resource": "*://127.0.0.1:*/videos/a.mp4"},
        {"ip": "127.0.0.0/8"},
        {"ip": "127.0.0.1"},
        {"ip": "127.0.0.1", "starts_at": NOW - 1, "resource": "http://127.0.0.1:*/vid?os/*"},
    ],
    ids=[
        "canned",
        "start-in-past",
        "folder-wildcard",
        "trailing-wildcard",
        "any-scheme-port",
        "ip-range",
        "ip-host",
        "everything",
    ],
)
def test_urls_from_our_signer_are_served(
    stack: EdgeStack, kind: str, hash_algorithm: str | None, grant: dict[str, Any]
) -> None:
    signer = stack.signer(kind, hash_algorithm=hash_algorithm)
    if "resource" in grant:
        grant = {**grant, "resource": grant["resource"].format(base=stack.base)}
    url = signer.sign_url(stack.url("videos/a.mp4"), expires_at=NOW + 300, **grant)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.content == OBJECTS["videos/a.mp4"]
    assert response.headers["Content-Type"] == "video/mp4"


@pytest.mark.parametrize("key", [key for key in OBJECTS if key.startswith("videos/")])
def test_keys_with_spaces_plus_percent_and_non_ascii_are_served_by_url_for_key(
    stack: EdgeStack, key: str
) -> None:
    signed = stack.signer().url_for_key(key, 300)
    assert signed.expires_at == NOW + 300
    response = requests.get(signed.url, timeout=10)
    assert response.status_code == 200
    assert response.content == OBJECTS[key]


def test_the_viewers_own_query_parameters_before_expires_are_part_of_the_grant(
    stack: EdgeStack,
) -> None:
    url = stack.signer().sign_url(
        stack.url("videos/a.mp4") + "?lang=en&q=a%20b", expires_at=NOW + 60
    )
    status, _, body = raw_request(stack, target_of(url))
    assert status == 200
    assert body == OBJECTS["videos/a.mp4"]


def test_an_escaped_query_in_a_custom_resource_allows_matching_parameters(stack: EdgeStack) -> None:
    signer = stack.signer()
    resource = stack.url("videos/a.mp4") + "\\?lang=*"
    good = signer.sign_url(
        stack.url("videos/a.mp4") + "?lang=fr", expires_at=NOW + 60, resource=resource
    )
    bad = signer.sign_url(
        stack.url("videos/a.mp4") + "?size=xl", expires_at=NOW + 60, resource=resource
    )
    assert requests.get(good, timeout=10).status_code == 200
    assert raw_request(stack, target_of(bad))[0] == 403


def test_a_grant_is_good_until_the_second_before_it_expires(stack: EdgeStack) -> None:
    url = stack.signer().sign_url(stack.url("videos/a.mp4"), expires_at=NOW + 10)
    stack.clock.now = NOW + 9
    assert requests.get(url, timeout=10).status_code == 200
    stack.clock.now = NOW + 10
    assert requests.get(url, timeout=10).status_code == 403


def test_a_start_time_is_honoured_from_the_second_after_it(stack: EdgeStack) -> None:
    url = stack.signer(skew_seconds=0).sign_url(
        stack.url("videos/a.mp4"), expires_at=NOW + 100, starts_at=NOW + 10
    )
    stack.clock.now = NOW + 10
    assert requests.get(url, timeout=10).status_code == 403
    stack.clock.now = NOW + 11
    assert requests.get(url, timeout=10).status_code == 200


def test_the_skew_allowance_accepts_an_edge_clock_slightly_behind(stack: EdgeStack) -> None:
    url = stack.signer(skew_seconds=30).sign_url(
        stack.url("videos/a.mp4"), expires_at=NOW + 100, starts_at=NOW
    )
    stack.clock.now = NOW - 20
    assert requests.get(url, timeout=10).status_code == 200


# --- cookies ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "hash_algorithm"), SIGNERS)
def test_canned_cookies_from_our_signer_are_served(
    stack: EdgeStack, kind: str, hash_algorithm: str | None
) -> None:
    cookies = stack.signer(kind, hash_algorithm=hash_algorithm).sign_cookies(
        stack.url("hls/v1/index.m3u8"), expires_at=NOW + 60
    )
    assert "CloudFront-Expires" in cookies
    response = requests.get(stack.url("hls/v1/index.m3u8"), cookies=cookies, timeout=10)
    assert response.status_code == 200
    assert response.content == OBJECTS["hls/v1/index.m3u8"]


@pytest.mark.parametrize(("kind", "hash_algorithm"), SIGNERS)
def test_folder_cookies_from_our_signer_serve_every_file_of_the_folder(
    stack: EdgeStack, kind: str, hash_algorithm: str | None
) -> None:
    signed = stack.signer(kind, hash_algorithm=hash_algorithm).cookies_for_prefix("hls/v1/", 60)
    assert "CloudFront-Policy" in signed.cookies
    with requests.Session() as browser:
        browser.cookies.update(signed.cookies)
        for key in ("hls/v1/index.m3u8", "hls/v1/seg0.ts"):
            response = browser.get(stack.url(key), headers={"Range": "bytes=0-187"}, timeout=10)
            assert response.status_code == 206
            assert response.content == OBJECTS[key][:188]
        assert browser.get(stack.url("videos/a.mp4"), timeout=10).status_code == 403


def test_cookies_with_an_ip_range_and_start_time_are_served(stack: EdgeStack) -> None:
    cookies = stack.signer().sign_cookies(
        stack.base + "/hls/*", expires_at=NOW + 60, starts_at=NOW - 5, ip="127.0.0.0/24"
    )
    response = requests.get(stack.url("hls/v1/seg0.ts"), cookies=cookies, timeout=10)
    assert response.status_code == 200


# --- botocore's own signer ----------------------------------------------------------------


def rsa_sha1(message: bytes) -> bytes:
    key = private_key("rsa")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(message, padding.PKCS1v15(), hashes.SHA1())


def ec_sha1(message: bytes) -> bytes:
    key = private_key("ec")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(message, ec.ECDSA(hashes.SHA1()))


def test_a_canned_url_from_botocores_cloudfront_signer_is_served(stack: EdgeStack) -> None:
    signer = CloudFrontSigner(TRUSTED["rsa"], rsa_sha1)
    url = signer.generate_presigned_url(
        stack.url("videos/a.mp4"), date_less_than=datetime.fromtimestamp(NOW + 60, tz=UTC)
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == OBJECTS["videos/a.mp4"]


def test_a_custom_url_from_botocores_cloudfront_signer_is_served(stack: EdgeStack) -> None:
    signer = CloudFrontSigner(TRUSTED["rsa"], rsa_sha1)
    policy = signer.build_policy(
        stack.base + "/videos/*",
        datetime.fromtimestamp(NOW + 60, tz=UTC),
        date_greater_than=datetime.fromtimestamp(NOW - 60, tz=UTC),
        ip_address="127.0.0.1",
    )
    url = signer.generate_presigned_url(
        stack.url("videos/with space+plus%percent é.mp4"), policy=policy
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == OBJECTS["videos/with space+plus%percent é.mp4"]


def test_botocore_with_an_ecdsa_key_signs_sha1_without_hash_algorithm_and_is_served(
    stack: EdgeStack,
) -> None:
    signer = CloudFrontSigner(TRUSTED["ec"], ec_sha1)
    url = signer.generate_presigned_url(
        stack.url("videos/a.mp4"), date_less_than=datetime.fromtimestamp(NOW + 60, tz=UTC)
    )
    assert "Hash-Algorithm" not in url
    assert requests.get(url, timeout=10).status_code == 200


# --- the rest of the distribution ---------------------------------------------------------


def test_a_poster_is_public_while_a_video_needs_a_signature(stack: EdgeStack) -> None:
    poster = requests.get(stack.url("posters/a.jpg"), timeout=10)
    assert poster.status_code == 200
    assert poster.content == OBJECTS["posters/a.jpg"]
    assert poster.headers["Content-Type"] == "image/jpeg"
    video = requests.get(stack.url("videos/a.mp4"), timeout=10)
    assert video.status_code == 403
    assert error_code(video.content) == "MissingKey"
    assert video.headers["Content-Type"] == "text/xml"


def test_a_missing_object_under_a_valid_grant_is_404(stack: EdgeStack) -> None:
    response = requests.get(stack.signer().url_for_key("videos/nope.mp4", 60).url, timeout=10)
    assert response.status_code == 404
    assert error_code(response.content) == "NoSuchKey"


def test_a_missing_poster_is_404_too(stack: EdgeStack) -> None:
    assert requests.get(stack.url("posters/nope.jpg"), timeout=10).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_methods_other_than_get_and_head_are_refused_even_with_a_grant(
    stack: EdgeStack, method: str
) -> None:
    url = stack.signer().url_for_key("videos/a.mp4", 60).url
    response = requests.request(method, url, data=b"x", timeout=10)
    assert response.status_code == 403
    assert error_code(response.content) == "MethodNotAllowed"
    assert (
        stack.s3.get_object(Bucket=stack.bucket, Key="videos/a.mp4")["Body"].read()
        == OBJECTS["videos/a.mp4"]
    )


def test_an_unsigned_request_straight_to_the_bucket_gets_nothing(
    stack: EdgeStack, emulator: Emulator
) -> None:
    anonymous = boto3.client(
        "s3", endpoint_url=emulator.endpoint, config=Config(signature_version=UNSIGNED)
    )
    for key in ("videos/a.mp4", "posters/a.jpg"):
        with pytest.raises(ClientError) as caught:
            anonymous.get_object(Bucket=stack.bucket, Key=key)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    response = requests.get(f"{emulator.endpoint}/{stack.bucket}/videos/a.mp4", timeout=10)
    assert response.status_code == 403
    assert OBJECTS["videos/a.mp4"][:64] not in response.content


def test_a_key_stored_in_secrets_manager_signs_urls_the_edge_accepts(
    stack: EdgeStack, boto_session: boto3.Session
) -> None:
    secrets = boto_session.client("secretsmanager")
    secret_id = f"vidgate/test/{uuid.uuid4().hex[:8]}"
    pair = generate_key_pair("ecdsa-p256")
    store_private_key(secrets, secret_id, pair.private_pem)
    store_private_key(secrets, secret_id, pair.private_pem)
    versions = secrets.list_secret_version_ids(SecretId=secret_id)["Versions"]
    assert len(versions) == 1
    key = load_private_key_from_secret(secrets, secret_id)
    edge = EdgeApp(
        s3_client=stack.s3,
        bucket=stack.bucket,
        trusted_keys={"KSECRET": pair.public_pem},
        clock=stack.clock,
    )
    with serve_edge(edge) as server:
        signer = UrlSigner("KSECRET", key, base_url=server.url, clock=stack.clock)
        response = requests.get(signer.url_for_key("videos/a.mp4", 60).url, timeout=10)
    assert response.status_code == 200
    assert response.content == OBJECTS["videos/a.mp4"]


def test_a_missing_secret_is_a_typed_error_not_a_default_key(boto_session: boto3.Session) -> None:
    secrets = boto_session.client("secretsmanager")
    with pytest.raises(SigningKeyUnavailableError) as caught:
        load_private_key_from_secret(secrets, "vidgate/test/does-not-exist")
    assert "vidgate/test/does-not-exist" in str(caught.value)


def test_a_secret_holding_garbage_is_a_typed_error(boto_session: boto3.Session) -> None:
    secrets = boto_session.client("secretsmanager")
    secret_id = f"vidgate/test/{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=secret_id, SecretString="-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(SigningKeyUnavailableError):
        load_private_key_from_secret(secrets, secret_id)


def test_serve_edge_refuses_a_busy_port(stack: EdgeStack) -> None:
    from app.local.ports import PortBusyError

    with pytest.raises(PortBusyError):
        serve_edge(stack.app, stack.port)

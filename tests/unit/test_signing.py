"""The CloudFront signer, its encodings and key handling, checked with our own keys.

AWS publishes no end-to-end signature vector (docs/cloudfront-signing.md#cp-6), so the
tests verify every signature with the public half of a key they minted; the
encoding vectors (P-2, CP-6) come from docs/cloudfront-signing.md.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.errors import ConfigurationError, DependencyUnavailableError
from app.keys import (
    SigningKeyUnavailableError,
    generate_key_pair,
    load_private_key_from_secret,
    store_private_key,
)
from app.signing import (
    InvalidObjectKeyError,
    SignedCookies,
    SignedFolder,
    SignedUrl,
    UnsupportedSigningKeyError,
    UrlSigner,
    cloudfront_b64decode,
    cloudfront_b64encode,
    load_private_key,
    load_public_key,
    public_key_pem,
)

P2_RESOURCE = "https://d111111abcdef8.cloudfront.net/horizon.jpg?size=large&license=yes"
P2_POLICY = (
    '{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/horizon.jpg?size=large'
    '&license=yes","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}'
)
P2_ENCODED = (
    "eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cHM6Ly9kMTExMTExYWJjZGVmOC5jbG91ZGZyb250Lm5ldC9ob3Jp"
    "em9uLmpwZz9zaXplPWxhcmdlJmxpY2Vuc2U9eWVzIiwiQ29uZGl0aW9uIjp7IkRhdGVMZXNzVGhhbiI6eyJBV1M6RXBv"
    "Y2hUaW1lIjoxMzU3MDM0NDAwfX19XX0_"
)
CP6_ENCODED = (
    "eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cDovL2QxMTExMTFhYmNkZWY4LmNsb3VkZnJvbnQubmV0L2dhbWVf"
    "ZG93bmxvYWQuemlwIiwiQ29uZGl0aW9uIjp7IklwQWRkcmVzcyI6eyJBV1M6U291cmNlSXAiOiIxOTIuMC4yLjAvMjQi"
    "fSwiRGF0ZUxlc3NUaGFuIjp7IkFXUzpFcG9jaFRpbWUiOjE0MjY1MDAwMDB9fX1dfQ__"
)
CP6_POLICY = (
    '{"Statement":[{"Resource":"http://d111111abcdef8.cloudfront.net/game_download.zip",'
    '"Condition":{"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateLessThan":'
    '{"AWS:EpochTime":1426500000}}}]}'
)
BASE = "https://d111111abcdef8.cloudfront.net"
EXPIRES = 1_800_000_000


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def query(url: str) -> dict[str, str]:
    return dict(piece.split("=", 1) for piece in url.split("?", 1)[1].split("&"))


def verify(key: Any, signature: bytes, message: bytes, digest: hashes.HashAlgorithm) -> None:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, message, padding.PKCS1v15(), digest)
    else:
        public.verify(signature, message, ec.ECDSA(digest))


# --- encodings ------------------------------------------------------------------


def test_cloudfront_base64_matches_the_reference_canned_vector() -> None:
    assert cloudfront_b64encode(P2_POLICY.encode()) == P2_ENCODED


def test_cloudfront_base64_decodes_the_reference_cookie_policy_byte_for_byte() -> None:
    assert cloudfront_b64decode(CP6_ENCODED).decode() == CP6_POLICY
    assert cloudfront_b64encode(CP6_POLICY.encode()) == CP6_ENCODED


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(CP6_POLICY.encode()).decode(),  # standard: "=" padding
        base64.urlsafe_b64encode(CP6_POLICY.encode()).decode().rstrip("="),  # RFC 4648 url
        CP6_ENCODED.rstrip("_"),  # unpadded
        CP6_ENCODED + "_",  # over-padded
        "ab+/",  # standard alphabet
        "abc=",
        "a_bc",  # padding in the middle
        "abd_",  # non-zero trailing bits: not canonical
        "ab cd",
        "é",
    ],
)
def test_cloudfront_base64_refuses_every_other_flavour(text: str) -> None:
    with pytest.raises(ValueError):
        cloudfront_b64decode(text)


# --- canned URLs ----------------------------------------------------------------


def test_a_canned_url_signs_exactly_the_documented_canned_policy_with_rsa_sha1() -> None:
    signer = UrlSigner("K2JCJMDEHXQW5F", rsa_key())
    url = signer.sign_url(P2_RESOURCE, expires_at=1357034400)
    assert url.startswith(P2_RESOURCE + "&Expires=1357034400&Signature=")
    params = query(url)
    assert list(params) == ["size", "license", "Expires", "Signature", "Key-Pair-Id"]
    assert params["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    verify(rsa_key(), cloudfront_b64decode(params["Signature"]), P2_POLICY.encode(), hashes.SHA1())


def test_an_ecdsa_url_uses_sha256_der_signatures_and_says_so() -> None:
    signer = UrlSigner("KEC", ec_key())
    url = signer.sign_url(P2_RESOURCE, expires_at=1357034400)
    params = query(url)
    assert url.endswith("&Key-Pair-Id=KEC&Hash-Algorithm=SHA256")
    signature = cloudfront_b64decode(params["Signature"])
    assert signature[0] == 0x30  # an ASN.1 SEQUENCE, not raw r||s
    decode_dss_signature(signature)
    verify(ec_key(), signature, P2_POLICY.encode(), hashes.SHA256())


def test_rsa_can_sign_with_sha256_when_asked() -> None:
    url = UrlSigner("KRSA", rsa_key(), hash_algorithm="SHA256").sign_url(
        P2_RESOURCE, expires_at=1357034400
    )
    assert query(url)["Hash-Algorithm"] == "SHA256"
    signature = cloudfront_b64decode(query(url)["Signature"])
    verify(rsa_key(), signature, P2_POLICY.encode(), hashes.SHA256())


def test_ecdsa_with_sha1_is_refused_by_our_signer() -> None:
    with pytest.raises(ConfigurationError):
        UrlSigner("KEC", ec_key(), hash_algorithm="SHA1")


# --- custom policies --------------------------------------------------------------


def policy_of(url: str) -> dict[str, Any]:
    return json.loads(cloudfront_b64decode(query(url)["Policy"]))


def test_a_wildcard_resource_makes_a_custom_policy_with_that_resource() -> None:
    url = UrlSigner("KEC", ec_key()).sign_url(
        f"{BASE}/videos/a.mp4", expires_at=EXPIRES, resource=f"{BASE}/videos/*"
    )
    params = query(url)
    assert "Expires" not in params
    assert list(params) == ["Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm"]
    document = cloudfront_b64decode(params["Policy"])
    assert json.loads(document) == {
        "Statement": [
            {
                "Resource": f"{BASE}/videos/*",
                "Condition": {"DateLessThan": {"AWS:EpochTime": EXPIRES}},
            }
        ]
    }
    assert b" " not in document
    verify(ec_key(), cloudfront_b64decode(params["Signature"]), document, hashes.SHA256())


def test_an_ip_condition_turns_a_bare_address_into_a_slash_32() -> None:
    url = UrlSigner("KEC", ec_key()).sign_url(f"{BASE}/a.mp4", expires_at=EXPIRES, ip="192.0.2.7")
    condition = policy_of(url)["Statement"][0]["Condition"]
    assert condition["IpAddress"] == {"AWS:SourceIp": "192.0.2.7/32"}
    assert "DateGreaterThan" not in condition


def test_a_start_time_is_moved_back_by_the_skew_allowance() -> None:
    url = UrlSigner("KEC", ec_key(), skew_seconds=30).sign_url(
        f"{BASE}/a.mp4", expires_at=EXPIRES, starts_at=EXPIRES - 600
    )
    condition = policy_of(url)["Statement"][0]["Condition"]
    assert condition["DateGreaterThan"] == {"AWS:EpochTime": EXPIRES - 630}
    assert condition["DateLessThan"] == {"AWS:EpochTime": EXPIRES}


def test_a_custom_policy_never_gets_a_start_time_nobody_asked_for() -> None:
    url = UrlSigner("KEC", ec_key()).sign_url(
        f"{BASE}/a.mp4", expires_at=EXPIRES, resource=f"{BASE}/a.mp4*"
    )
    assert set(policy_of(url)["Statement"][0]["Condition"]) == {"DateLessThan"}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"ip": "2001:db8::1"}, "IPv6"),
        ({"ip": "192.0.2.7/24"}, "host bits"),
        ({"ip": "not-an-ip"}, "malformed"),
        ({"resource": "*"}, "every URL"),
        ({"resource": "*://*"}, "every URL"),
        ({"resource": "https://*/*"}, "every domain"),
        ({"resource": "ftp://host/a"}, "scheme"),
        ({"resource": "https://host/é"}, "non-ASCII"),
        ({"expires_at": 2**31}, "after 2038"),
        ({"expires_at": 0}, "zero"),
        ({"expires_at": True}, "a bool"),
        ({"starts_at": EXPIRES}, "start not before expiry"),
    ],
)
def test_the_signer_refuses_policies_cloudfront_would_not_honour(
    kwargs: dict[str, Any], problem: str
) -> None:
    arguments: dict[str, Any] = {"expires_at": EXPIRES, **kwargs}
    with pytest.raises(ValueError):
        UrlSigner("KEC", ec_key()).sign_url(f"{BASE}/a.mp4", **arguments)


@pytest.mark.parametrize(
    "url",
    [
        "/videos/a.mp4",
        "d111.cloudfront.net/a.mp4",
        f"{BASE}/a.mp4#t=10",
        f"{BASE}/a b.mp4",
        f"{BASE}/é.mp4",
        f"{BASE}/a.mp4?Expires=1",
        f"{BASE}/a.mp4?x=1&Signature=abc",
        f"{BASE}/a.mp4?Key-Pair-Id=K",
        f"{BASE}/a.mp4?Hash-Algorithm=SHA256",
        f"{BASE}/a.mp4?",
    ],
)
def test_the_signer_refuses_urls_it_cannot_sign_faithfully(url: str) -> None:
    with pytest.raises(ValueError):
        UrlSigner("KEC", ec_key()).sign_url(url, expires_at=EXPIRES)


# --- cookies -----------------------------------------------------------------------


def test_canned_cookies_carry_expires_signature_and_key_id() -> None:
    cookies = UrlSigner("KRSA", rsa_key()).sign_cookies(P2_RESOURCE, expires_at=1357034400)
    assert list(cookies) == ["CloudFront-Expires", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
    assert cookies["CloudFront-Expires"] == "1357034400"
    signature = cloudfront_b64decode(cookies["CloudFront-Signature"])
    verify(rsa_key(), signature, P2_POLICY.encode(), hashes.SHA1())


def test_wildcard_cookies_carry_a_custom_policy_and_the_hash_algorithm() -> None:
    cookies = UrlSigner("KEC", ec_key()).sign_cookies(
        f"{BASE}/hls/v1/*", expires_at=EXPIRES, ip="10.0.0.0/8"
    )
    assert list(cookies) == [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
        "CloudFront-Hash-Algorithm",
    ]
    assert cookies["CloudFront-Hash-Algorithm"] == "SHA256"
    document = cloudfront_b64decode(cookies["CloudFront-Policy"])
    statement = json.loads(document)["Statement"][0]
    assert statement["Resource"] == f"{BASE}/hls/v1/*"
    assert statement["Condition"]["IpAddress"] == {"AWS:SourceIp": "10.0.0.0/8"}
    signature = cloudfront_b64decode(cookies["CloudFront-Signature"])
    verify(ec_key(), signature, document, hashes.SHA256())


def test_an_escaped_query_in_a_cookie_resource_is_written_as_json_escaped_backslash() -> None:
    cookies = UrlSigner("KEC", ec_key()).sign_cookies(f"{BASE}/a.mp4\\?lang=*", expires_at=EXPIRES)
    document = cloudfront_b64decode(cookies["CloudFront-Policy"]).decode()
    assert '"Resource":"https://d111111abcdef8.cloudfront.net/a.mp4\\\\?lang=*"' in document


# --- object keys, clock --------------------------------------------------------------


def test_url_for_key_encodes_the_key_and_expires_ttl_after_the_signer_clock() -> None:
    signer = UrlSigner("KEC", ec_key(), base_url=BASE + "/", clock=lambda: 1_700_000_000.9)
    signed = signer.url_for_key("videos/a b+c é.mp4", 300)
    assert isinstance(signed, SignedUrl)
    assert signed.expires_at == 1_700_000_300
    assert signed.url.startswith(f"{BASE}/videos/a%20b%2Bc%20%C3%A9.mp4?Expires=1700000300&")


def test_cookies_for_prefix_grant_the_encoded_folder_and_below() -> None:
    signer = UrlSigner("KEC", ec_key(), base_url=BASE, clock=lambda: 1_700_000_000)
    signed = signer.cookies_for_prefix("hls/my video/", 120)
    assert isinstance(signed, SignedCookies)
    assert signed.expires_at == 1_700_000_120
    document = cloudfront_b64decode(signed.cookies["CloudFront-Policy"])
    assert json.loads(document)["Statement"][0]["Resource"] == f"{BASE}/hls/my%20video/*"


def test_a_folder_grant_names_the_entry_unsigned_and_signs_cookies_for_exactly_the_folder() -> None:
    signer = UrlSigner("KEC", ec_key(), base_url=BASE, clock=lambda: 1_700_000_000.5)
    signed = signer.sign_folder("videos/a/hls/", "videos/a/hls/master.m3u8", 120)

    assert isinstance(signed, SignedFolder)
    assert signed.expires_at == 1_700_000_120
    assert signed.lifetime_seconds == 120
    assert signed.resource == f"{BASE}/videos/a/hls/*"
    assert signed.url == f"{BASE}/videos/a/hls/master.m3u8"  # the cookies open it
    assert "CloudFront-Expires" not in signed.cookies
    document = cloudfront_b64decode(signed.cookies["CloudFront-Policy"])
    assert json.loads(document) == {
        "Statement": [
            {
                "Resource": f"{BASE}/videos/a/hls/*",
                "Condition": {"DateLessThan": {"AWS:EpochTime": 1_700_000_120}},
            }
        ]
    }
    signature = cloudfront_b64decode(signed.cookies["CloudFront-Signature"])
    verify(ec_key(), signature, document, hashes.SHA256())
    assert signed.cookies["CloudFront-Key-Pair-Id"] == "KEC"
    assert signed.cookies["CloudFront-Hash-Algorithm"] == "SHA256"


@pytest.mark.parametrize(
    ("folder", "entry"),
    [
        ("videos/a/hls", "videos/a/hls/master.m3u8"),  # "*" after "hls" would open "hlsx/"
        ("videos/a/hls/", "videos/b/hls/master.m3u8"),
        ("videos/a/hls/", "videos/a/master.m3u8"),
        ("videos/a/hls/", "videos/a/hls/"),
        ("videos/a/../b/", "videos/a/../b/master.m3u8"),
        ("/videos/a/hls/", "/videos/a/hls/master.m3u8"),
    ],
)
def test_a_folder_grant_refuses_an_open_folder_or_an_entry_outside_it(
    folder: str, entry: str
) -> None:
    signer = UrlSigner("KEC", ec_key(), base_url=BASE)
    with pytest.raises(InvalidObjectKeyError):
        signer.sign_folder(folder, entry, 60)


def test_url_for_key_needs_a_base_url() -> None:
    with pytest.raises(ConfigurationError):
        UrlSigner("KEC", ec_key()).url_for_key("videos/a.mp4", 60)


def test_signing_never_parses_a_key_again(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = UrlSigner("KEC", load_private_key(generate_key_pair().private_pem), base_url=BASE)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was parsed while signing")

    monkeypatch.setattr(serialization, "load_pem_private_key", forbidden)
    for index in range(3):
        signer.url_for_key(f"videos/{index}.mp4", 60)
        signer.cookies_for_prefix("hls/", 60)


@pytest.mark.parametrize("key_pair_id", ["", "K 1", "K&x=1", "K\n"])
def test_a_key_pair_id_that_would_break_the_url_is_refused(key_pair_id: str) -> None:
    with pytest.raises(ConfigurationError):
        UrlSigner(key_pair_id, ec_key())


# --- key loading -----------------------------------------------------------------------


def pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa-2048"])
def test_generated_pairs_load_and_their_halves_belong_together(algorithm: Any) -> None:
    pair = generate_key_pair(algorithm)
    private = load_private_key(pair.private_pem)
    assert public_key_pem(private) == pair.public_pem
    public = load_public_key(pair.public_pem)
    assert public_key_pem(public) == pair.public_pem
    assert pair.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    "make",
    [
        lambda: pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        lambda: pem(rsa.generate_private_key(public_exponent=65537, key_size=3072)),
        lambda: pem(ec.generate_private_key(ec.SECP384R1())),
        lambda: pem(ed25519.Ed25519PrivateKey.generate()),
        lambda: b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        lambda: b"",
        lambda: generate_key_pair().public_pem,
    ],
    ids=["rsa-1024", "rsa-3072", "p-384", "ed25519", "garbage", "empty", "public-key"],
)
def test_keys_cloudfront_does_not_accept_are_a_configuration_error(make: Any) -> None:
    with pytest.raises(UnsupportedSigningKeyError) as caught:
        load_private_key(make())
    assert isinstance(caught.value, ConfigurationError)


def test_an_unusable_public_key_is_refused_too() -> None:
    public = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(UnsupportedSigningKeyError):
        load_public_key(public_key_pem(public))


def test_generate_key_pair_refuses_unknown_algorithms() -> None:
    with pytest.raises(ValueError):
        generate_key_pair("dsa-1024")  # type: ignore[arg-type]


# --- Secrets Manager (a fake that records state) ------------------------------------------


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class FakeSecrets:
    """Secrets Manager's create/put/get as state: secret id → list of versions."""

    def __init__(self) -> None:
        self.versions: dict[str, list[Any]] = {}
        self.fail_with: Exception | None = None

    def create_secret(self, *, Name: str, SecretString: str, **_: Any) -> dict[str, Any]:
        if Name in self.versions:
            raise client_error("ResourceExistsException", "CreateSecret")
        self.versions[Name] = [SecretString]
        return {"Name": Name}

    def put_secret_value(self, *, SecretId: str, SecretString: str) -> dict[str, Any]:
        self.versions[SecretId].append(SecretString)
        return {"Name": SecretId}

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        if SecretId not in self.versions:
            raise client_error("ResourceNotFoundException", "GetSecretValue")
        value = self.versions[SecretId][-1]
        return {"SecretBinary": value} if isinstance(value, bytes) else {"SecretString": value}


def test_a_stored_key_loads_back_and_storing_it_again_adds_no_version() -> None:
    secrets = FakeSecrets()
    pair = generate_key_pair()
    store_private_key(secrets, "vidgate/signing", pair.private_pem)
    store_private_key(secrets, "vidgate/signing", pair.private_pem)
    assert len(secrets.versions["vidgate/signing"]) == 1
    key = load_private_key_from_secret(secrets, "vidgate/signing")
    assert public_key_pem(key) == pair.public_pem


def test_storing_a_new_key_puts_a_new_version() -> None:
    secrets = FakeSecrets()
    store_private_key(secrets, "s", generate_key_pair().private_pem)
    second = generate_key_pair("rsa-2048")
    store_private_key(secrets, "s", second.private_pem)
    assert len(secrets.versions["s"]) == 2
    assert public_key_pem(load_private_key_from_secret(secrets, "s")) == second.public_pem


def test_a_bad_key_is_never_stored() -> None:
    secrets = FakeSecrets()
    with pytest.raises(UnsupportedSigningKeyError):
        store_private_key(secrets, "s", b"not a key")
    assert secrets.versions == {}


def test_a_key_in_secret_binary_loads_too() -> None:
    secrets = FakeSecrets()
    pair = generate_key_pair()
    secrets.versions["s"] = [pair.private_pem]
    assert public_key_pem(load_private_key_from_secret(secrets, "s")) == pair.public_pem


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda s: None, "ResourceNotFoundException"),
        (lambda s: s.versions.update({"vidgate/signing": ["not a pem"]}), "not a usable key"),
        (lambda s: s.versions.update({"vidgate/signing": [""]}), "no value"),
        (
            lambda s: setattr(
                s, "fail_with", client_error("AccessDeniedException", "GetSecretValue")
            ),
            "AccessDeniedException",
        ),
        (
            lambda s: setattr(s, "fail_with", EndpointConnectionError(endpoint_url="http://x")),
            "unreachable",
        ),
    ],
    ids=["missing", "malformed", "empty", "access-denied", "endpoint-down"],
)
def test_an_unavailable_key_is_a_typed_error_naming_the_secret(setup: Any, reason: str) -> None:
    secrets = FakeSecrets()
    setup(secrets)
    with pytest.raises(SigningKeyUnavailableError) as caught:
        load_private_key_from_secret(secrets, "vidgate/signing")
    error = caught.value
    assert error.secret_id == "vidgate/signing"
    assert "'vidgate/signing'" in str(error)
    assert reason in str(error)
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, DependencyUnavailableError)
    assert error.status == 503

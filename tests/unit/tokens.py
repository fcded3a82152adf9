"""Test kit for the token verifier: our own keys, JWKS, tokens, a fake JWKS endpoint.

Nothing here is a mock of the code under test: keys are real RSA/EC keys,
tokens are real JWS compact serialisations (with any header, payload or
signature we like, including broken ones), and :class:`FakeJwksEndpoint`
is a fetcher that keeps state (what it serves, whether it is down, how
often it was asked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.auth import CognitoVerifier, TokenUse
from app.auth.jwks import JwksCache

REGION = "us-east-1"
POOL_ID = "us-east-1_TestPool1"
OTHER_POOL_ID = "us-east-1_OtherPool"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
OTHER_ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{OTHER_POOL_ID}"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
CLIENT_ID = "5example0client0id00000000"
OTHER_CLIENT_ID = "6another0client0id0000000"
NOW = 1_700_000_000
LEEWAY = 5
KID = "key-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: object) -> str:
    """One token segment: JSON-encode dicts/lists/..., use bytes as they are."""
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return b64url(raw)


def _uint(number: int) -> str:
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class RsaKey:
    """An RSA key pair with its kid, able to sign and to describe itself as a JWK."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, **extra: object) -> dict[str, object]:
        numbers = self.private_key.public_key().public_numbers()
        jwk: dict[str, object] = {
            "kid": self.kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }
        jwk.update(extra)
        return {k: v for k, v in jwk.items() if v is not None}

    def sign(self, data: bytes, hash_algorithm: hashes.HashAlgorithm | None = None) -> bytes:
        return self.private_key.sign(data, padding.PKCS1v15(), hash_algorithm or hashes.SHA256())

    def sign_pss(self, data: bytes) -> bytes:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return self.private_key.sign(data, pss, hashes.SHA256())


@cache
def _private_key(name: str, bits: int) -> rsa.RSAPrivateKey:
    # Cached per name: generating a 2048-bit key takes tens of milliseconds.
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def rsa_key(kid: str = KID, *, name: str | None = None, bits: int = 2048) -> RsaKey:
    """The same key pair for the same ``name`` (default: the kid) within a test run."""
    return RsaKey(kid=kid, private_key=_private_key(name or kid, bits))


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign_es256(data: bytes) -> bytes:
    r, s = decode_dss_signature(ec_key().sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def jwks_document(*keys: RsaKey | dict[str, object], **extra: object) -> dict[str, object]:
    return {"keys": [k.jwk() if isinstance(k, RsaKey) else k for k in keys], **extra}


def jwks_bytes(*keys: RsaKey | dict[str, object]) -> bytes:
    return json.dumps(jwks_document(*keys)).encode()


def access_claims(**overrides: object) -> dict[str, object]:
    """A Cognito access token payload (shape as the emulator and AWS issue it)."""
    claims: dict[str, object] = {
        "sub": "11111111-2222-3333-4444-555555555555",
        "cognito:groups": ["admin"],
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": "aaaaaaaa-0000-0000-0000-000000000000",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "bbbbbbbb-0000-0000-0000-000000000000",
        "username": "alice",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


def id_claims(**overrides: object) -> dict[str, object]:
    """A Cognito id token payload."""
    claims: dict[str, object] = {
        "sub": "11111111-2222-3333-4444-555555555555",
        "cognito:groups": ["admin"],
        "email_verified": True,
        "iss": ISSUER,
        "cognito:username": "alice",
        "origin_jti": "aaaaaaaa-0000-0000-0000-000000000000",
        "aud": CLIENT_ID,
        "token_use": "id",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "cccccccc-0000-0000-0000-000000000000",
        "email": "alice@example.com",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()
"""Pass as a claim or header value to leave that entry out."""


def mint(
    payload: object,
    *,
    key: RsaKey | None = None,
    header: dict[str, object] | bytes | None = None,
    signer: Callable[[bytes], bytes] | None = None,
    **header_extra: object,
) -> str:
    """A compact JWS.

    :param payload: a dict/list/... (JSON-encoded) or raw bytes for the segment.
    :param key: signs with RS256 (default :func:`rsa_key`) unless ``signer`` is given.
    :param header: replaces the default ``{"alg": "RS256", "kid": key.kid}``.
    :param signer: ``signing_input -> signature bytes`` (e.g. HMAC, another key, b"").
    :param header_extra: merged into the header; :data:`DROP` removes an entry.
    """
    key = key or rsa_key()
    if not isinstance(header, bytes):
        merged: dict[str, object] = (
            dict(header) if header is not None else {"alg": "RS256", "kid": key.kid}
        )
        merged.update(header_extra)
        header = json.dumps(
            {k: v for k, v in merged.items() if v is not DROP}, separators=(",", ":")
        ).encode()
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = (signer or key.sign)(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def resign(token: str, key: RsaKey | None = None) -> str:
    """``token``'s first two segments with a fresh valid RS256 signature."""
    signing_input = token.rsplit(".", 1)[0]
    return f"{signing_input}.{b64url((key or rsa_key()).sign(signing_input.encode()))}"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeJwksEndpoint:
    """A fetcher with state: what it serves, whether it is down, who asked.

    ``body`` is served as-is when bytes, JSON-encoded otherwise. When ``down``
    it raises ``ConnectionRefusedError``. ``gate``, when set, makes each fetch
    wait for it (to hold a fetch in flight).
    """

    body: object = field(default_factory=lambda: jwks_document(rsa_key()))
    down: bool = False
    gate: threading.Event | None = None
    calls: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        self.started.set()
        if self.gate is not None and not self.gate.wait(timeout=10):
            raise TimeoutError("test gate never opened")
        if self.down:
            raise ConnectionRefusedError("JWKS endpoint is down")
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()

    @property
    def fetches(self) -> int:
        return len(self.calls)

    def serve(self, *keys: RsaKey | dict[str, object]) -> None:
        self.body = jwks_document(*keys)


def make_verifier(
    keys: JwksCache | FakeJwksEndpoint,
    token_use: TokenUse = "access",
    *,
    clock: Callable[[], float] | None = None,
    **options: Any,
) -> CognitoVerifier:
    """A verifier for the test pool and client, at :data:`NOW` with :data:`LEEWAY`.

    ``keys`` is a JwksCache, or a fake endpoint to put a fresh one in front of.
    """
    jwks = (
        keys if isinstance(keys, JwksCache) else JwksCache(JWKS_URL, fetch=keys, clock=FakeClock(0))
    )
    return CognitoVerifier(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        token_use=token_use,
        jwks=jwks,
        leeway_seconds=LEEWAY,
        clock=clock or FakeClock(NOW),
        **options,
    )

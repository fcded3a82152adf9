"""Cognito user-pool token verification: a bearer JWT in, a :class:`Principal` out.

:class:`CognitoVerifier` accepts only RS256 tokens signed by a key of the
configured pool's JWKS, issued by that exact pool, for that exact app client
and token use, and inside their lifetime. It follows aws-jwt-verify's
pipeline (parse → key by ``kid`` → algorithm → signature → claims) and is
stricter where the project asks for it: ``exp`` and ``iat`` are required,
``iat`` may not be in the future, ``exp - iat`` may not exceed what Cognito
can issue (:data:`MAX_TOKEN_LIFETIME_SECONDS`), any ``crit`` header and any
key-carrying header (``jku``, ``x5u``, ``jwk``, ``x5c``) are refused, tokens
are size-limited, and the JSON must be strict (no duplicate keys, no
``NaN``). Every refusal is its own :class:`AuthError` subclass (401); a JWKS
that cannot be loaded at all is a :class:`JwksUnavailableError` (503).
Verified claims are cached per token until ``exp``, so a renewal within a
token's life costs a hash and a dict lookup.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from app.auth.errors import (
    AlgorithmNotAllowedError,
    ForbiddenHeaderError,
    InvalidAudienceError,
    InvalidClaimTypeError,
    InvalidClientIdError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenUseError,
    IssuedInFutureError,
    MalformedTokenError,
    MissingClaimError,
    MissingKeyIdError,
    MissingTokenError,
    TokenExpiredError,
    TokenLifetimeTooLongError,
    TokenNotYetValidError,
    TokenTooLargeError,
    UnsupportedCriticalHeaderError,
)
from app.errors import ConfigurationError

if TYPE_CHECKING:
    from jwt.algorithms import RSAAlgorithm

    from app.auth.jwks import JwksCache

TokenUse = Literal["access", "id"]

ALGORITHM: Final = "RS256"
"""The only signature algorithm accepted: Cognito user pools sign with RS256."""

DEFAULT_MAX_TOKEN_BYTES: Final = 8192
"""8 KiB. Cognito access tokens are ~1 KiB and id tokens grow with attributes
and groups; 8 KiB leaves room for both and stays under common header limits."""

MAX_TOKEN_LIFETIME_SECONDS: Final = 24 * 60 * 60
"""1 day: the longest access or id token validity a Cognito app client can be given
(docs/cognito-tokens.md#c-doc-7); a longer ``exp - iat`` was not issued by our pool."""

FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c"})
"""Header parameters that point at or carry a key; the key comes from the pool's JWKS only."""

# aws-jwt-verify's shape check (src/jwt.ts), matched with fullmatch so that a
# trailing newline does not slip through as it would with ``$``.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}")

_NUMERIC_CLAIMS = ("exp", "nbf", "iat", "auth_time")
_STRING_CLAIMS = (
    "iss",
    "sub",
    "token_use",
    "client_id",
    "username",
    "cognito:username",
    "email",
    "scope",
    "jti",
    "origin_jti",
)


# --------------------------------------------------------------------------- principal


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: str
    username: str
    email: str | None
    groups: tuple[str, ...]
    token_use: TokenUse
    expires_at: int

    @property
    def is_admin(self) -> bool:
        return "admin" in self.groups


def extract_bearer(
    authorization_header: str | None, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES
) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    The scheme is case-insensitive; exactly one space separates it from the
    token, which contains no whitespace. Surrounding whitespace of the whole
    value is ignored (it is not part of an HTTP field value).

    :raises MissingTokenError: absent, empty, another scheme, or malformed.
    :raises TokenTooLargeError: the token is longer than ``max_bytes``.
    """
    if not isinstance(authorization_header, str) or not authorization_header.strip():
        raise MissingTokenError("no Authorization header")
    if len(authorization_header) > max_bytes + 64:
        raise TokenTooLargeError(f"Authorization header is larger than {max_bytes} bytes")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError("Authorization header does not use the Bearer scheme")
    if not token or token != "".join(token.split()):
        raise MissingTokenError("Authorization header must be 'Bearer <token>'")
    if len(token) > max_bytes:
        raise TokenTooLargeError(f"token is larger than {max_bytes} bytes")
    return token


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD_B64: Final = bytes.maketrans(b"-_", b"+/")
# Unused low bits of the last character when a segment's length is 2 or 3 mod 4.
_UNUSED_BITS: Final = {2: 0b1111, 3: 0b11}


def _b64url_decode(segment: str, what: str) -> bytes:
    """Strict base64url of a segment that already passed the shape check.

    Padding, if present, must be exactly right, and the unused bits of the
    last character must be zero, so each byte string has one encoding.
    """
    data = segment.rstrip("=")
    padding = len(segment) - len(data)
    rem = len(data) % 4
    if rem == 1 or (padding and rem + padding != 4):
        raise MalformedTokenError(f"the {what} is not valid base64url")
    if rem and _B64URL_ALPHABET.index(data[-1]) & _UNUSED_BITS[rem]:
        raise MalformedTokenError(f"the {what} is not canonical base64url")
    standard = data.encode("ascii").translate(_TO_STANDARD_B64) + b"=" * (-rem % 4)
    try:
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error:
        raise MalformedTokenError(f"the {what} is not valid base64url") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Strict JSON: duplicate keys and NaN/Infinity are errors. Built once; decode() is thread-safe.
_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def _json_object(segment: str, what: str) -> dict[str, Any]:
    raw = _b64url_decode(segment, what)
    try:
        value = _JSON.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedTokenError(f"the {what} is not strict UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise MalformedTokenError(f"the {what} is not a JSON object")
    return value


def _is_number(value: object) -> bool:
    # bool is an int subclass and a numeric-looking string is a string: both refused.
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _type_error(claim: str, expected: str, found: object) -> InvalidClaimTypeError:
    return InvalidClaimTypeError(
        f"claim {claim!r} must be {expected}, found {type(found).__name__}",
        claim=claim,
        expected=expected,
        found=found,
    )


def _check_claim_types(payload: dict[str, Any]) -> None:
    for claim in _NUMERIC_CLAIMS:
        if claim in payload and not _is_number(payload[claim]):
            raise _type_error(claim, "a finite number", payload[claim])
    for claim in _STRING_CLAIMS:
        if claim in payload and type(payload[claim]) is not str:
            raise _type_error(claim, "a string", payload[claim])
    if "aud" in payload:
        aud = payload["aud"]
        if not (type(aud) is str or (type(aud) is list and all(type(a) is str for a in aud))):
            raise _type_error("aud", "a string or a list of strings", aud)
    if "cognito:groups" in payload:
        groups = payload["cognito:groups"]
        if type(groups) is not list or not all(type(g) is str for g in groups):
            raise _type_error("cognito:groups", "a list of strings", groups)


def _parse(token: str) -> _Parsed:
    if _JWT_SHAPE.fullmatch(token) is None:
        raise MalformedTokenError("a JWT is exactly three base64url segments")
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = _json_object(header_b64, "header")
    payload = _json_object(payload_b64, "payload")
    if "alg" in header and type(header["alg"]) is not str:
        raise MalformedTokenError("header 'alg' is not a string")
    _check_claim_types(payload)
    return _Parsed(
        header=header,
        payload=payload,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=_b64url_decode(signature_b64, "signature"),
    )


def _check_header(header: dict[str, Any]) -> str:
    """Refuse what no Cognito token carries; return the ``kid``."""
    if "crit" in header:
        raise UnsupportedCriticalHeaderError(
            "header has 'crit'; no extensions are understood", found=header["crit"]
        )
    forbidden = FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise ForbiddenHeaderError(
            f"header carries a key reference ({', '.join(sorted(forbidden))})",
            found=sorted(forbidden),
        )
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise AlgorithmNotAllowedError(
            f"signature algorithm {alg!r:.40} is not allowed", expected=ALGORITHM, found=alg
        )
    kid = header.get("kid")
    if type(kid) is not str or not kid:
        raise MissingKeyIdError("header has no valid 'kid'", found=kid)
    return kid


# --------------------------------------------------------------------------- claims cache


class _ClaimsCache:
    """Verified principals by sha256(token), with their ``exp + leeway`` deadline.

    Bounded; the oldest entry goes first when full. Reads take no lock (a
    single dict read is atomic under the GIL); writes do.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> tuple[Principal, float] | None:
        return self._entries.get(digest)

    def put(self, digest: bytes, principal: Principal, deadline: float) -> None:
        if self._size <= 0:
            return
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = (principal, deadline)

    def discard(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)


# --------------------------------------------------------------------------- verifier


class CognitoVerifier:
    """Verify tokens of one Cognito user pool, one app client, one token use.

    :param issuer: exactly ``https://cognito-idp.<region>.amazonaws.com/<pool id>``.
    :param client_id: the app client id (``aud`` of id tokens, ``client_id`` of access tokens).
    :param token_use: ``"access"`` or ``"id"``; the other kind is refused.
    :param jwks: the pool's :class:`~app.jwks.JwksCache`.
    :param leeway_seconds: clock skew allowed on ``exp``, ``nbf`` and ``iat``.
    :param clock: wall-clock seconds since the epoch.
    :param max_token_bytes: longer tokens are refused before any parsing
        (default 8 KiB, :data:`DEFAULT_MAX_TOKEN_BYTES`).
    :param claims_cache_size: verified tokens remembered until ``exp`` (0 disables).
    :param max_lifetime_seconds: the longest ``exp - iat`` accepted, at most (and by
        default) :data:`MAX_TOKEN_LIFETIME_SECONDS`; a pool issuing shorter tokens may
        pass its own validity.
    :raises ConfigurationError: if a required argument is empty or a number is out of range.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        token_use: TokenUse,
        jwks: JwksCache,
        leeway_seconds: int = 5,
        clock: Callable[[], float] = time.time,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        claims_cache_size: int = 10_000,
        max_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        problems = []
        for name, value in (("issuer", issuer), ("client_id", client_id)):
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                problems.append(f"{name} must be a non-empty string without surrounding spaces")
        if token_use not in ("access", "id"):
            problems.append(f"token_use must be 'access' or 'id', got {token_use!r}")
        if type(leeway_seconds) is not int or not 0 <= leeway_seconds <= 300:
            problems.append(f"leeway_seconds must be a whole number 0..300, got {leeway_seconds!r}")
        if type(max_token_bytes) is not int or max_token_bytes < 64:
            problems.append(
                f"max_token_bytes must be a whole number >= 64, got {max_token_bytes!r}"
            )
        if type(claims_cache_size) is not int or claims_cache_size < 0:
            problems.append(
                f"claims_cache_size must be a whole number >= 0, got {claims_cache_size!r}"
            )
        if (
            type(max_lifetime_seconds) is not int
            or not 0 < max_lifetime_seconds <= MAX_TOKEN_LIFETIME_SECONDS
        ):
            problems.append(
                f"max_lifetime_seconds must be a whole number 1..{MAX_TOKEN_LIFETIME_SECONDS}, "
                f"got {max_lifetime_seconds!r}"
            )
        if jwks is None:
            problems.append("jwks is required")
        if problems:
            raise ConfigurationError("CognitoVerifier: " + "; ".join(problems))
        self.issuer = issuer
        self.client_id = client_id
        self.token_use: TokenUse = token_use
        self._is_id = token_use == "id"  # noqa: S105 - a token kind, not a secret
        self._jwks = jwks
        self._leeway = leeway_seconds
        self._clock = clock
        self._max_bytes = max_token_bytes
        self._cache = _ClaimsCache(claims_cache_size)
        self._max_lifetime = max_lifetime_seconds
        # PyJWT (and cryptography under it) load with the first verifier, not the handler module.
        from jwt.algorithms import RSAAlgorithm

        self._rs256: RSAAlgorithm = RSAAlgorithm(RSAAlgorithm.SHA256)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Tokens over ``max_token_bytes`` (8 KiB by default; Cognito's are
        about 1 KiB) are refused before anything else is done with them.
        Then the claims cache: a hit costs a sha256 and a dict lookup, and
        ``exp`` is still enforced. Otherwise: shape → strict JSON and claim
        types → header policy (no ``crit``, no key headers, ``alg`` exactly
        RS256 — checked before the key lookup so junk never causes a JWKS
        fetch — and a ``kid``) → key by ``kid`` (whose JWK ``alg``, if any,
        must be RS256) → signature → claims. A token is expired iff
        ``now >= exp + leeway``; it lives too long iff ``exp - iat`` exceeds
        ``max_lifetime_seconds``.

        :raises AuthError: a subclass naming the reason (401).
        :raises JwksUnavailableError: the JWKS was never loaded and cannot be (503).
        """
        if type(token) is not str or not token:
            raise MalformedTokenError("the token is empty or not a string")
        if len(token) > self._max_bytes:
            raise TokenTooLargeError(
                f"token is larger than {self._max_bytes} bytes",
                expected=self._max_bytes,
                found=len(token),
            )
        if not token.isascii():
            raise MalformedTokenError("a JWT is exactly three base64url segments")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            principal, deadline = cached
            if self._clock() < deadline:
                return principal
            self._cache.discard(digest)
            raise TokenExpiredError(
                "token expired",
                claim="exp",
                expected="now < exp + leeway",
                found=principal.expires_at,
            )

        parsed = _parse(token)
        kid = _check_header(parsed.header)
        key = self._jwks.get_key(kid)
        if key.alg is not None and key.alg != ALGORITHM:
            raise AlgorithmNotAllowedError(
                f"the JWK for kid {kid!r:.80} is for {key.alg!r:.40}",
                expected=ALGORITHM,
                found=key.alg,
            )
        if len(parsed.signature) != key.size_bytes:
            raise InvalidSignatureError("signature has the wrong length for the key")
        # PyJWT's RS256 (RSASSA-PKCS1-v1_5 with SHA-256), with the algorithm
        # pinned here, never taken from the token.
        if not self._rs256.verify(parsed.signing_input, key.public_key, parsed.signature):
            raise InvalidSignatureError("invalid signature")

        principal, deadline = self._check_claims(parsed.payload)
        self._cache.put(digest, principal, deadline)
        return principal

    def _check_claims(self, payload: dict[str, Any]) -> tuple[Principal, float]:
        """Claims of a token whose signature verified; types were checked at parse."""
        iss = _required(payload, "iss")
        if iss != self.issuer:
            raise InvalidIssuerError("wrong issuer", claim="iss", expected=self.issuer, found=iss)
        token_use = _required(payload, "token_use")
        if token_use != self.token_use:
            raise InvalidTokenUseError(
                f"token_use is {token_use!r:.40}, expected {self.token_use!r}",
                claim="token_use",
                expected=self.token_use,
                found=token_use,
            )
        if self._is_id:
            aud = _required(payload, "aud")
            if aud != self.client_id:  # a list never equals the string
                raise InvalidAudienceError(
                    "wrong audience", claim="aud", expected=self.client_id, found=aud
                )
        else:
            client_id = _required(payload, "client_id")
            if client_id != self.client_id:
                raise InvalidClientIdError(
                    "wrong client_id", claim="client_id", expected=self.client_id, found=client_id
                )

        now = self._clock()
        exp = _required(payload, "exp")
        deadline = exp + self._leeway
        if now >= deadline:
            raise TokenExpiredError(
                "token expired", claim="exp", expected="now < exp + leeway", found=exp
            )
        nbf = payload.get("nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise TokenNotYetValidError(
                "token not valid yet", claim="nbf", expected="nbf <= now + leeway", found=nbf
            )
        iat = _required(payload, "iat")
        if iat > now + self._leeway:
            raise IssuedInFutureError(
                "token issued in the future", claim="iat", expected="iat <= now + leeway", found=iat
            )
        if exp - iat > self._max_lifetime:
            raise TokenLifetimeTooLongError(
                "token lives longer than Cognito issues tokens for",
                claim="exp",
                expected=f"exp - iat <= {self._max_lifetime}",
                found=exp - iat,
            )

        username_claim = "cognito:username" if self._is_id else "username"
        principal = Principal(
            user_id=_required(payload, "sub"),
            username=_required(payload, username_claim),
            email=payload.get("email") if self._is_id else None,
            groups=tuple(payload.get("cognito:groups", ())),
            token_use=self.token_use,
            expires_at=math.floor(exp),
        )
        return principal, deadline


def _required(payload: dict[str, Any], claim: str) -> Any:
    value = payload.get(claim)
    if value is None or value == "":
        raise MissingClaimError(f"claim {claim!r} is missing", claim=claim, found=value)
    return value

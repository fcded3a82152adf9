"""The user pool's JSON Web Key Set: fetched lazily, parsed once, cached in memory.

:class:`JwksCache` hands the verifier the RSA public key for a ``kid``. Keys
stay cached with no TTL (as in aws-jwt-verify); the set is fetched again only
when a token names a ``kid`` that is not cached, and then at most once per
``penalty_seconds`` window, so a flood of made-up ``kid`` values cannot turn
into a flood of requests to Cognito. Concurrent misses share one fetch. When
the endpoint is down, cached keys keep working and unknown keys fail closed.
The default fetcher is plain :mod:`urllib` (the Lambda package has no
``requests``), GET only, http(s) only, no redirects, no proxies, one
immediate retry on connection errors only.
"""

from __future__ import annotations

import binascii
import http.client
import json
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.auth.errors import JwksUnavailableError, UnknownKeyIdError
from app.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1 << 20
"""A JWKS is a few KiB; refuse anything bigger than 1 MiB."""

MIN_RSA_BITS = 2048
"""Smaller RSA keys in the set are skipped (Cognito uses 2048-bit keys)."""

_CONNECTION_ERRORS = (OSError, http.client.HTTPException)


class JwksFetchError(Exception):
    """The JWKS could not be read: bad status, oversize or malformed document.

    Internal to this module and its fetchers; the cache turns it into
    :class:`~app.auth.JwksUnavailableError` or :class:`~app.auth.UnknownKeyIdError`.
    """


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One usable RSA signing key from the set, parsed once."""

    kid: str
    alg: str | None
    public_key: RSAPublicKey
    size_bytes: int


@cache
def _opener() -> urllib.request.OpenerDirector:
    # Only the http(s) handlers: no file:/ftp:/data:, no redirect following
    # (a 3xx is simply "not 200"), no proxy variables from the environment.
    opener = urllib.request.OpenerDirector()
    opener.add_handler(urllib.request.HTTPHandler())
    opener.add_handler(urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    return opener


def _get_once(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - scheme checked to be http(s)
        url, method="GET", headers={"Accept": "application/json"}
    )
    with _opener().open(request, timeout=timeout) as response:
        if response.status != 200:
            raise JwksFetchError(f"JWKS endpoint answered status {response.status}, expected 200")
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise JwksFetchError(f"JWKS document is larger than {MAX_JWKS_BYTES} bytes")
    return body


def urllib_fetch(url: str, *, timeout: float = 3.0) -> bytes:
    """GET ``url`` and return the body of a 200 answer.

    A connection error (refused, reset, timeout, TLS) is retried once at
    once; a non-200 status or an oversize body is not.

    :raises JwksFetchError: on a non-200 status or an oversize body.
    :raises OSError: when the second attempt fails to connect too.
    """
    _require_http_url(url)
    try:
        return _get_once(url, timeout)
    except _CONNECTION_ERRORS as exc:
        log.info("JWKS fetch failed (%s); retrying once", exc)
        return _get_once(url, timeout)


def _require_http_url(url: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"JWKS URL must be an absolute http(s) URL, got {url!r}")


def _parse_key(jwk: object) -> SigningKey | None:
    """The RSA signature key in ``jwk``, or None if it is unusable here."""
    if not isinstance(jwk, dict):
        return None
    kid, alg = jwk.get("kid"), jwk.get("alg")
    if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
        return None
    if not isinstance(kid, str) or not kid or not (alg is None or isinstance(alg, str)):
        return None
    if "d" in jwk or not isinstance(jwk.get("n"), str) or not isinstance(jwk.get("e"), str):
        return None  # a private key has no place in a JWKS; n and e are required
    # Imported when a JWKS is first parsed, not with the handler (its cold import).
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from jwt.algorithms import RSAAlgorithm
    from jwt.exceptions import InvalidKeyError

    try:
        # PyJWT's JWK parser (RFC 7518 section 6.3) builds the cryptography key.
        public_key = RSAAlgorithm.from_jwk({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]})
    except (InvalidKeyError, ValueError, binascii.Error):
        return None
    if not isinstance(public_key, RSAPublicKey):
        return None
    if public_key.key_size < MIN_RSA_BITS:
        return None
    return SigningKey(
        kid=kid, alg=alg, public_key=public_key, size_bytes=(public_key.key_size + 7) // 8
    )


def parse_jwks(body: bytes) -> dict[str, SigningKey]:
    """The usable keys of a JWKS document, by ``kid``.

    Keys this verifier cannot use (EC, symmetric, encryption keys, short or
    broken RSA keys, a repeated ``kid``) are skipped, not fatal.

    :raises JwksFetchError: if the body is not a UTF-8 JSON object with a ``keys`` list.
    """
    try:
        document: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JwksFetchError(f"JWKS document is not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("JWKS document is not a JSON object with a 'keys' list")
    keys: dict[str, SigningKey] = {}
    for jwk in document["keys"]:
        key = _parse_key(jwk)
        if key is None:
            log.info("skipping a JWK this verifier cannot use: kid=%r", _kid_of(jwk))
        elif key.kid in keys:
            log.warning("JWKS repeats kid %r; keeping the first key", key.kid)
        else:
            keys[key.kid] = key
    return keys


def _kid_of(jwk: object) -> object:
    return jwk.get("kid") if isinstance(jwk, dict) else None


class _Flight:
    """One fetch in progress; callers that missed meanwhile wait on ``done``."""

    def __init__(self) -> None:
        self.done = threading.Event()


class JwksCache:
    """The keys of one JWKS URL, for :class:`~app.auth.CognitoVerifier`.

    :param url: the pool's ``.../.well-known/jwks.json`` (http or https only).
    :param fetch: ``url -> body bytes``; default :func:`urllib_fetch` with ``timeout``.
    :param clock: monotonic seconds, for the penalty window.
    :param penalty_seconds: after any fetch, unknown ``kid`` values fail at
        once, without fetching, until this many seconds have passed.
    :param timeout: socket timeout of the default fetcher, per attempt.
    :raises ConfigurationError: for a non-http(s) URL or a bad number.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
        penalty_seconds: float = 10.0,
        timeout: float = 3.0,
    ) -> None:
        _require_http_url(url)
        if not penalty_seconds >= 0:
            raise ConfigurationError(f"penalty_seconds must be >= 0, got {penalty_seconds!r}")
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0, got {timeout!r}")
        self.url = url
        self._fetch = fetch if fetch is not None else partial(urllib_fetch, timeout=timeout)
        self._clock = clock
        self._penalty = penalty_seconds
        # Callers that join a fetch in progress wait at most this long: two
        # attempts of the default fetcher plus slack.
        self._join_timeout = 2 * timeout + 0.5
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._loaded = False
        self._next_fetch_at: float | None = None
        self._flight: _Flight | None = None
        self.fetch_count = 0
        """How many times the fetcher was called (a retry inside it counts once)."""

    def get_key(self, kid: str) -> SigningKey:
        """The cached key for ``kid``, fetching the set again if allowed.

        :raises UnknownKeyIdError: ``kid`` is not in the set (or the set could
            not be refreshed, or the penalty window is still running).
        :raises JwksUnavailableError: the set has never been loaded and cannot be now.
        """
        key = self._keys.get(kid)  # one dict read; the dict is replaced, never mutated
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            flight = self._flight
            leader = flight is None
            if flight is None:
                if self._next_fetch_at is not None and self._clock() < self._next_fetch_at:
                    raise self._miss(kid, "the JWKS was fetched moments ago")
                flight = self._flight = _Flight()
        if leader:
            self._refresh(flight)
        elif not flight.done.wait(self._join_timeout):
            raise self._miss(kid, "the JWKS fetch in progress did not finish in time")
        key = self._keys.get(kid)
        if key is None:
            raise self._miss(kid, "not in the JWKS")
        return key

    def _refresh(self, flight: _Flight) -> None:
        try:
            self.fetch_count += 1
            keys = parse_jwks(self._fetch(self.url))
        except Exception as exc:  # any fetcher failure: fail closed, keep the cached keys
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
        else:
            self._keys = keys
            self._loaded = True
        finally:
            with self._lock:
                self._next_fetch_at = self._clock() + self._penalty
                self._flight = None
            flight.done.set()

    def _miss(self, kid: str, why: str) -> UnknownKeyIdError | JwksUnavailableError:
        if not self._loaded:
            return JwksUnavailableError(f"the JWKS at {self.url} could not be loaded ({why})")
        return UnknownKeyIdError(f"kid {kid!r:.80} is unknown ({why})", found=kid)

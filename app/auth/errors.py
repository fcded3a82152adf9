"""Why a bearer token is refused (one :class:`AuthError` subclass per reason, 401),
and :class:`JwksUnavailableError` (503) when the pool's keys cannot be loaded.

The verifier (:mod:`app.auth.verifier`) and the JWKS cache (:mod:`app.auth.jwks`)
both raise these.
"""

from __future__ import annotations

from app.errors import DependencyUnavailableError, UnauthorizedError


class AuthError(UnauthorizedError):
    """Base of every refusal of a bearer token: HTTP 401, code ``unauthorized``.

    ``claim``, ``expected`` and ``found`` say what was checked, where that applies.
    Messages never contain the token.
    """

    def __init__(
        self,
        message: str,
        *,
        claim: str | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        super().__init__(message)
        self.claim = claim
        self.expected = expected
        self.found = found


class MissingTokenError(AuthError):
    """No ``Authorization: Bearer <token>`` header, or a malformed one."""


class MalformedTokenError(AuthError):
    """Not three base64url segments of strict JSON objects, or a header value of the wrong type."""


class TokenTooLargeError(AuthError):
    """The token (or Authorization header) is larger than the configured limit."""


class MissingKeyIdError(AuthError):
    """The header has no ``kid``, an empty one, or a non-string one."""


class UnknownKeyIdError(AuthError):
    """The ``kid`` is not in the pool's JWKS (or the JWKS could not be refreshed)."""


class AlgorithmNotAllowedError(AuthError):
    """The header ``alg`` (or the JWK's ``alg``) is not RS256."""


class UnsupportedCriticalHeaderError(AuthError):
    """The header has a ``crit`` parameter; this verifier understands no extensions."""


class ForbiddenHeaderError(AuthError):
    """The header carries or points at a key (``jku``, ``x5u``, ``jwk``, ``x5c``)."""


class InvalidSignatureError(AuthError):
    """The RS256 signature does not verify with the pool's key."""


class ClaimError(AuthError):
    """Base of claim refusals (checked only after the signature)."""


class MissingClaimError(ClaimError):
    """A required claim is absent (or empty)."""


class InvalidClaimTypeError(ClaimError):
    """A claim has the wrong JSON type (e.g. ``exp`` as a string, a boolean, or infinite)."""


class InvalidIssuerError(ClaimError):
    """``iss`` is not exactly the configured issuer."""


class InvalidTokenUseError(ClaimError):
    """``token_use`` is not the expected one (an id token where an access token is needed, ...)."""


class InvalidAudienceError(ClaimError):
    """An id token's ``aud`` is not a string equal to the app client id."""


class InvalidClientIdError(ClaimError):
    """An access token's ``client_id`` is not the app client id."""


class TokenExpiredError(ClaimError):
    """``now >= exp + leeway``."""


class TokenNotYetValidError(ClaimError):
    """``nbf > now + leeway``."""


class IssuedInFutureError(ClaimError):
    """``iat > now + leeway``."""


class TokenLifetimeTooLongError(ClaimError):
    """``exp - iat`` is longer than Cognito can issue (1 day for access and id tokens)."""


class JwksUnavailableError(DependencyUnavailableError):
    """The pool's JWKS has never been loaded and cannot be now: fail closed with 503."""

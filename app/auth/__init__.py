"""Cognito token verification: a bearer JWT in, a :class:`Principal` out.

``verifier`` judges tokens, ``jwks`` caches the pool's keys, ``errors`` holds
every refusal; this package exports their public names.
"""

from app.auth.errors import (
    AlgorithmNotAllowedError,
    AuthError,
    ClaimError,
    ForbiddenHeaderError,
    InvalidAudienceError,
    InvalidClaimTypeError,
    InvalidClientIdError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenUseError,
    IssuedInFutureError,
    JwksUnavailableError,
    MalformedTokenError,
    MissingClaimError,
    MissingKeyIdError,
    MissingTokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenTooLargeError,
    UnknownKeyIdError,
    UnsupportedCriticalHeaderError,
)
from app.auth.verifier import (
    ALGORITHM,
    DEFAULT_MAX_TOKEN_BYTES,
    CognitoVerifier,
    Principal,
    TokenUse,
    extract_bearer,
)

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_TOKEN_BYTES",
    "AlgorithmNotAllowedError",
    "AuthError",
    "ClaimError",
    "CognitoVerifier",
    "ForbiddenHeaderError",
    "InvalidAudienceError",
    "InvalidClaimTypeError",
    "InvalidClientIdError",
    "InvalidIssuerError",
    "InvalidSignatureError",
    "InvalidTokenUseError",
    "IssuedInFutureError",
    "JwksUnavailableError",
    "MalformedTokenError",
    "MissingClaimError",
    "MissingKeyIdError",
    "MissingTokenError",
    "Principal",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenTooLargeError",
    "TokenUse",
    "UnknownKeyIdError",
    "UnsupportedCriticalHeaderError",
    "extract_bearer",
]

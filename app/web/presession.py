"""A visitor's state before signing in, kept in one encrypted cookie instead of the table.

Anonymous visitors cause no DynamoDB writes. What they carry from one
request to the next (flashed messages, a pending hosted-UI sign-in with its
state, nonce and PKCE verifier, a NEW_PASSWORD_REQUIRED challenge) travels
in the cookie :data:`COOKIE_NAME`: JSON sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from the app's secret key, with its issue time inside
so it expires after :data:`LIFETIME_SECONDS`. Encrypted, not only signed:
the challenge's Cognito session and the PKCE verifier are secrets of their
own (docs/sessions.md#p-1).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE_NAME = "vidgate_presession"
LIFETIME_SECONDS = 3600
"""A pending sign-in or a flashed message is older than this: it is gone."""
MAX_COOKIE_BYTES = 3800
"""Browsers keep cookies up to about 4096 bytes, name and attributes included."""
_VERSION = 1
_NONCE_BYTES = 12
_AAD = b"vidgate-presession-cookie"


class PreSessionTooLargeError(ValueError):
    """The state does not fit in one cookie."""


class PreSessionCookie:
    """Seals a visitor's state into a cookie value and opens it again.

    :param secret: the app's secret key (``VIDGATE_SECRET_KEY``); the cookie
        key is derived from it, never the secret itself.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        lifetime: int = LIFETIME_SECONDS,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the pre-session cookie needs a secret of 32+ bytes")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"vidgate pre-session cookie v1"
        ).derive(secret)
        self._aead = AESGCM(key)
        self._clock = clock
        self.lifetime = lifetime

    def seal(self, data: Mapping[str, Any]) -> str:
        """The cookie value holding ``data`` (JSON-serialisable), issued now.

        :raises PreSessionTooLargeError: it would not fit in a cookie.
        """
        payload = json.dumps(
            {"iat": int(self._clock()), "data": dict(data)}, separators=(",", ":")
        ).encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        raw = bytes([_VERSION]) + nonce + self._aead.encrypt(nonce, payload, _AAD)
        value = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        if len(value) > MAX_COOKIE_BYTES:
            raise PreSessionTooLargeError(f"pre-session state of {len(value)} bytes")
        return value

    def open(self, value: object) -> dict[str, Any] | None:
        """The state in a cookie value; None if absent, forged, of another key, or expired."""
        if not isinstance(value, str) or not value or len(value) > MAX_COOKIE_BYTES:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + _NONCE_BYTES + 16 or raw[0] != _VERSION:
            return None
        try:
            payload = json.loads(
                self._aead.decrypt(raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :], _AAD)
            )
        except (InvalidTag, ValueError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            return None
        issued = payload.get("iat")
        now = self._clock()
        if not isinstance(issued, int) or not issued - 60 <= now < issued + self.lifetime:
            return None
        data: dict[str, Any] = payload["data"]
        return data

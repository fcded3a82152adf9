"""Envelope encryption of what a web session must not keep in plaintext (its Cognito tokens).

An AWS KMS data key (``GenerateDataKey``, AES-256, under one encryption
context naming the purpose and the sessions table) encrypts each value with
AES-256-GCM, a fresh 96-bit nonce per value and the caller's associated data
(the item's key), so a value copied into another item does not decrypt. The
encrypted data key is stored beside the value; reading it back asks KMS to
``Decrypt`` it once per process and encrypted key (then cached, bounded in
age and number). A plaintext data key is reused for a bounded time and
number of values, then replaced. KMS unreachable or refusing: the operation
fails closed with :class:`~app.errors.DependencyUnavailableError`; nothing is
ever written in plaintext. The rules and their AWS sources: docs/sessions.md.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import DependencyUnavailableError

FORMAT_VERSION = 1
"""First byte of every sealed value; a value of another version does not open."""
NONCE_BYTES = 12
DATA_KEY_MAX_AGE_SECONDS = 300.0
"""A plaintext data key encrypts new values for at most this long (docs/sessions.md#s-3)."""
DATA_KEY_MAX_USES = 10_000
"""... and at most this many values: far below the 2**32 random-nonce limit of AES-GCM."""
DECRYPTED_KEY_MAX_AGE_SECONDS = 300.0
"""A data key decrypted by KMS is reused this long (a key disabled in KMS stops within it)."""
DECRYPTED_KEY_CACHE_SIZE = 1024
"""Decrypted data keys kept per process, least recently used dropped first."""
# KMS says the value itself is wrong (not that KMS is down): the item is unreadable.
_UNREADABLE_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class KmsApi(Protocol):
    """The two KMS calls envelope encryption needs (a boto3 ``kms`` client has them)."""

    def generate_data_key(
        self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]
    ) -> Mapping[str, Any]: ...

    def decrypt(
        self, *, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict[str, str]
    ) -> Mapping[str, Any]: ...


class UnreadableSealError(Exception):
    """A sealed value does not open: tampered, moved to another item, or under another key.

    Not a dependency failure: the value is worthless and its session is over.
    """


@dataclass(frozen=True)
class Sealed:
    """One encrypted value and the KMS-encrypted data key that opens it."""

    ciphertext: bytes
    encrypted_key: bytes

    def __repr__(self) -> str:
        return f"Sealed({len(self.ciphertext)} bytes)"


@dataclass
class _DataKey:
    plaintext: bytes
    encrypted: bytes
    created_at: float
    uses: int = 0


class EnvelopeCipher:
    """Seals and opens values with KMS data keys (one cipher per process, thread-safe).

    :param kms: a KMS client (``boto3.client("kms")``).
    :param key_id: the KMS key (id, ARN or alias) that encrypts the data keys.
    :param context: the KMS encryption context of every data key; the key
        policy allows the web role only this context.
    :param clock: monotonic seconds, for the cache bounds.
    """

    def __init__(
        self,
        kms: KmsApi,
        key_id: str,
        *,
        context: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        max_key_age: float = DATA_KEY_MAX_AGE_SECONDS,
        max_key_uses: int = DATA_KEY_MAX_USES,
        decrypted_max_age: float = DECRYPTED_KEY_MAX_AGE_SECONDS,
        decrypted_cache_size: int = DECRYPTED_KEY_CACHE_SIZE,
    ) -> None:
        if not key_id:
            raise ValueError("a KMS key id is required")
        self._kms = kms
        self.key_id = key_id
        self.context = dict(context)
        self._clock = clock
        self._max_key_age = max_key_age
        self._max_key_uses = max_key_uses
        self._decrypted_max_age = decrypted_max_age
        self._decrypted_cache_size = decrypted_cache_size
        self._lock = threading.Lock()
        self._current: _DataKey | None = None
        self._opened: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed:
        """Encrypt ``plaintext``, bound to ``aad`` (the same bytes must open it).

        :raises DependencyUnavailableError: no data key (KMS unreachable or refusing).
        """
        key = self._data_key()
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = bytes([FORMAT_VERSION])
        body = AESGCM(key.plaintext).encrypt(nonce, plaintext, header + aad)
        return Sealed(ciphertext=header + nonce + body, encrypted_key=key.encrypted)

    def open(self, sealed: Sealed, *, aad: bytes) -> bytes:
        """The plaintext of ``sealed``, if it was sealed with this ``aad`` under this key.

        :raises UnreadableSealError: the value does not open (never a partial result).
        :raises DependencyUnavailableError: KMS could not decrypt the data key now.
        """
        blob = sealed.ciphertext
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != FORMAT_VERSION:
            raise UnreadableSealError("not a sealed value of this format")
        key = self._decrypted_key(sealed.encrypted_key)
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return AESGCM(key).decrypt(nonce, body, blob[:1] + aad)
        except InvalidTag:
            raise UnreadableSealError("the value does not open with this key and aad") from None

    # ----------------------------------------------------------------- data keys

    def _data_key(self) -> _DataKey:
        now = self._clock()
        with self._lock:
            current = self._current
            if current is not None and self._usable(current, now):
                current.uses += 1
                return current
        fresh = self._generate(now)
        with self._lock:
            self._current = fresh
            fresh.uses += 1
            # A key we made ourselves needs no Decrypt to read back what it sealed.
            self._remember(fresh.encrypted, fresh.plaintext, now)
        return fresh

    def _usable(self, key: _DataKey, now: float) -> bool:
        return now - key.created_at < self._max_key_age and key.uses < self._max_key_uses

    def _generate(self, now: float) -> _DataKey:
        try:
            answer = self._kms.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=self.context
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError(
                f"the session key service (KMS GenerateDataKey): {_describe(exc)}"
            ) from exc
        plaintext, encrypted = answer.get("Plaintext"), answer.get("CiphertextBlob")
        if not isinstance(plaintext, bytes) or len(plaintext) != 32 or not encrypted:
            raise DependencyUnavailableError("KMS GenerateDataKey returned no AES-256 key")
        return _DataKey(plaintext=plaintext, encrypted=bytes(encrypted), created_at=now)

    def _decrypted_key(self, encrypted: bytes) -> bytes:
        now = self._clock()
        with self._lock:
            cached = self._opened.get(encrypted)
            if cached is not None and now - cached[1] < self._decrypted_max_age:
                self._opened.move_to_end(encrypted)
                return cached[0]
        try:
            answer = self._kms.decrypt(
                CiphertextBlob=encrypted, KeyId=self.key_id, EncryptionContext=self.context
            )
        except ClientError as exc:
            if _code(exc) in _UNREADABLE_CODES:
                raise UnreadableSealError(f"KMS refused the data key: {_code(exc)}") from None
            raise DependencyUnavailableError(
                f"the session key service (KMS Decrypt): {_describe(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise DependencyUnavailableError(
                f"the session key service (KMS Decrypt): {_describe(exc)}"
            ) from exc
        plaintext = answer.get("Plaintext")
        if not isinstance(plaintext, bytes) or len(plaintext) != 32:
            raise UnreadableSealError("KMS returned no AES-256 data key")
        with self._lock:
            self._remember(encrypted, plaintext, now)
        return plaintext

    def _remember(self, encrypted: bytes, plaintext: bytes, now: float) -> None:
        self._opened[encrypted] = (plaintext, now)
        self._opened.move_to_end(encrypted)
        while len(self._opened) > self._decrypted_cache_size:
            self._opened.popitem(last=False)

    def __repr__(self) -> str:  # key material never reaches a log line
        return f"EnvelopeCipher(key_id={self.key_id!r}, context={self.context!r})"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    return _code(exc) if isinstance(exc, ClientError) else type(exc).__name__


def kms_client(session: Any) -> Any:
    """A KMS client from a boto3 session (build it once per process).

    Short timeouts: a person is waiting, and KMS down means a 503 page, not a
    hung request. A new config each time: botocore rewrites its ``retries``.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )
    return session.client("kms", config=config)

"""Recording fakes of the DynamoDB and KMS calls the session store makes, and a settable clock."""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.web.envelope import EnvelopeCipher
from app.web.session_store import SessionStore, token_context

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class FakeDynamoDB:
    """Records items and calls; honours the condition expressions the store uses.

    ``down``: every call fails as if DynamoDB could not be reached.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.down = False

    @staticmethod
    def _conditional_failure(operation: str) -> ClientError:
        return ClientError(
            {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"}}, operation
        )

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    def _check(self, key: str, condition: str | None, operation: str) -> None:
        if condition == "attribute_exists(session_id)" and key not in self.items:
            raise self._conditional_failure(operation)
        if condition == "attribute_not_exists(session_id)" and key in self.items:
            raise self._conditional_failure(operation)

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        self._call("get_item")
        item = self.items.get(Key["session_id"]["S"])
        return {"Item": dict(item)} if item else {}

    def put_item(
        self, *, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None
    ) -> dict[str, Any]:
        self._call("put_item")
        key = Item["session_id"]["S"]
        self._check(key, ConditionExpression, "PutItem")
        self.items[key] = dict(Item)
        return {}

    def update_item(
        self,
        *,
        TableName: str,
        Key: dict[str, Any],
        ConditionExpression: str,
        ExpressionAttributeValues: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        self._call("update_item")
        key = Key["session_id"]["S"]
        self._check(key, ConditionExpression, "UpdateItem")
        self.items[key]["last_seen_at"] = ExpressionAttributeValues[":now"]
        self.items[key]["expires_at"] = ExpressionAttributeValues[":exp"]
        return {}

    def delete_item(self, *, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self._call("delete_item")
        self.items.pop(Key["session_id"]["S"], None)
        return {}


class FakeKms:
    """KMS as envelope encryption uses it, with AWS's rules for what matters here.

    A data key is encrypted under a master key of the fake's own, bound to its
    encryption context: a different context, another key id or a changed blob
    fails with ``InvalidCiphertextException`` / ``IncorrectKeyException``, as in
    AWS. ``down``: every call fails as if KMS could not be reached.
    """

    def __init__(self, key_id: str = KEY_ARN) -> None:
        self.key_id = key_id
        self._master = AESGCM(AESGCM.generate_key(bit_length=256))
        self.calls: list[str] = []
        self.contexts: list[dict[str, str]] = []
        self.down = False
        self.refuse: str | None = None

    def _call(self, name: str, context: dict[str, str]) -> None:
        self.calls.append(name)
        self.contexts.append(dict(context))
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        if self.refuse:
            raise _client_error(self.refuse, name)

    @staticmethod
    def _aad(context: dict[str, str]) -> bytes:
        return json.dumps(context, sort_keys=True).encode()

    def generate_data_key(
        self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]
    ) -> dict[str, Any]:
        self._call("GenerateDataKey", EncryptionContext)
        assert (KeyId, KeySpec) == (self.key_id, "AES_256")
        plaintext, nonce = os.urandom(32), os.urandom(12)
        blob = nonce + self._master.encrypt(nonce, plaintext, self._aad(EncryptionContext))
        return {"Plaintext": plaintext, "CiphertextBlob": blob, "KeyId": self.key_id}

    def decrypt(
        self, *, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict[str, str]
    ) -> dict[str, Any]:
        self._call("Decrypt", EncryptionContext)
        if KeyId != self.key_id:
            raise _client_error("IncorrectKeyException", "Decrypt")
        try:
            plaintext = self._master.decrypt(
                CiphertextBlob[:12], CiphertextBlob[12:], self._aad(EncryptionContext)
            )
        except (InvalidTag, ValueError):
            raise _client_error("InvalidCiphertextException", "Decrypt") from None
        return {"Plaintext": plaintext, "KeyId": self.key_id}


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)


def make_cipher(kms: FakeKms, clock: Any, table: str = "sessions") -> EnvelopeCipher:
    return EnvelopeCipher(kms, kms.key_id, context=token_context(table), clock=clock)


class Clock:
    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_store(
    clock: Clock, fake: FakeDynamoDB | None = None, kms: FakeKms | None = None
) -> tuple[SessionStore, FakeDynamoDB]:
    """A store with short timeouts: idle 1 h, signed in 1 day, touch 60 s.

    Its tokens are sealed with ``kms`` (a fresh :class:`FakeKms` by default);
    each store has its own cipher, as each process does.
    """
    fake = fake or FakeDynamoDB()
    store = SessionStore(
        fake,  # type: ignore[arg-type]
        "sessions",
        cipher=make_cipher(kms or FakeKms(), clock),
        clock=clock,
        idle_timeout=3600,
        absolute_lifetime=86400,
        touch_interval=60,
    )
    return store, fake

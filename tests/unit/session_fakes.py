"""A recording fake of the DynamoDB calls the session store makes, and a settable clock."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from app.web.session_store import SessionStore


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


class Clock:
    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, fake: FakeDynamoDB | None = None) -> tuple[SessionStore, FakeDynamoDB]:
    """A store with short timeouts: idle 1 h, signed in 1 day, anonymous 2 h, touch 60 s."""
    fake = fake or FakeDynamoDB()
    store = SessionStore(
        fake,  # type: ignore[arg-type]
        "sessions",
        clock=clock,
        idle_timeout=3600,
        absolute_lifetime=86400,
        anonymous_lifetime=7200,
        touch_interval=60,
    )
    return store, fake

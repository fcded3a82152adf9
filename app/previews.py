"""The audit trail of admin previews: which admin opened which video, when.

An admin may play any video, published or not, whatever their own plan
(:meth:`app.playback.Playback.preview`). Each preview is recorded in the audit
table under the partition ``video#<id>`` (no user id has a ``#``), with
``entity="preview"``, so the premium audit listings (``entity="audit"``) never
see these records and one video's previews are one Query, newest first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.catalog import is_video_id
from app.dynamo import (
    check_limit,
    format_time,
    get_s,
    get_time,
    s,
    unavailable_on_errors,
    utc_now,
)
from app.errors import VideoNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PREVIEW_ENTITY = "preview"
PARTITION_PREFIX = "video#"


@dataclass(frozen=True)
class PreviewRecord:
    """One admin preview: who (id and username), what (video), when."""

    video_id: str
    actor_id: str
    actor: str
    at: datetime


class PreviewLog:
    """Writes and reads preview records in the audit table."""

    def __init__(
        self,
        client: DynamoDBClient,
        audit_table: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._table = audit_table
        self._clock = clock

    def record(self, video_id: str, *, actor_id: str, actor: str) -> PreviewRecord:
        """Write one preview record (before the admin gets any URL).

        :raises DependencyUnavailableError: DynamoDB cannot be written: no preview then.
        """
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        at = self._clock()
        stamp = format_time(at)
        with unavailable_on_errors():
            self._client.put_item(
                TableName=self._table,
                Item={
                    "user_id": s(PARTITION_PREFIX + video_id),
                    "event_id": s(f"{stamp}#{secrets.token_hex(6)}"),
                    "entity": s(PREVIEW_ENTITY),
                    "action": s("preview"),
                    "video_id": s(video_id),
                    "actor_id": s(actor_id),
                    "actor": s(actor),
                    "at": s(stamp),
                },
                ConditionExpression="attribute_not_exists(event_id)",
            )
        return PreviewRecord(video_id=video_id, actor_id=actor_id, actor=actor, at=at)

    def recent(self, video_id: str, limit: int = 10) -> list[PreviewRecord]:
        """The newest ``limit`` previews of one video."""
        limit = check_limit(limit)
        with unavailable_on_errors():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="user_id = :p",
                ExpressionAttributeValues={":p": s(PARTITION_PREFIX + video_id)},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [
            PreviewRecord(
                video_id=get_s(item, "video_id") or video_id,
                actor_id=get_s(item, "actor_id") or "",
                actor=get_s(item, "actor") or "",
                at=get_time(item, "at") or datetime.min.replace(tzinfo=UTC),
            )
            for item in response.get("Items", [])
        ]

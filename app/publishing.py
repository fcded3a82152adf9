"""The publishing pipeline's state transitions of a catalog entry.

``uploading`` → ``processing`` (attempt n, percent) → ``ready`` | ``failed``
(docs/publishing.md#states). Each transition is ONE conditional DynamoDB write,
so two workers, a late progress report of a dead attempt, or a retried message
can never move a video backwards or publish it half-made: the loser gets a
:class:`~app.errors.PublishingConflictError` subclass saying what it found.
The same transitions serve the local transcoder worker and the Lambda handlers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from app.catalog import (
    FAILED,
    PROCESSING,
    PUBLISHED,
    READY,
    UPLOADING,
    Video,
    VideoCatalog,
    check_video,
    format_heartbeat,
    hls_folder,
    is_hls_key_for,
    is_video_id,
    video_folder,
    video_from_item,
    video_item,
)
from app.dynamo import Item, b, error_code, n, s, unavailable_on_errors, utc_now
from app.errors import (
    AttemptsExhaustedError,
    BadRequestError,
    InvalidTransitionError,
    PublishingConflictError,
    StaleAttemptError,
    VideoExistsError,
    VideoNotFoundError,
)
from app.storage_rules import REMOVED_TAG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_HEARTBEAT_TIMEOUT = timedelta(minutes=5)
"""An attempt not heard from for this long has stopped (its worker died)."""
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
"""The heartbeat of an attempt that stopped on purpose: stale at once."""
UPLOADS_PREFIX = "uploads/"
POSTERS_PREFIX = "posters/"
REASON_MAX = 1000
"""Longest failure reason kept (the tail of an encoder's error output can be long)."""


@dataclass(frozen=True)
class PublishedMedia:
    """What a finished transcode produced, all of it already in S3.

    ``hls_key``: ``videos/<id>/hls/master.m3u8``; ``mp4_key``: the progressive
    fallback ``videos/<id>/<name>.mp4`` (``""`` for none); ``poster_key``:
    ``posters/<id>.jpg`` or None; ``width``/``height``: the top rendition.
    """

    hls_key: str | None
    mp4_key: str
    poster_key: str | None
    duration_seconds: float
    width: int
    height: int
    size_bytes: int = 0


RETRANSCODE = "vidgate:retranscode"
"""The ``type`` of the message a re-transcode sends on the ingest queue."""


@dataclass(frozen=True)
class IngestRequest:
    """One original to transcode: from an S3 ``ObjectCreated`` record, or a re-transcode
    (``rerun``: the video may be ready or failed, and starts a new run)."""

    bucket: str
    source_key: str
    video_id: str
    rerun: bool = False


def parse_ingest_message(body: str) -> list[IngestRequest]:
    """What an ingest queue message asks for (docs/publishing.md#messages).

    An S3 event notification (``Records[].s3.bucket.name`` / ``object.key``,
    URL-encoded as S3 sends it) gives one request per ``ObjectCreated`` record
    under ``uploads/<video-id>/``; other records and S3's ``s3:TestEvent`` give
    none. A re-transcode message gives one request with ``rerun``.

    :raises BadRequestError: the body is not one of these (a poison message).
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError("the message is not JSON") from exc
    if not isinstance(message, dict):
        raise BadRequestError("the message is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    if message.get("type") == RETRANSCODE:
        bucket, key = message.get("bucket"), message.get("source_key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str):
            raise BadRequestError("a re-transcode message needs bucket and source_key")
        video_id = upload_id_of(key)
        if video_id is None or video_id != message.get("video_id"):
            raise BadRequestError(f"source_key is not {UPLOADS_PREFIX}<video_id>/<file>")
        return [IngestRequest(bucket, key, video_id, rerun=True)]
    records = message.get("Records")
    if not isinstance(records, list):
        raise BadRequestError("the message has no Records and is not a re-transcode")
    requests: list[IngestRequest] = []
    for record in records:
        request = _s3_record(record)
        if request is not None:
            requests.append(request)
    return requests


def _s3_record(record: object) -> IngestRequest | None:
    if not isinstance(record, dict):
        raise BadRequestError("a record is not a JSON object")
    event = record.get("eventName")
    s3_part = record.get("s3")
    if not isinstance(event, str) or not isinstance(s3_part, dict):
        raise BadRequestError("a record has no eventName or s3")
    if not event.startswith("ObjectCreated:"):
        return None
    bucket = (
        s3_part.get("bucket", {}).get("name") if isinstance(s3_part.get("bucket"), dict) else None
    )
    raw_key = (
        s3_part.get("object", {}).get("key") if isinstance(s3_part.get("object"), dict) else None
    )
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str):
        raise BadRequestError("a record has no s3.bucket.name or s3.object.key")
    # S3 sends keys URL-encoded with '+' for spaces (as in an HTML form).
    key = unquote_plus(raw_key)
    video_id = upload_id_of(key)
    if video_id is None:
        return None
    return IngestRequest(bucket, key, video_id)


def retranscode_message(bucket: str, video: Video) -> str:
    """The ingest message that re-runs the ladder on ``video``'s original.

    :raises BadRequestError: the video has no original under ``uploads/``.
    """
    if video.source_key is None or upload_id_of(video.source_key) != video.video_id:
        raise BadRequestError(f"video {video.video_id} has no original to transcode again")
    return json.dumps(
        {
            "type": RETRANSCODE,
            "bucket": bucket,
            "video_id": video.video_id,
            "source_key": video.source_key,
        }
    )


def source_key_for(upload_id: str, file_name: str) -> str:
    """``uploads/<upload-id>/<file>``: where an original is uploaded.

    :raises BadRequestError: the upload id is not a video id or the file name is
        empty or has a ``/``.
    """
    if not is_video_id(upload_id):
        raise BadRequestError("upload id must be 1-64 of A-Z a-z 0-9 _ -")
    if not file_name or "/" in file_name or file_name in {".", ".."} or len(file_name) > 255:
        raise BadRequestError("file name must be 1-255 characters without '/'")
    return f"{UPLOADS_PREFIX}{upload_id}/{file_name}"


def upload_id_of(source_key: str) -> str | None:
    """The ``<upload-id>`` of ``uploads/<upload-id>/<file>`` (the video id), or None."""
    if not source_key.startswith(UPLOADS_PREFIX):
        return None
    parts = source_key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 2 or not parts[1] or not is_video_id(parts[0]):
        return None
    return parts[0]


def poster_key_for(video_id: str) -> str:
    return f"{POSTERS_PREFIX}{video_id}.jpg"


class Publishing:
    """The transitions, on the videos table (``client`` and ``catalog`` are injected).

    :raises ValueError: ``max_attempts`` below 1.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        videos_table: str,
        *,
        catalog: VideoCatalog | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        heartbeat_timeout: timedelta = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1: {max_attempts!r}")
        if heartbeat_timeout <= timedelta(0):
            raise ValueError(f"heartbeat_timeout must be positive: {heartbeat_timeout!r}")
        self.heartbeat_timeout = heartbeat_timeout
        self._client = client
        self._table = videos_table
        self._catalog = catalog or VideoCatalog(client, videos_table, cache_seconds=0)
        self._clock = clock
        self.max_attempts = max_attempts

    # --- reading -------------------------------------------------------------------

    def video(self, video_id: str) -> Video:
        """The video in any state, read fresh. :raises VideoNotFoundError:"""
        return self._catalog.get_any(video_id)

    def next_attempt(self, video: Video) -> int:
        """The attempt number a worker taking ``video`` now would run: 1 for a new run,
        the stored attempt + 1 when a previous attempt stopped without finishing."""
        return video.attempts + 1 if video.state == PROCESSING else 1

    def can_retry(self, attempt: int) -> bool:
        """Whether a failed ``attempt`` may be followed by another one."""
        return attempt < self.max_attempts

    # --- transitions ---------------------------------------------------------------

    def create_draft(
        self,
        video_id: str,
        *,
        title: str,
        tier: str,
        description: str = "",
        source_key: str,
        published: bool = True,
    ) -> Video:
        """A new video in ``uploading``, not yet seen by viewers (``published`` is what
        admins want once it is ready).

        :raises VideoExistsError: a video with this id exists.
        :raises BadRequestError: a field is malformed, or ``source_key`` is not
            ``uploads/<video_id>/<file>``.
        """
        if upload_id_of(source_key) != video_id:
            raise BadRequestError(f"source_key must be {UPLOADS_PREFIX}{video_id}/<file>")
        draft = Video(
            video_id=video_id,
            title=title,
            description=description,
            tier=tier,  # type: ignore[arg-type]  # checked by check_video
            object_key="",
            content_type="",
            duration_seconds=0,
            poster_key=None,
            size_bytes=0,
            created_at=self._clock(),
            published=published,
            state=UPLOADING,
            source_key=source_key,
        )
        check_video(draft)
        item = video_item(draft)
        try:
            with unavailable_on_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": "video_id"},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise VideoExistsError(
                f"a video {video_id} already exists",
                video_id=video_id,
                expected="no video with this id",
            ) from exc
        return video_from_item(item)

    def is_stale(self, video: Video) -> bool:
        """Whether ``video``'s current attempt has stopped: processing, and not heard from
        within ``heartbeat_timeout`` (or released)."""
        if video.state != PROCESSING:
            return False
        beat = video.heartbeat_at
        return beat is None or beat <= self._clock() - self.heartbeat_timeout

    def start_processing(
        self,
        video_id: str,
        *,
        attempt: int,
        job_id: str | None = None,
        rerun: bool = False,
        previous_ended: bool = False,
    ) -> Video:
        """``processing`` at 0 %, attempt ``attempt``, heard from now.

        Attempt 1 starts a run: from ``uploading``, or with ``rerun`` (a re-transcode
        from the original) from ``ready`` or ``failed``. Attempt n > 1 takes over
        from attempt n - 1 once that one is stale (its heartbeat older than
        ``heartbeat_timeout``, or released), or at once when the caller knows it
        ended (``previous_ended``: e.g. its transcode job reported an error).

        :raises AttemptsExhaustedError: ``attempt`` is above ``max_attempts``
            (nothing is written; fail the video with :meth:`mark_failed`).
        :raises InvalidTransitionError: the video's state does not allow it.
        :raises StaleAttemptError: another attempt is current (or still alive).
        :raises VideoNotFoundError: no video has this id.
        """
        _check_attempt(attempt)
        if attempt > self.max_attempts:
            current = self.video(video_id)
            raise AttemptsExhaustedError(
                f"video {video_id}: all {self.max_attempts} transcode attempts used",
                video_id=video_id,
                expected=f"attempt <= {self.max_attempts}",
                current_state=current.state,
                current_attempt=current.attempts,
            )
        now = self._clock()
        values: Item = {
            ":processing": s(PROCESSING),
            ":n": n(attempt),
            ":zero": n(0),
            ":beat": s(format_heartbeat(now)),
        }
        sets = ["#st = :processing", "#att = :n", "#prog = :zero", "#beat = :beat"]
        removes = ["#c"]
        if attempt == 1:
            allowed = [UPLOADING, READY, FAILED] if rerun else [UPLOADING]
            names = [f":from{i}" for i in range(len(allowed))]
            values.update({name: s(state) for name, state in zip(names, allowed, strict=True)})
            condition = f"#st IN ({', '.join(names)})"
            expected = " or ".join(allowed)
            removes.append("#why")  # a new run: the last run's reason is history
        else:
            values[":prev"] = n(attempt - 1)
            condition = "#st = :processing AND #att = :prev"
            expected = f"processing, attempt {attempt - 1}"
            if not previous_ended:
                values[":stale"] = s(format_heartbeat(now - self.heartbeat_timeout))
                condition += " AND (attribute_not_exists(#beat) OR #beat <= :stale)"
                expected += " stopped (no heartbeat)"
        if job_id is not None:
            values[":job"] = s(_check_reason(job_id, "job_id"))
            sets.append("#job = :job")
        else:
            removes.append("#job")
        return self._transition(
            video_id,
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            condition,
            values,
            expected=expected,
            attempt=attempt,
        )

    def heartbeat(self, video_id: str, *, attempt: int) -> Video:
        """The current attempt is alive (call well within ``heartbeat_timeout``).

        :raises StaleAttemptError: the video is not processing ``attempt``.
        """
        _check_attempt(attempt)
        return self._transition(
            video_id,
            "SET #beat = :beat",
            "#st = :processing AND #att = :n",
            {
                ":processing": s(PROCESSING),
                ":n": n(attempt),
                ":beat": s(format_heartbeat(self._clock())),
            },
            expected=f"processing, attempt {attempt}",
            attempt=attempt,
        )

    def release(self, video_id: str, *, attempt: int, reason: str) -> Video:
        """The current attempt stopped without finishing (``reason``: why, kept in
        ``failure_reason`` for people); the next attempt may take over at once.

        :raises StaleAttemptError: the video is not processing ``attempt``.
        """
        _check_attempt(attempt)
        return self._transition(
            video_id,
            "SET #beat = :released, #why = :why",
            "#st = :processing AND #att = :n",
            {
                ":processing": s(PROCESSING),
                ":n": n(attempt),
                ":released": s(format_heartbeat(RELEASED)),
                ":why": s(_check_reason(reason, "reason")),
            },
            expected=f"processing, attempt {attempt}",
            attempt=attempt,
        )

    def set_job(self, video_id: str, *, attempt: int, job_id: str) -> Video:
        """Record the transcode job of the current attempt (e.g. a MediaConvert job id,
        known only after ``CreateJob``).

        :raises StaleAttemptError: ``attempt`` is not the current processing attempt.
        """
        _check_attempt(attempt)
        return self._transition(
            video_id,
            "SET #job = :job",
            "#st = :processing AND #att = :n",
            {
                ":processing": s(PROCESSING),
                ":n": n(attempt),
                ":job": s(_check_reason(job_id, "job_id")),
            },
            expected=f"processing, attempt {attempt}",
            attempt=attempt,
        )

    def report_progress(self, video_id: str, *, attempt: int, percent: float) -> Video:
        """Progress of the current attempt (0-99: 100 is :meth:`mark_ready`'s); also a
        heartbeat.

        A report that would not move it forward changes nothing and returns the
        video as it is (reports may arrive out of order).

        :raises StaleAttemptError: the video is not processing ``attempt``.
        """
        _check_attempt(attempt)
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise BadRequestError("percent must be a number")
        if not math.isfinite(percent):
            raise BadRequestError("percent must be a finite number")
        value = max(0, min(99, int(percent)))
        try:
            return self._transition(
                video_id,
                "SET #prog = :p, #beat = :beat",
                "#st = :processing AND #att = :n AND (attribute_not_exists(#prog) OR #prog < :p)",
                {
                    ":processing": s(PROCESSING),
                    ":n": n(attempt),
                    ":p": n(value),
                    ":beat": s(format_heartbeat(self._clock())),
                },
                expected=f"processing, attempt {attempt}",
                attempt=attempt,
            )
        except StaleAttemptError as exc:
            if exc.current_state == PROCESSING and exc.current_attempt == attempt:
                return self.video(video_id)  # not forward: nothing to write
            raise

    def mark_ready(self, video_id: str, *, attempt: int, media: PublishedMedia) -> Video:
        """``ready`` with its renditions (every file already in S3), from ``processing`` of
        the same attempt; a published video joins the viewers' listing in the same write.

        :raises BadRequestError: a key is outside this video's folders.
        :raises StaleAttemptError: the video is not processing ``attempt``.
        """
        _check_attempt(attempt)
        _check_media(video_id, media)
        values: Item = {
            ":processing": s(PROCESSING),
            ":n": n(attempt),
            ":ready": s(READY),
            ":hundred": n(100),
            ":duration": {"N": _number_text(media.duration_seconds)},
            ":w": n(media.width),
            ":h": n(media.height),
            ":size": n(media.size_bytes),
            ":true": b(True),
        }
        sets = [
            "#st = :ready",
            "#prog = :hundred",
            "#dur = :duration",
            "#w = :w",
            "#h = :h",
            "#size = :size",
        ]
        removes = ["#why", "#beat"]
        for name, placeholder, value in (
            ("#hls", ":hls", media.hls_key),
            ("#poster", ":poster", media.poster_key),
        ):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = {placeholder}")
                values[placeholder] = s(value)
        if media.mp4_key:
            sets += ["#obj = :obj", "#ctype = :ctype"]
            values[":obj"] = s(media.mp4_key)
            values[":ctype"] = s("video/mp4")
        else:
            removes += ["#obj", "#ctype"]
        base = "#st = :processing AND #att = :n"
        listed = f"SET {', '.join([*sets, '#c = :c'])} REMOVE {', '.join(removes)}"
        unlisted = f"SET {', '.join(sets)} REMOVE {', '.join([*removes, '#c'])}"
        # The listing key depends on the published flag: one of the two conditions holds.
        try:
            return self._transition(
                video_id,
                listed,
                f"{base} AND #pub = :true",
                {**values, ":c": s(PUBLISHED)},
                expected=f"processing, attempt {attempt}",
                attempt=attempt,
            )
        except StaleAttemptError as exc:
            if exc.current_state != PROCESSING or exc.current_attempt != attempt:
                raise
        return self._transition(
            video_id,
            unlisted,
            f"{base} AND (attribute_not_exists(#pub) OR #pub <> :true)",
            values,
            expected=f"processing, attempt {attempt}",
            attempt=attempt,
        )

    def mark_failed(
        self,
        video_id: str,
        *,
        reason: str,
        attempt: int | None = None,
        only_if_stale: bool = False,
    ) -> Video:
        """``failed`` with a reason for people: from ``processing`` of ``attempt`` (when
        given; with ``only_if_stale``, only once that attempt has stopped), else from
        ``uploading`` or ``processing`` (e.g. an upload that never completed). The
        video leaves the viewers' listing in the same write.

        :raises StaleAttemptError: ``attempt`` is given and is not the current one.
        :raises InvalidTransitionError: the video is ready or already failed.
        """
        values: Item = {
            ":failed": s(FAILED),
            ":why": s(_check_reason(reason, "reason")),
            ":processing": s(PROCESSING),
        }
        if attempt is not None:
            _check_attempt(attempt)
            values[":n"] = n(attempt)
            condition = "#st = :processing AND #att = :n"
            expected = f"processing, attempt {attempt}"
            if only_if_stale:
                stale = self._clock() - self.heartbeat_timeout
                values[":stale"] = s(format_heartbeat(stale))
                condition += " AND (attribute_not_exists(#beat) OR #beat <= :stale)"
                expected += " stopped (no heartbeat)"
        else:
            values[":uploading"] = s(UPLOADING)
            condition = "#st IN (:uploading, :processing)"
            expected = "uploading or processing"
        return self._transition(
            video_id,
            "SET #st = :failed, #why = :why REMOVE #c, #beat",
            condition,
            values,
            expected=expected,
            attempt=attempt,
        )

    def abandon_upload(self, video_id: str, *, reason: str) -> Video:
        """``failed`` from ``uploading`` only: the original never arrived.

        :raises InvalidTransitionError: the upload did arrive (the video moved on).
        """
        return self._transition(
            video_id,
            "SET #st = :failed, #why = :why REMOVE #c",
            "#st = :uploading",
            {
                ":failed": s(FAILED),
                ":uploading": s(UPLOADING),
                ":why": s(_check_reason(reason, "reason")),
            },
            expected="uploading",
            attempt=None,
        )

    def fail_abandoned_uploads(self, *, older_than: timedelta) -> list[str]:
        """Fail every draft still ``uploading`` that was created more than ``older_than``
        ago (its multipart upload is aborted by the bucket's lifecycle after a day,
        docs/publishing.md#r-4); the ids failed. Reads the admin listing (an index
        query, page by page), so it is for a periodic sweep, not a request path.
        """
        cutoff = self._clock() - older_than
        hours = older_than.total_seconds() / 3600
        reason = f"the upload was not completed within {hours:g} hours"
        failed: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = self._catalog.list_all(100, cursor)
            for video in page:
                if video.state != UPLOADING or video.created_at > cutoff:
                    continue
                try:
                    self.abandon_upload(video.video_id, reason=reason)
                except (PublishingConflictError, VideoNotFoundError):
                    continue  # it arrived (or went) meanwhile
                failed.append(video.video_id)
            if cursor is None:
                return failed

    # --- internals -----------------------------------------------------------------

    def _transition(
        self,
        video_id: str,
        expression: str,
        condition: str,
        values: Item,
        *,
        expected: str,
        attempt: int | None,
    ) -> Video:
        """One conditional UpdateItem; a failed condition becomes the matching error."""
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        used = set(_NAME_TOKEN.findall(expression + " " + condition))
        names = {name: attribute for name, attribute in _NAMES.items() if name in used}
        try:
            with unavailable_on_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"video_id": s(video_id)},
                    UpdateExpression=expression,
                    ConditionExpression=f"attribute_exists(#id) AND ({condition})",
                    ExpressionAttributeNames={**names, "#id": "video_id"},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise self._refusal(video_id, expected, attempt) from exc
        finally:
            self._catalog.invalidate(video_id)
        self._catalog.notify_changed(video_id)  # e.g. a video now ready joins the search index
        return video_from_item(response["Attributes"])

    def _refusal(
        self, video_id: str, expected: str, attempt: int | None
    ) -> PublishingConflictError:
        """The error for a refused transition, from the video as it is now."""
        current = self.video(video_id)  # raises VideoNotFoundError when it is gone
        details: dict[str, Any] = {
            "video_id": video_id,
            "expected": expected,
            "current_state": current.state,
            "current_attempt": current.attempts,
        }
        message = (
            f"video {video_id} is {current.state} (attempt {current.attempts}); "
            f"the change needed {expected}"
        )
        if attempt is not None and current.state == PROCESSING:
            return StaleAttemptError(message, **details)
        return InvalidTransitionError(message, **details)


@dataclass(frozen=True)
class Removal:
    """What :func:`remove_video` did: the entry it removed, the objects it deleted, and
    the original it kept (tagged), if any."""

    video: Video
    deleted: tuple[str, ...]
    kept_original: str | None


def remove_video(
    video_id: str,
    *,
    catalog: VideoCatalog,
    s3: Any,
    bucket: str,
    clock: Callable[[], datetime] = utc_now,
) -> Removal:
    """Remove a video: its catalog entry first (viewers never see it half-deleted), then
    every object under ``videos/<id>/`` and its poster. The original under ``uploads/``
    is kept, tagged ``vidgate-removed`` (docs/publishing.md#removal).

    :raises VideoNotFoundError: no video has this id.
    """
    video = catalog.get_any(video_id)
    catalog.remove(video_id)
    keys = set(list_keys(s3, bucket, video_folder(video_id)))
    keys.add(poster_key_for(video_id))
    for extra in (video.poster_key, video.object_key, video.hls_key):
        # An entry from before the pipeline may keep its files elsewhere.
        if extra and not extra.startswith(UPLOADS_PREFIX):
            keys.add(extra)
    deleted = sorted(keys)
    delete_keys(s3, bucket, deleted)
    kept: str | None = None
    if video.source_key is not None:
        kept = video.source_key
        try:
            s3.put_object_tagging(
                Bucket=bucket,
                Key=kept,
                Tagging={
                    "TagSet": [
                        {"Key": REMOVED_TAG, "Value": clock().strftime("%Y-%m-%d")},
                        {"Key": "vidgate-video-id", "Value": video_id},
                    ]
                },
            )
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchKey", "404"):
                raise
            kept = None  # the upload never completed: nothing to keep
    return Removal(video, tuple(deleted), kept)


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix``."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [str(o["Key"]) for o in page.get("Contents", [])]
    return keys


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    """Delete ``keys`` (1000 per request, S3's limit); a key already gone is fine.

    :raises RuntimeError: S3 refused to delete some of them (named).
    """
    refused: list[str] = []
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        if not chunk:
            continue
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        refused += [f"{e.get('Key')} ({e.get('Code')})" for e in response.get("Errors", [])]
    if refused:
        raise RuntimeError(f"S3 did not delete: {', '.join(refused[:10])}")


_NAME_TOKEN = re.compile(r"#\w+")
_NAMES = {
    "#st": "state",
    "#att": "attempts",
    "#prog": "progress",
    "#why": "failure_reason",
    "#job": "job_id",
    "#c": "catalog",
    "#pub": "published",
    "#hls": "hls_key",
    "#poster": "poster_key",
    "#obj": "object_key",
    "#ctype": "content_type",
    "#dur": "duration_seconds",
    "#w": "width",
    "#h": "height",
    "#size": "size_bytes",
    "#beat": "heartbeat_at",
}


def _check_attempt(attempt: object) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise BadRequestError("attempt must be a whole number >= 1")


def _check_reason(text: object, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequestError(f"{what} must be a non-empty string")
    return text[-REASON_MAX:] if len(text) > REASON_MAX else text


def _check_media(video_id: str, media: PublishedMedia) -> None:
    if media.hls_key is None and not media.mp4_key:
        raise BadRequestError("a ready video needs an HLS playlist or an MP4")
    if media.hls_key is not None and not is_hls_key_for(video_id, media.hls_key):
        raise BadRequestError(f"hls_key must be a .m3u8 playlist inside {hls_folder(video_id)}")
    if media.mp4_key and (
        not media.mp4_key.startswith(video_folder(video_id)) or not media.mp4_key.endswith(".mp4")
    ):
        raise BadRequestError(f"mp4_key must be an .mp4 inside {video_folder(video_id)}")
    if media.poster_key is not None and media.poster_key != poster_key_for(video_id):
        raise BadRequestError(f"poster_key must be {poster_key_for(video_id)}")
    duration = media.duration_seconds
    if isinstance(duration, bool) or not math.isfinite(duration) or duration < 0:
        raise BadRequestError("duration_seconds must be a number >= 0")
    for what, value in (
        ("width", media.width),
        ("height", media.height),
        ("size", media.size_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequestError(f"{what} must be a whole number >= 0")


def _number_text(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))

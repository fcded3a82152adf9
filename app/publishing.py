"""The publishing pipeline's state transitions of a catalog entry.

``uploading`` → ``processing`` (attempt n, percent) → ``ready`` | ``failed``
(docs/publishing.md#states). Each transition is ONE conditional DynamoDB write,
so two workers, a late progress report of a dead attempt, or a retried message
can never move a video backwards or publish it half-made: the loser gets a
:class:`~app.errors.PublishingConflictError` subclass saying what it found.
The same transitions serve the local transcoder worker and the Lambda handlers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_MAX_ATTEMPTS = 3
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
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1: {max_attempts!r}")
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

    def start_processing(
        self, video_id: str, *, attempt: int, job_id: str | None = None, rerun: bool = False
    ) -> Video:
        """``processing`` at 0 %, attempt ``attempt``.

        Attempt 1 starts a run: from ``uploading``, or with ``rerun`` (a re-transcode
        from the original) from ``ready`` or ``failed``. Attempt n > 1 takes over
        from attempt n - 1 that stopped without finishing (``processing``).

        :raises AttemptsExhaustedError: ``attempt`` is above ``max_attempts``
            (nothing is written; fail the video with :meth:`mark_failed`).
        :raises InvalidTransitionError: the video's state does not allow it.
        :raises StaleAttemptError: another worker took this attempt first.
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
        values: Item = {
            ":processing": s(PROCESSING),
            ":n": n(attempt),
            ":zero": n(0),
        }
        if attempt == 1:
            allowed = [UPLOADING, READY, FAILED] if rerun else [UPLOADING]
            names = [f":from{i}" for i in range(len(allowed))]
            values.update({name: s(state) for name, state in zip(names, allowed, strict=True)})
            condition = f"#st IN ({', '.join(names)})"
            expected = " or ".join(allowed)
        else:
            values[":prev"] = n(attempt - 1)
            condition = "#st = :processing AND #att = :prev"
            expected = f"processing, attempt {attempt - 1}"
        expression = "SET #st = :processing, #att = :n, #prog = :zero REMOVE #why, #c"
        if job_id is not None:
            values[":job"] = s(_check_reason(job_id, "job_id"))
            expression = (
                "SET #st = :processing, #att = :n, #prog = :zero, #job = :job REMOVE #why, #c"
            )
        else:
            expression += ", #job"
        return self._transition(
            video_id,
            expression,
            condition,
            values,
            expected=expected,
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
        """Progress of the current attempt (0-99: 100 is :meth:`mark_ready`'s).

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
                "SET #prog = :p",
                "#st = :processing AND #att = :n AND (attribute_not_exists(#prog) OR #prog < :p)",
                {":processing": s(PROCESSING), ":n": n(attempt), ":p": n(value)},
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
        removes = ["#why"]
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

    def mark_failed(self, video_id: str, *, reason: str, attempt: int | None = None) -> Video:
        """``failed`` with a reason for people: from ``processing`` of ``attempt`` (when
        given), else from ``uploading`` or ``processing`` (e.g. an upload that never
        completed). The video leaves the viewers' listing in the same write.

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
        else:
            values[":uploading"] = s(UPLOADING)
            condition = "#st IN (:uploading, :processing)"
            expected = "uploading or processing"
        return self._transition(
            video_id,
            "SET #st = :failed, #why = :why REMOVE #c",
            condition,
            values,
            expected=expected,
            attempt=attempt,
        )

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

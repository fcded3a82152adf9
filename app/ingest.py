"""Ingest in AWS: S3 upload notifications (delivered in SQS batches) become MediaConvert jobs.

Each SQS message holds one S3 event notification, whose records name objects
created under ``uploads/<video-id>/<file>`` (keys arrive URL-encoded), or a
re-transcode request for a ready or failed video. For the video whose original
that is, :class:`Transcoder` moves it to ``processing`` (one conditional write,
so a duplicate delivery starts nothing twice), probes the file with
MediaConvert, creates the job from the ladder and records its id. A file
MediaConvert cannot use fails the video with a clear reason.
:meth:`Ingest.handle_batch` answers with the failed message ids only
(``ReportBatchItemFailures``): SQS redelivers those, and after the queue's
``maxReceiveCount`` moves them to the dead-letter queue. docs/mediaconvert.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from app.catalog import FAILED, PROCESSING, READY, UPLOADING, Video
from app.config import Need
from app.errors import (
    AttemptsExhaustedError,
    DependencyUnavailableError,
    PublishingConflictError,
    StaleAttemptError,
    VideoNotFoundError,
)
from app.mediaconvert import JobTarget, MediaConvertJobs, SourceRejectedError, plan_for
from app.publishing import Publishing, upload_id_of

log = logging.getLogger("vidgate.ingest")

NEEDS = frozenset({Need.TABLES, Need.MEDIA, Need.TRANSCODE})
"""What the ingest and publish functions read from the environment."""
S3_TEST_EVENT = "s3:TestEvent"
RETRANSCODE = "vidgate:retranscode"
"""The ``type`` of the message that re-runs the ladder on a video's kept original."""


class BadMessageError(ValueError):
    """A message that is not an upload notification this ingest can act on (kept for the DLQ)."""


class RetryLaterError(Exception):
    """The message cannot be acted on yet (the attempt it would take over is still alive)."""


@dataclass(frozen=True)
class Upload:
    """One object created in the bucket: its bucket and its (decoded) key."""

    bucket: str
    key: str
    rerun: bool = False
    """A re-transcode of a ready or failed video, not a new upload."""


def uploads_in(body: str) -> list[Upload]:
    """The created objects an S3 event notification names; none for S3's test event.

    :raises BadMessageError: the body is not an S3 event notification.
    """
    try:
        message = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise BadMessageError("the message body is not JSON") from exc
    if not isinstance(message, dict):
        raise BadMessageError("the message body is not a JSON object")
    if message.get("Event") == S3_TEST_EVENT:
        return []  # sent once when the notification is configured
    if message.get("type") == RETRANSCODE:
        bucket, key = message.get("bucket"), message.get("source_key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise BadMessageError("a re-transcode message needs bucket and source_key")
        if upload_id_of(key) != message.get("video_id"):
            raise BadMessageError("a re-transcode's source_key is not uploads/<video_id>/<file>")
        return [Upload(bucket, key, rerun=True)]
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise BadMessageError("the message has no S3 event records")
    uploads: list[Upload] = []
    for record in records:
        try:
            if record["eventSource"] != "aws:s3":
                raise BadMessageError(f"not an S3 event: {record['eventSource']!r}")
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                raise BadMessageError(f"not an object creation: {record['eventName']!r}")
            bucket = record["s3"]["bucket"]["name"]
            # Notification keys are URL-encoded the form way: '+' is a space.
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError) as exc:
            raise BadMessageError(f"an S3 record lacks {exc}") from exc
        if not isinstance(bucket, str) or not bucket or not key:
            raise BadMessageError("an S3 record has no bucket or key")
        uploads.append(Upload(bucket, key))
    return uploads


class Transcoder:
    """Starts a video's transcode in MediaConvert: ``processing``, probe, CreateJob, job id."""

    def __init__(self, publishing: Publishing, jobs: MediaConvertJobs, bucket: str) -> None:
        self.publishing = publishing
        self.jobs = jobs
        self.bucket = bucket

    def start(
        self, video: Video, *, attempt: int, rerun: bool = False, previous_ended: bool = False
    ) -> str:
        """Run ``attempt`` of ``video``: 1 from ``uploading`` (or, with ``rerun``, from
        ``ready`` or ``failed``), n > 1 taking over n - 1.

        ``processing`` is written first, so a duplicate delivery starts nothing twice;
        a delivery that dies after it is taken over by the next one.
        ``previous_ended``: attempt n - 1 is known to be over (its job ended in ERROR), so
        n takes over at once instead of waiting for n - 1's heartbeat to go stale.
        Returns ``"started"``, or ``"failed"`` when the source is unusable or the attempts
        are used up (the video is failed with the reason).

        :raises DependencyUnavailableError: MediaConvert or DynamoDB is down (retry later).
        :raises PublishingConflictError: another worker moved the video first.
        """
        source_key = video.source_key or ""
        try:
            self.publishing.start_processing(
                video.video_id, attempt=attempt, rerun=rerun, previous_ended=previous_ended
            )
        except AttemptsExhaustedError:
            reason = f"transcoding failed {attempt - 1} times; giving up"
            current = video.attempts if video.state == PROCESSING else None
            self.publishing.mark_failed(video.video_id, reason=reason, attempt=current)
            return "failed"
        try:
            source = self.jobs.probe(self.bucket, source_key)
            plan_for(source, self.jobs.ladder)
        except SourceRejectedError as exc:
            self.publishing.mark_failed(video.video_id, reason=exc.reason, attempt=attempt)
            log.info(json.dumps({"event": "source_rejected", "video": video.video_id,
                                 "reason": exc.reason}))  # fmt: skip
            return "failed"
        except DependencyUnavailableError as exc:
            # No job can exist before CreateJob: the redelivery may take over at once.
            self._release(video.video_id, attempt, f"MediaConvert unavailable: {exc}")
            raise
        target = JobTarget(self.bucket, source_key, video.video_id, attempt)
        job_id = self.jobs.start(target, source)
        self.publishing.set_job(video.video_id, attempt=attempt, job_id=job_id)
        log.info(json.dumps({"event": "job_created", "video": video.video_id,
                             "attempt": attempt, "job": job_id}))  # fmt: skip
        return "started"

    def _release(self, video_id: str, attempt: int, reason: str) -> None:
        """Give ``attempt`` up; when that fails too, its heartbeat goes stale instead."""
        try:
            self.publishing.release(video_id, attempt=attempt, reason=reason)
        except (DependencyUnavailableError, PublishingConflictError, VideoNotFoundError) as exc:
            log.warning(json.dumps({"event": "release_failed", "video": video_id,
                                    "attempt": attempt, "error": str(exc)}))  # fmt: skip


class Ingest:
    """Handles SQS batches of upload notifications for one bucket."""

    def __init__(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder

    def handle(self, upload: Upload) -> str:
        """Start the transcode an upload calls for: ``"started"``, ``"failed"`` (the video,
        with a reason) or ``"ignored"`` (a duplicate, or not a draft's original).

        :raises BadMessageError: another bucket, a key outside ``uploads/<video-id>/``,
            or no video for it.
        :raises DependencyUnavailableError: retry later.
        :raises RetryLaterError: the attempt to take over may still be running.
        """
        bucket = self.transcoder.bucket
        if upload.bucket != bucket:
            raise BadMessageError(f"a notification of bucket {upload.bucket!r}, not {bucket!r}")
        video_id = upload_id_of(upload.key)
        if video_id is None:
            raise BadMessageError(f"{upload.key!r} is not uploads/<video-id>/<file>")
        try:
            video = self.transcoder.publishing.video(video_id)
        except VideoNotFoundError as exc:
            raise BadMessageError(f"no video {video_id} for upload {upload.key!r}") from exc
        if video.source_key != upload.key:
            return _ignored(video, upload, "not the video's original")
        rerun = upload.rerun and video.state in (READY, FAILED)
        if video.state == UPLOADING or rerun:
            attempt = 1
        elif video.state == PROCESSING and video.job_id is None:
            # An earlier delivery moved it but died before CreateJob: take over.
            attempt = video.attempts + 1
        else:
            return _ignored(video, upload, f"already {video.state}")
        try:
            return self.transcoder.start(video, attempt=attempt, rerun=rerun)
        except StaleAttemptError as exc:
            if attempt > 1 and exc.current_attempt == attempt - 1:
                # The attempt to take over still counts as alive: ask again later.
                raise RetryLaterError(f"video {video_id}: attempt {attempt - 1} is alive") from exc
            return _ignored(video, upload, f"another worker moved it first ({exc.expected})")
        except PublishingConflictError as exc:
            return _ignored(video, upload, f"another worker moved it first ({exc.expected})")

    def handle_batch(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        """An SQS event → ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}``."""
        failures: list[dict[str, str]] = []
        for record in event["Records"]:
            message_id = record["messageId"]
            try:
                for upload in uploads_in(record.get("body", "")):
                    outcome = self.handle(upload)
                    log.info(json.dumps({"event": "ingest", "message": message_id,
                                         "key": upload.key, "outcome": outcome}))  # fmt: skip
            except BadMessageError as exc:
                log.error(json.dumps({"event": "bad_message", "message": message_id,
                                      "error": str(exc)}))  # fmt: skip
                failures.append({"itemIdentifier": message_id})
            except (DependencyUnavailableError, RetryLaterError) as exc:
                log.warning(json.dumps({"event": "retry_later", "message": message_id,
                                        "error": str(exc)}))  # fmt: skip
                failures.append({"itemIdentifier": message_id})
            except Exception:
                # A bug must not lose an upload: the message comes back, then goes to the DLQ.
                log.exception(json.dumps({"event": "ingest_error", "message": message_id}))
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}


def _ignored(video: Video, upload: Upload, why: str) -> str:
    log.info(json.dumps({"event": "upload_ignored", "video": video.video_id, "key": upload.key,
                         "why": why}))  # fmt: skip
    return "ignored"

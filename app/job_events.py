"""Publish in AWS: MediaConvert "Job State Change" events (EventBridge) become catalog states.

A job carries its video id and attempt in ``userMetadata``. ``STATUS_UPDATE``
reports ``jobProgress.jobPercentComplete`` as progress; ``COMPLETE`` copies the
frame capture to the public ``posters/<id>.jpg`` and marks the video ready with
its HLS master, MP4 and poster (one conditional write: only the current
attempt can publish); ``ERROR`` starts the next attempt while
:meth:`~app.publishing.Publishing.can_retry` allows, else fails the video with
MediaConvert's error; ``CANCELED`` fails it. An event of an attempt that is no
longer current changes nothing. Event shapes and reasons: docs/mediaconvert.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import PROCESSING, Video
from app.errors import DependencyUnavailableError, PublishingConflictError, VideoNotFoundError
from app.ingest import Transcoder
from app.mediaconvert import USER_METADATA_ATTEMPT, USER_METADATA_VIDEO
from app.publishing import PublishedMedia, poster_key_for

log = logging.getLogger("vidgate.publish")

SOURCE = "aws.mediaconvert"
DETAIL_TYPE = "MediaConvert Job State Change"
HANDLED = frozenset({"STATUS_UPDATE", "COMPLETE", "ERROR", "CANCELED"})


class BadEventError(ValueError):
    """Not a MediaConvert job state change this function can read."""


@dataclass(frozen=True)
class JobEvent:
    """The parts of a job state change the catalog needs."""

    status: str
    job_id: str
    queue: str
    video_id: str | None
    attempt: int | None
    detail: Mapping[str, Any] = field(repr=False)

    @property
    def percent(self) -> float | None:
        """``jobProgress.jobPercentComplete`` of a STATUS_UPDATE, when MediaConvert gave it."""
        progress = self.detail.get("jobProgress") or {}
        value = progress.get("jobPercentComplete")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None

    @property
    def error(self) -> str:
        """MediaConvert's error code and message, for people."""
        code = self.detail.get("errorCode")
        message = str(self.detail.get("errorMessage") or "no message").strip()
        return f"MediaConvert error {code}: {message}" if code is not None else message


def parse_event(event: Mapping[str, Any]) -> JobEvent:
    """Read a MediaConvert Job State Change event.

    ``video_id`` / ``attempt`` are None for a job this stack did not create.

    :raises BadEventError: another source or detail type, or no job id or status.
    """
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise BadEventError(f"not a {DETAIL_TYPE} event: {event.get('detail-type')!r}")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise BadEventError("the event has no detail")
    status, job_id = detail.get("status"), detail.get("jobId")
    if not isinstance(status, str) or not isinstance(job_id, str) or not job_id:
        raise BadEventError("the event names no job or status")
    metadata = detail.get("userMetadata") or {}
    video_id = metadata.get(USER_METADATA_VIDEO)
    attempt_text = str(metadata.get(USER_METADATA_ATTEMPT, ""))
    attempt = int(attempt_text) if attempt_text.isdigit() and int(attempt_text) > 0 else None
    if not isinstance(video_id, str) or not video_id or attempt is None:
        video_id, attempt = None, None
    return JobEvent(status, job_id, str(detail.get("queue") or ""), video_id, attempt, detail)


@dataclass(frozen=True)
class Outputs:
    """Where a COMPLETE job wrote its files (keys in the bucket) and what the top rung is."""

    hls_key: str | None
    mp4_key: str
    capture_key: str | None
    width: int
    height: int
    duration_seconds: float


def _retry_died(video: Video, attempt: int) -> bool:
    """Whether ``video`` is in the attempt after ``attempt`` without a job: a retry that
    stopped between its ``processing`` write and CreateJob."""
    return video.state == PROCESSING and video.attempts == attempt + 1 and video.job_id is None


def _key_in(bucket: str, url: str) -> str:
    prefix = f"s3://{bucket}/"
    if not url.startswith(prefix):
        raise BadEventError(f"an output outside the bucket: {url!r}")
    return url[len(prefix) :]


def outputs_of(detail: Mapping[str, Any], bucket: str) -> Outputs:
    """The HLS master, the MP4 and the last frame capture of a COMPLETE event.

    :raises BadEventError: an output outside ``bucket``.
    """
    hls: str | None = None
    mp4, capture = "", None
    width = height = 0
    duration_ms = 0
    for group in detail.get("outputGroupDetails") or []:
        for url in group.get("playlistFilePaths") or []:
            if url.endswith(".m3u8"):
                hls = _key_in(bucket, url)
        for output in group.get("outputDetails") or []:
            for url in output.get("outputFilePaths") or []:
                if url.endswith(".mp4"):
                    mp4 = _key_in(bucket, url)
                elif url.endswith(".jpg"):
                    capture = _key_in(bucket, url)
            video = output.get("videoDetails") or {}
            if group.get("type") != "CMAF_GROUP" or not video:
                continue
            # The top video rendition: its size and length are the video's.
            if int(video.get("heightInPx") or 0) > height:
                width, height = int(video.get("widthInPx") or 0), int(video["heightInPx"])
            duration_ms = max(duration_ms, int(output.get("durationInMs") or 0))
    return Outputs(hls, mp4, capture, width, height, duration_ms / 1000)


class JobEvents:
    """Applies job state changes to the catalog; copies posters in ``bucket`` with ``s3``."""

    def __init__(self, transcoder: Transcoder, s3: Any, *, queue_arn: str = "") -> None:
        self.transcoder = transcoder
        self.publishing = transcoder.publishing
        self._s3 = s3
        self._bucket = transcoder.bucket
        self._queue_arn = queue_arn

    def handle(self, event: Mapping[str, Any]) -> str:
        """What the event did: ``progress``, ``ready``, ``retried``, ``failed`` or ``ignored``.

        :raises BadEventError: not a readable MediaConvert job event.
        :raises DependencyUnavailableError: DynamoDB, S3 or MediaConvert is down (the
            invocation fails; Lambda retries it, then the dead-letter queue keeps it).
        """
        job = parse_event(event)
        if job.status not in HANDLED:
            return self._ignored(job, "status not handled")
        if self._queue_arn and job.queue != self._queue_arn:
            return self._ignored(job, "another queue's job")
        if job.video_id is None or job.attempt is None:
            return self._ignored(job, "not a job of this pipeline (no video id and attempt)")
        try:
            video = self.publishing.video(job.video_id)
        except VideoNotFoundError:
            return self._ignored(job, "the video was removed")
        if job.status == "ERROR" and _retry_died(video, job.attempt):
            # The retry this error started stopped before CreateJob: start it again.
            return self._retry(job, video)
        if video.state != PROCESSING or video.attempts != job.attempt:
            return self._ignored(job, f"stale: the video is {video.state}, {video.attempts}")
        try:
            return self._apply(job)
        except PublishingConflictError as exc:
            return self._ignored(job, f"stale: {exc.expected}")

    def _apply(self, job: JobEvent) -> str:
        assert job.video_id is not None and job.attempt is not None
        video_id, attempt = job.video_id, job.attempt
        if job.status == "STATUS_UPDATE":
            percent = job.percent
            if percent is None:
                return self._ignored(job, "no percentage yet")
            self.publishing.report_progress(video_id, attempt=attempt, percent=percent)
            return "progress"
        if job.status == "COMPLETE":
            outputs = outputs_of(job.detail, self._bucket)
            poster = self._copy_poster(video_id, outputs.capture_key)
            media = PublishedMedia(
                hls_key=outputs.hls_key,
                mp4_key=outputs.mp4_key,
                poster_key=poster,
                duration_seconds=outputs.duration_seconds,
                width=outputs.width,
                height=outputs.height,
            )
            self.publishing.mark_ready(video_id, attempt=attempt, media=media)
            log.info(json.dumps({"event": "ready", "video": video_id, "job": job.job_id}))
            return "ready"
        if job.status == "ERROR" and self.publishing.can_retry(attempt):
            log.warning(json.dumps({"event": "job_error_retry", "video": video_id,
                                    "attempt": attempt, "error": job.error}))  # fmt: skip
            return self._retry(job, self.publishing.video(video_id))
        reason = "the transcode was canceled" if job.status == "CANCELED" else job.error
        self.publishing.mark_failed(video_id, reason=reason, attempt=attempt)
        log.warning(json.dumps({"event": "failed", "video": video_id, "reason": reason}))
        return "failed"

    def _retry(self, job: JobEvent, video: Video) -> str:
        """The next attempt after the video's current one: ``retried``, or ``failed``."""
        # The job's ERROR event says attempt n is over: n + 1 takes over without waiting.
        outcome = self.transcoder.start(video, attempt=video.attempts + 1, previous_ended=True)
        return "retried" if outcome == "started" else outcome

    def _copy_poster(self, video_id: str, capture_key: str | None) -> str | None:
        """Copy the frame capture to ``posters/<id>.jpg`` (public on the CDN); its key."""
        if capture_key is None:
            return None
        poster = poster_key_for(video_id)
        try:
            self._s3.copy_object(
                Bucket=self._bucket,
                Key=poster,
                CopySource={"Bucket": self._bucket, "Key": capture_key},
                ContentType="image/jpeg",
                MetadataDirective="REPLACE",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError(f"the poster could not be copied: {exc}") from exc
        return poster

    def _ignored(self, job: JobEvent, why: str) -> str:
        log.info(json.dumps({"event": "job_event_ignored", "job": job.job_id,
                             "status": job.status, "why": why}))  # fmt: skip
        return "ignored"

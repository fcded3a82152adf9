"""The local transcoder worker: what MediaConvert and the publish Lambda do in AWS.

It long-polls the ingest queue (docs/publishing.md#messages); for each original
it takes an attempt in the catalog (:class:`app.publishing.Publishing`),
downloads the original, transcodes it with the ladder
(:func:`app.ops.transcode.transcode`, which probes it first) while reporting
progress, uploads every rendition, the MP4 fallback and the poster, and only
then marks the video ready in one conditional write. While it works it keeps
the message hidden and the attempt alive (a heartbeat every third of the
visibility timeout); if it dies, the message comes back, the attempt goes
silent, and the next receive takes over with the next attempt, up to
``max_attempts``, then the video is failed with the reason
(docs/publishing.md#worker).

``python -m app.local.transcoder`` runs one worker process (``vidgate dev``
starts it); SIGTERM or SIGINT stops it cleanly: a transcode in progress is
abandoned, its attempt released and its message made visible again at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import FAILED, PROCESSING, READY, UPLOADING, Video, hls_folder, video_folder
from app.errors import (
    BadRequestError,
    DependencyUnavailableError,
    PublishingConflictError,
    VideoNotFoundError,
)
from app.ladder import DEFAULT_LADDER, Ladder
from app.ops.hls import PlaylistError, read_media_playlist
from app.ops.transcode import (
    DEFAULT_PRESET,
    MASTER,
    NoVideoStreamError,
    Renditions,
    TranscodeError,
    UnreadableSourceError,
    UnsupportedSourceSizeError,
    transcode,
)
from app.publishing import (
    IngestRequest,
    PublishedMedia,
    Publishing,
    delete_keys,
    list_keys,
    parse_ingest_message,
    poster_key_for,
)
from app.search import searchable_catalog

log = logging.getLogger("vidgate.transcoder")

DEFAULT_VISIBILITY_SECONDS = 60
PROGRESS_STEP = 5
"""Percent between two progress writes: the admin list moves, DynamoDB is not flooded."""
TRANSCODE_SHARE = 90
"""Percent of the progress bar the encode takes; the upload takes the rest, up to 99."""
TRUNCATED_RATIO = 0.9
"""Renditions shorter than this share of the duration the file declares: it is truncated."""
RETRY_DELAY_SECONDS = 2
"""Seconds before a released attempt's message comes back (times the attempt number)."""
ABANDONED_AFTER = timedelta(days=1)
"""A draft still uploading after this long is failed: the bucket aborts its parts then."""
SWEEP_SECONDS = 600.0
"""How often the worker looks for abandoned uploads."""
PERMANENT_ERRORS = (UnreadableSourceError, NoVideoStreamError, UnsupportedSourceSizeError)

Outcome = Literal["done", "again"]


class PermanentFailure(Exception):
    """The original can never be transcoded (the reason is for people)."""


class _Abandon(Exception):
    """Stop this attempt now: the worker is stopping, or another attempt took over."""

    def __init__(self, why: Literal["stopping", "superseded"]) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class WorkerOptions:
    queue_url: str
    bucket: str
    work_dir: Path
    visibility_timeout: int = DEFAULT_VISIBILITY_SECONDS
    wait_seconds: int = 20
    ladder: Ladder = DEFAULT_LADDER
    preset: str = DEFAULT_PRESET

    @property
    def heartbeat_every(self) -> float:
        return self.visibility_timeout / 3

    @property
    def heartbeat_timeout(self) -> timedelta:
        """Two thirds of the visibility timeout: a dead worker's attempt is stale by the
        time its message is visible again, a live one's never is."""
        return timedelta(seconds=self.visibility_timeout * 2 / 3)


class TranscoderWorker:
    """One worker: :meth:`run` until :meth:`stop`; :meth:`poll_once` for one receive."""

    def __init__(
        self,
        *,
        sqs: Any,
        s3: Any,
        publishing: Publishing,
        options: WorkerOptions,
        transcoder: Callable[..., Renditions] = transcode,
    ) -> None:
        if options.visibility_timeout < 3:
            raise ValueError("visibility_timeout must be at least 3 seconds")
        self.sqs = sqs
        self.s3 = s3
        self.publishing = publishing
        self.options = options
        self._transcode = transcoder
        self._stopping = threading.Event()

    # --- the loop ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop (from any thread or a signal handler's thread)."""
        self._stopping.set()

    def run(self) -> None:
        log.info("transcoder worker polling %s", self.options.queue_url)
        next_sweep = time.monotonic()
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                    for video_id in self.publishing.fail_abandoned_uploads(
                        older_than=ABANDONED_AFTER
                    ):
                        _event("upload_abandoned", video_id)
                self.poll_once()
            except (ClientError, BotoCoreError, DependencyUnavailableError) as exc:
                log.warning("ingest queue or catalog unavailable, retrying: %s", exc)
                self._stopping.wait(2)
        log.info("transcoder worker stopped")

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """Receive at most one message and handle it; the number received."""
        wait = self.options.wait_seconds if wait_seconds is None else wait_seconds
        response = self.sqs.receive_message(
            QueueUrl=self.options.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.options.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        for message in messages:
            self.handle(message)
        return len(messages)

    def handle(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        try:
            requests = parse_ingest_message(message.get("Body", ""))
        except BadRequestError as exc:
            # Left alone: after maxReceiveCount receives it is parked in the DLQ.
            log.error(json.dumps({"event": "poison_message", "reason": str(exc)}))
            return
        job_id = f"sqs-{message.get('MessageId', 'unknown')}"
        outcomes = [self._ingest(request, receipt, job_id) for request in requests]
        if all(outcome == "done" for outcome in outcomes):
            self.sqs.delete_message(QueueUrl=self.options.queue_url, ReceiptHandle=receipt)

    # --- one original --------------------------------------------------------------

    def _ingest(self, request: IngestRequest, receipt: str, job_id: str) -> Outcome:
        publishing = self.publishing
        try:
            video = publishing.video(request.video_id)
        except VideoNotFoundError:
            _event("no_draft", request.video_id, key=request.source_key)
            return "done"
        if request.bucket != self.options.bucket or video.source_key != request.source_key:
            _event("not_the_original", video.video_id, key=request.source_key)
            return "done"
        attempt = publishing.next_attempt(video)
        if video.state in (READY, FAILED) and not request.rerun:
            _event("already_" + video.state, video.video_id)  # a repeated S3 event
            return "done"
        if video.state == PROCESSING and not publishing.is_stale(video):
            _event("attempt_alive", video.video_id, attempt=video.attempts)  # it has its message
            return "done"
        if attempt > publishing.max_attempts:
            reason = (
                f"transcoding stopped {video.attempts} times without finishing "
                f"(last: {video.failure_reason or 'the worker stopped'})"
            )
            return self._fail(video.video_id, video.attempts, reason, only_if_stale=True)
        try:
            publishing.start_processing(
                video.video_id,
                attempt=attempt,
                job_id=job_id,  # the message's id: a re-transcode's sender can follow it
                rerun=request.rerun and video.state in (READY, FAILED, UPLOADING),
            )
        except PublishingConflictError as exc:
            _event("attempt_lost", video.video_id, attempt=attempt, reason=str(exc))
            return "done"
        _event("attempt_started", video.video_id, attempt=attempt)
        return self._attempt(request, video, attempt, receipt)

    def _attempt(self, request: IngestRequest, video: Video, attempt: int, receipt: str) -> Outcome:
        superseded = threading.Event()
        done = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(video.video_id, attempt, receipt, superseded, done),
            name=f"heartbeat-{video.video_id}",
            daemon=True,
        )
        beat.start()
        try:
            try:
                media = self._produce(request, video.video_id, attempt, superseded)
            finally:
                # The heartbeat stops before anything else is written: a release or a
                # failure must not be followed by a beat that makes the attempt look alive.
                done.set()
                beat.join()
            if superseded.is_set():
                raise _Abandon("superseded")
            self.publishing.mark_ready(video.video_id, attempt=attempt, media=media)
            _event("ready", video.video_id, attempt=attempt)
            return "done"
        except _Abandon as exc:
            if exc.why == "superseded":
                _event("attempt_superseded", video.video_id, attempt=attempt)
                return "done"
            self._release(video.video_id, attempt, "the transcoder was stopped", receipt, 0)
            return "again"
        except PermanentFailure as exc:
            return self._fail(video.video_id, attempt, str(exc))
        except VideoNotFoundError:
            self._removed_meanwhile(video.video_id)
            return "done"
        except PublishingConflictError as exc:
            _event("attempt_superseded", video.video_id, attempt=attempt, reason=str(exc))
            return "done"
        except Exception as exc:
            reason = _reason(exc)
            log.exception("attempt %d of %s failed", attempt, video.video_id)
            if not self.publishing.can_retry(attempt):
                return self._fail(
                    video.video_id, attempt, f"transcoding failed {attempt} times: {reason}"
                )
            self._release(video.video_id, attempt, reason, receipt, RETRY_DELAY_SECONDS * attempt)
            return "again"

    def _produce(
        self, request: IngestRequest, video_id: str, attempt: int, superseded: threading.Event
    ) -> PublishedMedia:
        """Download, transcode, check and upload; every file is in S3 when it returns."""
        reporter = _ProgressReporter(self.publishing, video_id, attempt)

        def check() -> None:
            if self._stopping.is_set():
                raise _Abandon("stopping")
            if superseded.is_set():
                raise _Abandon("superseded")

        def on_encode(percent: float) -> None:
            check()
            reporter(percent * TRANSCODE_SHARE / 100)

        self.options.work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{video_id}-", dir=self.options.work_dir))
        try:
            source = work / ("original" + Path(request.source_key).suffix.lower()[:10])
            try:
                self.s3.download_file(request.bucket, request.source_key, str(source))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchKey"):
                    raise PermanentFailure("the uploaded original is gone from the bucket") from exc
                if code == "InvalidObjectState":
                    raise PermanentFailure(
                        "the original is archived in S3 Glacier: restore it, then re-transcode"
                    ) from exc
                raise
            check()
            try:
                renditions = self._transcode(
                    source,
                    work / "out",
                    ladder=self.options.ladder,
                    progress=on_encode,
                    preset=self.options.preset,
                )
            except PERMANENT_ERRORS as exc:
                raise PermanentFailure(_transcode_reason(exc)) from exc
            _check_complete(renditions)
            check()
            return self._upload(video_id, renditions, reporter, check)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _upload(
        self,
        video_id: str,
        renditions: Renditions,
        reporter: _ProgressReporter,
        check: Callable[[], None],
    ) -> PublishedMedia:
        bucket = self.options.bucket
        files = [
            (hls_folder(video_id) + inside, path, content_type)
            for inside, path, content_type in renditions.hls_files()
        ]
        mp4_key = f"{video_folder(video_id)}{renditions.mp4.name}"
        files.append((mp4_key, renditions.mp4, "video/mp4"))
        poster_key = poster_key_for(video_id)
        files.append((poster_key, renditions.poster, "image/jpeg"))
        for index, (key, path, content_type) in enumerate(files, start=1):
            check()
            self.s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
            reporter(TRANSCODE_SHARE + (99 - TRANSCODE_SHARE) * index / len(files))
        self._delete_leftovers(video_id, {key for key, _, _ in files})
        top = max(renditions.variants, key=lambda v: v.height)
        return PublishedMedia(
            hls_key=hls_folder(video_id) + MASTER,
            mp4_key=mp4_key,
            poster_key=poster_key,
            duration_seconds=round(renditions.duration_seconds, 3),
            width=top.width,
            height=top.height,
            size_bytes=renditions.mp4.stat().st_size,
        )

    def _delete_leftovers(self, video_id: str, keep: set[str]) -> None:
        """Objects of an earlier run (another rung set) would be served with the new ones."""
        found = list_keys(self.s3, self.options.bucket, video_folder(video_id))
        delete_keys(self.s3, self.options.bucket, [k for k in found if k not in keep])

    def _removed_meanwhile(self, video_id: str) -> None:
        """The video was removed while this attempt ran: take its files away again."""
        _event("removed_while_processing", video_id)
        keys = list_keys(self.s3, self.options.bucket, video_folder(video_id))
        delete_keys(self.s3, self.options.bucket, [*keys, poster_key_for(video_id)])

    # --- keeping the attempt alive, giving it up ----------------------------------------

    def _heartbeat(
        self,
        video_id: str,
        attempt: int,
        receipt: str,
        superseded: threading.Event,
        done: threading.Event,
    ) -> None:
        while not done.wait(self.options.heartbeat_every):
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.options.queue_url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=self.options.visibility_timeout,
                )
                self.publishing.heartbeat(video_id, attempt=attempt)
            except (PublishingConflictError, VideoNotFoundError):
                superseded.set()
                return
            except (ClientError, BotoCoreError, DependencyUnavailableError) as exc:
                log.warning("heartbeat of %s attempt %d failed: %s", video_id, attempt, exc)

    def _release(self, video_id: str, attempt: int, reason: str, receipt: str, delay: int) -> None:
        try:
            self.publishing.release(video_id, attempt=attempt, reason=reason)
        except (PublishingConflictError, VideoNotFoundError):
            return
        _event("attempt_released", video_id, attempt=attempt, reason=reason)
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.options.queue_url, ReceiptHandle=receipt, VisibilityTimeout=delay
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not hand back the message of %s: %s", video_id, exc)

    def _fail(
        self, video_id: str, attempt: int, reason: str, *, only_if_stale: bool = False
    ) -> Outcome:
        try:
            self.publishing.mark_failed(
                video_id, reason=reason, attempt=attempt, only_if_stale=only_if_stale
            )
        except (PublishingConflictError, VideoNotFoundError) as exc:
            _event("fail_lost", video_id, attempt=attempt, reason=str(exc))
            return "done"
        _event("failed", video_id, attempt=attempt, reason=reason)
        return "done"


class _ProgressReporter:
    """Writes progress every :data:`PROGRESS_STEP` percent, never backwards."""

    def __init__(self, publishing: Publishing, video_id: str, attempt: int) -> None:
        self.publishing = publishing
        self.video_id = video_id
        self.attempt = attempt
        self.reported = 0

    def __call__(self, percent: float) -> None:
        step = int(percent // PROGRESS_STEP) * PROGRESS_STEP
        if step <= self.reported:
            return
        self.reported = step
        try:
            self.publishing.report_progress(self.video_id, attempt=self.attempt, percent=step)
        except PublishingConflictError as exc:
            raise _Abandon("superseded") from exc
        # VideoNotFoundError (removed meanwhile) goes up: the attempt cleans up after itself.


def _check_complete(renditions: Renditions) -> None:
    """A truncated file may probe fine (its header declares the whole length) and
    encode without an error: the renditions are then shorter than declared."""
    declared = renditions.duration_seconds
    for variant in renditions.variants:
        try:
            encoded = read_media_playlist(renditions.playlist(variant.name)).duration
        except PlaylistError as exc:
            raise PermanentFailure(f"the encoder left an unreadable playlist: {exc}") from exc
        if encoded < declared * TRUNCATED_RATIO:
            raise PermanentFailure(
                f"the file is truncated or damaged: only {encoded:.1f} s of its "
                f"{declared:.1f} s could be read"
            )


def _transcode_reason(exc: TranscodeError) -> str:
    if isinstance(exc, NoVideoStreamError):
        return "the file has no video stream (audio only, or not a video)"
    if isinstance(exc, UnreadableSourceError):
        return "the file cannot be read as a video (damaged, truncated or not a media file)"
    return f"the video's picture size or frame rate is not supported: {exc}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"S3 refused {exc.operation_name}: {error.get('Code', '?')}"
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _event(name: str, video_id: str, **fields: Any) -> None:
    log.info(json.dumps({"event": name, "video": video_id, **fields}, default=str))


# --- the process ------------------------------------------------------------------------


def build_worker(
    environ: dict[str, str],
    *,
    work_dir: Path,
    visibility_timeout: int,
    max_attempts: int,
    wait_seconds: int = 5,
    preset: str = DEFAULT_PRESET,
) -> TranscoderWorker:
    """A worker from the app's environment (as ``vidgate dev`` writes it)."""
    import boto3

    from app.config import Need, load_settings
    from app.dynamo import dynamodb_client

    settings = load_settings(environ, {Need.TABLES, Need.MEDIA, Need.INGEST})
    session = boto3.Session(region_name=settings.region)
    options = WorkerOptions(
        queue_url=settings.ingest_queue_url,
        bucket=settings.bucket,
        work_dir=work_dir,
        visibility_timeout=visibility_timeout,
        wait_seconds=wait_seconds,
        preset=preset,
    )
    dynamodb = dynamodb_client(session)
    # The search index follows every transition (a ready video becomes findable).
    catalog, _index = searchable_catalog(dynamodb, settings.videos_table, cache_seconds=0)
    publishing = Publishing(
        dynamodb,
        settings.videos_table,
        catalog=catalog,
        max_attempts=max_attempts,
        heartbeat_timeout=options.heartbeat_timeout,
    )
    return TranscoderWorker(
        sqs=session.client("sqs"), s3=session.client("s3"), publishing=publishing, options=options
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local transcoder worker.")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--visibility-timeout", type=int, default=DEFAULT_VISIBILITY_SECONDS)
    parser.add_argument("--max-attempts", type=int, default=3)
    # Short long-polls: a stop is noticed within this many seconds.
    parser.add_argument("--wait-seconds", type=int, default=5)
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = build_worker(
        dict(os.environ),
        work_dir=args.work_dir,
        visibility_timeout=args.visibility_timeout,
        max_attempts=args.max_attempts,
        wait_seconds=args.wait_seconds,
        preset=args.preset,
    )

    def _stop(signum: int, frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

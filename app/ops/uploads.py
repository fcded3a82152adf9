"""Publishing a video: check it, upload it to the private bucket, register it in the catalog.

:func:`upload_file` sends a file with boto3's transfer manager: S3 multipart
upload above ``multipart_threshold``, in ``part_size`` parts, several at a
time, reporting progress as bytes go out. It never leaves a multipart upload
behind: if a part fails or the operator interrupts (Ctrl-C), the transfer is
cancelled, its worker threads are waited for, and every multipart upload it
started for the key is aborted (S3 keeps, and bills, the parts of an upload
that is neither completed nor aborted).

:func:`submit_video` is what ``vidgate videos add`` does: probe the file
with ffmpeg (a file ffmpeg finds no video stream in is refused before any
byte is sent), create the draft in the catalog and upload the original under
``uploads/<id>/``; the publishing pipeline transcodes it from there
(docs/publishing.md). If the upload fails the draft is removed again. ffmpeg
comes in through the ``probe`` argument (by default :mod:`app.ops.media`,
imported only when used).

"""

from __future__ import annotations

import logging
import mimetypes
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import publishing
from app.catalog import TIERS, VIDEO_ID, Video, VideoCatalog
from app.errors import VideoExistsError as AppVideoExistsError
from app.errors import VideoNotFoundError
from app.signing import InvalidObjectKeyError, object_key_to_path

log = logging.getLogger("vidgate.uploads")

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB
"""S3's smallest part (all but the last); the transfer manager raises smaller sizes to it."""
DEFAULT_CONCURRENCY = 4
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_MAX_AUTO_ID_TRIES = 50

Progress = Callable[[int], None]
"""Called with the number of bytes just sent (from the transfer's worker threads)."""


class PublishError(Exception):
    """Base of the reasons a video could not be published; the message is one line for people."""


class NotAVideoFileError(PublishError):
    """The file is missing, not a regular file, or ffmpeg finds no video stream in it."""


class InvalidVideoDetailsError(PublishError):
    """A title, tier or id that the catalog would refuse (checked before any upload)."""


class VideoExistsError(PublishError):
    """The requested video id is taken; nothing is replaced."""


class UploadFailedError(PublishError):
    """The upload failed; every multipart upload it started was aborted."""


# --- the upload --------------------------------------------------------------------


def _transfer_config(part_size: int, threshold: int | None, concurrency: int) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=threshold if threshold is not None else part_size,
        multipart_chunksize=part_size,
        max_concurrency=concurrency,
        use_threads=True,
    )


def _abort_started(s3: Any, bucket: str, key: str, upload_ids: list[str]) -> None:
    """Abort the multipart uploads this transfer started for ``key`` that are still open."""
    if not upload_ids:
        return
    try:
        listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        open_ids = {u["UploadId"] for u in listed if u.get("Key") == key}
    except (ClientError, BotoCoreError):
        open_ids = set(upload_ids)  # cannot tell: try them all
    for upload_id in upload_ids:
        if upload_id not in open_ids:
            continue  # the transfer manager's own clean-up got there first
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            log.info("aborted multipart upload %s of s3://%s/%s", upload_id, bucket, key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                log.error("could not abort multipart upload %s of %s: %s", upload_id, key, exc)


def upload_file(
    s3: Any,
    bucket: str,
    key: str,
    path: Path,
    *,
    content_type: str,
    part_size: int = DEFAULT_PART_SIZE,
    multipart_threshold: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> int:
    """Upload ``path`` to ``s3://bucket/key``; multipart above the threshold. Returns the size.

    On any failure or interruption the transfer is cancelled and waited for,
    and each multipart upload it created is aborted, so
    ``list_multipart_uploads`` shows none of them afterwards.

    :raises UploadFailedError: S3 refused or the connection failed.
    :raises KeyboardInterrupt: re-raised after the clean-up.
    """
    from boto3.s3.transfer import ProgressCallbackInvoker, create_transfer_manager

    size = path.stat().st_size
    started: list[str] = []

    def remember(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Key") == key and parsed.get("UploadId"):
            started.append(str(parsed["UploadId"]))

    hook_id = f"vidgate-upload-{uuid.uuid4().hex}"
    events = s3.meta.events
    events.register("after-call.s3.CreateMultipartUpload", remember, unique_id=hook_id)
    try:
        manager = create_transfer_manager(
            s3, _transfer_config(part_size, multipart_threshold, concurrency)
        )
        subscribers = [ProgressCallbackInvoker(progress)] if progress else None
        # Leaving the block with an exception cancels the transfer and waits
        # for its threads, so no part is still in flight when we abort below.
        with manager:
            future = manager.upload(
                str(path),
                bucket,
                key,
                extra_args={"ContentType": content_type},
                subscribers=subscribers,
            )
            future.result()
    except BaseException as exc:
        _abort_started(s3, bucket, key, started)
        if isinstance(exc, Exception):
            raise UploadFailedError(f"upload of {path.name} failed: {_reason(exc)}") from exc
        raise
    finally:
        events.unregister("after-call.s3.CreateMultipartUpload", unique_id=hook_id)
    return size


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[Progress]:
    """A tqdm bar on stderr (only on a terminal) fed by the upload's byte counts."""
    from tqdm import tqdm

    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=description,
        disable=None,  # None: off when stderr is not a terminal
        leave=True,
    ) as bar:
        yield bar.update


# --- publishing a video ------------------------------------------------------------


@dataclass(frozen=True)
class VideoDetails:
    """What the operator says about a new video."""

    title: str
    tier: str
    description: str = ""
    video_id: str | None = None


def slug(title: str) -> str:
    """A video id from a title: lower-case ASCII letters, digits and dashes (1-64 chars)."""
    text = _SLUG_DROP.sub("-", title.lower()).strip("-")[:56].strip("-")
    return text or "video"


def content_type_for(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed and guessed.startswith("video/") else "video/mp4"


def _check_details(details: VideoDetails) -> None:
    if not details.title.strip():
        raise InvalidVideoDetailsError("the title must not be empty")
    if len(details.title) > 4096 or len(details.description) > 4096:
        raise InvalidVideoDetailsError("title and description are limited to 4096 characters")
    if details.tier not in TIERS:
        raise InvalidVideoDetailsError(f"tier must be one of {', '.join(sorted(TIERS))}")
    if details.video_id is not None and not VIDEO_ID.match(details.video_id):
        raise InvalidVideoDetailsError("a video id is 1-64 of A-Z a-z 0-9 _ -")


def _exists(catalog: VideoCatalog, video_id: str) -> bool:
    try:
        catalog.get_any(video_id)
    except VideoNotFoundError:
        return False
    return True


def _choose_id(catalog: VideoCatalog, details: VideoDetails) -> str:
    if details.video_id is not None:
        if _exists(catalog, details.video_id):
            raise VideoExistsError(
                f"a video with id {details.video_id!r} exists; choose another --id"
            )
        return details.video_id
    base = slug(details.title)
    for n in range(1, _MAX_AUTO_ID_TRIES + 1):
        candidate = base if n == 1 else f"{base}-{n}"
        if not _exists(catalog, candidate):
            return candidate
    raise VideoExistsError(f"ids {base!r}..{base}-{_MAX_AUTO_ID_TRIES} are taken; pass --id")


def _default_probe(path: Path) -> float:
    from app.ops.media import probe_duration

    return probe_duration(path)


def original_file_name(path: Path) -> str:
    """The original's name under ``uploads/<id>/``: the file's own name when S3 keys allow it."""
    name = path.name
    try:
        object_key_to_path(f"{publishing.UPLOADS_PREFIX}x/{name}")
    except InvalidObjectKeyError:
        name = f"original{path.suffix.lower()[:10]}"
    return name


def submit_video(
    path: Path,
    details: VideoDetails,
    *,
    s3: Any,
    bucket: str,
    catalog: VideoCatalog,
    pipeline: publishing.Publishing,
    probe: Callable[[Path], float] = _default_probe,
    progress: Callable[[int, str], AbstractContextManager[Progress]] | None = None,
    part_size: int = DEFAULT_PART_SIZE,
) -> Video:
    """Put ``path`` into the publishing pipeline: a draft (``uploading``), then the original
    uploaded to ``uploads/<id>/<file>``, whose arrival the bucket notifies to the ingest
    queue (docs/publishing.md#messages). Returns the draft; the transcoder makes it ready.

    ``progress(total_bytes, description)`` returns a context manager yielding a
    byte-count callback (see :func:`progress_bar`).

    :raises NotAVideoFileError: missing file, or ffmpeg finds no video in it (nothing uploaded).
    :raises InvalidVideoDetailsError: bad title, tier or id (nothing uploaded).
    :raises VideoExistsError: ``details.video_id`` is taken (nothing uploaded).
    :raises UploadFailedError: the upload failed (the draft is removed again, no multipart
        upload left behind).
    """
    if not path.is_file():
        raise NotAVideoFileError(f"{path}: no such file")
    _check_details(details)
    try:
        probe(path)  # refused here, before a byte is sent; the transcoder probes again
    except ValueError as exc:
        raise NotAVideoFileError(
            f"{path.name} is not a video file (ffmpeg found no video in it)"
        ) from exc
    video_id = _choose_id(catalog, details)
    key = publishing.source_key_for(video_id, original_file_name(path))
    try:
        draft = pipeline.create_draft(
            video_id,
            title=details.title.strip(),
            tier=details.tier,
            description=details.description,
            source_key=key,
        )
    except AppVideoExistsError as exc:
        raise VideoExistsError(f"a video with id {video_id!r} exists; choose another --id") from exc
    try:
        size = path.stat().st_size
        content_type = content_type_for(path)
        if progress is not None:
            with progress(size, path.name) as tick:
                upload_file(
                    s3,
                    bucket,
                    key,
                    path,
                    content_type=content_type,
                    part_size=part_size,
                    progress=tick,
                )
        else:
            upload_file(s3, bucket, key, path, content_type=content_type, part_size=part_size)
    except BaseException:
        # Nothing reached S3 (the upload is aborted): the draft would wait forever.
        with suppress(VideoNotFoundError, ClientError, BotoCoreError):
            catalog.remove(video_id)
        raise
    log.info("uploaded the original of %s to %s (%d bytes)", video_id, key, size)
    return draft


def remove_video(
    video_id: str, *, s3: Any, bucket: str, catalog: VideoCatalog, keep_media: bool = False
) -> Video:
    """Delete a video's catalog entry and (unless ``keep_media``) its renditions and poster;
    the original is kept, tagged (:func:`app.publishing.remove_video`).

    :raises VideoNotFoundError: no video has this id.
    """
    if keep_media:
        video = catalog.get_any(video_id)
        catalog.remove(video_id)
        return video
    return publishing.remove_video(video_id, catalog=catalog, s3=s3, bucket=bucket).video


# --- every video, published or not ---------------------------------------------------

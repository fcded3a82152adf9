"""Publishing a video: check it, upload it to the private bucket, register it in the catalog.

:func:`upload_file` sends a file with boto3's transfer manager: S3 multipart
upload above ``multipart_threshold``, in ``part_size`` parts, several at a
time, reporting progress as bytes go out. It never leaves a multipart upload
behind: if a part fails or the operator interrupts (Ctrl-C), the transfer is
cancelled, its worker threads are waited for, and every multipart upload it
started for the key is aborted (S3 keeps, and bills, the parts of an upload
that is neither completed nor aborted).

:func:`publish_video` is what ``vidgate videos add`` does: probe the file
with ffmpeg (a file ffmpeg finds no video stream in is refused before any
byte is sent), take a poster frame, upload both, and only then put the video
in the catalog; if anything after the first byte fails, the objects it
uploaded are deleted again. ffmpeg comes in through ``probe``/``poster``
arguments (by default :mod:`app.local.media`, imported only when used), so
nothing here needs the local stack.

"""

from __future__ import annotations

import logging
import mimetypes
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import TIERS, VIDEO_ID, Video, VideoCatalog
from app.errors import VideoNotFoundError
from app.signing import InvalidObjectKeyError, object_key_to_path

log = logging.getLogger("vidgate.uploads")

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB
"""S3's smallest part (all but the last); the transfer manager raises smaller sizes to it."""
DEFAULT_CONCURRENCY = 4
VIDEO_PREFIX = "videos/"
POSTER_PREFIX = "posters/"
POSTER_CONTENT_TYPE = "image/jpeg"
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


def video_object_key(video_id: str, path: Path) -> str:
    """``videos/<id>/<file name>``, or ``videos/<id>/<id><suffix>`` for a name S3 keys refuse."""
    key = f"{VIDEO_PREFIX}{video_id}/{path.name}"
    try:
        object_key_to_path(key)
    except InvalidObjectKeyError:
        key = f"{VIDEO_PREFIX}{video_id}/{video_id}{path.suffix.lower()[:10]}"
    return key


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


def _default_poster(video: Path, out: Path, at_seconds: float) -> None:
    from app.ops.media import make_poster

    make_poster(video, out, at_seconds=at_seconds)


def publish_video(
    path: Path,
    details: VideoDetails,
    *,
    s3: Any,
    bucket: str,
    catalog: VideoCatalog,
    probe: Callable[[Path], float] = _default_probe,
    poster: Callable[[Path, Path, float], None] = _default_poster,
    progress: Callable[[int, str], AbstractContextManager[Progress]] | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Video:
    """Probe, poster, upload and register ``path``; the new catalog entry is published.

    ``progress(total_bytes, description)`` returns a context manager yielding a
    byte-count callback (see :func:`progress_bar`).

    :raises NotAVideoFileError: missing file, or ffmpeg finds no video in it (nothing uploaded).
    :raises InvalidVideoDetailsError: bad title, tier or id (nothing uploaded).
    :raises VideoExistsError: ``details.video_id`` is taken (nothing uploaded).
    :raises UploadFailedError: the upload failed (no multipart upload left behind).
    """
    if not path.is_file():
        raise NotAVideoFileError(f"{path}: no such file")
    _check_details(details)
    try:
        duration = probe(path)
    except ValueError as exc:
        raise NotAVideoFileError(
            f"{path.name} is not a video file (ffmpeg found no video in it)"
        ) from exc
    video_id = _choose_id(catalog, details)
    key = video_object_key(video_id, path)
    poster_key: str | None = f"{POSTER_PREFIX}{video_id}.jpg"
    content_type = content_type_for(path)
    uploaded: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vidgate-poster-") as tmp:
        poster_file = Path(tmp) / "poster.jpg"
        try:
            poster(path, poster_file, min(1.0, duration / 2))
        except Exception as exc:  # a video without a poster is still a video
            log.warning("no poster for %s: %s", path.name, _reason(exc))
            poster_key = None
        try:
            size = path.stat().st_size
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
            uploaded.append(key)
            if poster_key is not None:
                upload_file(
                    s3,
                    bucket,
                    poster_key,
                    poster_file,
                    content_type=POSTER_CONTENT_TYPE,
                    part_size=part_size,
                )
                uploaded.append(poster_key)
            video = catalog.put(
                Video(
                    video_id=video_id,
                    title=details.title.strip(),
                    description=details.description,
                    tier=details.tier,  # type: ignore[arg-type]  # checked above
                    object_key=key,
                    content_type=content_type,
                    duration_seconds=round(duration, 3),
                    poster_key=poster_key,
                    size_bytes=size,
                    created_at=clock(),
                    published=True,
                )
            )
        except BaseException:
            _delete_objects(s3, bucket, uploaded)
            raise
    log.info("published video %s (%s, %d bytes)", video_id, key, size)
    return video


def _delete_objects(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        with suppress(ClientError, BotoCoreError):
            s3.delete_object(Bucket=bucket, Key=key)


def remove_video(
    video_id: str, *, s3: Any, bucket: str, catalog: VideoCatalog, keep_media: bool = False
) -> Video:
    """Delete a video's catalog entry and (unless ``keep_media``) its objects.

    :raises VideoNotFoundError: no video has this id.
    """
    video = catalog.get_any(video_id)
    catalog.remove(video_id)
    if not keep_media:
        _delete_objects(s3, bucket, [k for k in (video.object_key, video.poster_key) if k])
    return video


# --- every video, published or not ---------------------------------------------------

"""The video catalog, in DynamoDB.

A video has a progressive MP4 (``object_key``), an HLS master playlist
(``hls_key``), or both. An HLS playlist must lie inside its own video's folder,
``videos/<id>/hls/``: the grant's signed cookies open that whole folder, so a
playlist anywhere else would open another video (docs/streaming.md#c-2).
:meth:`VideoCatalog.put` refuses such an entry, and a stored one is read
without its HLS (never playable as HLS).

A video moves through publishing states (docs/publishing.md#states):
``uploading`` → ``processing`` (``progress`` percent) → ``ready`` | ``failed``;
the transitions are written by ``app.publishing``. An item written before states
existed has none and reads as ``ready``. Viewers (:meth:`VideoCatalog.get`,
:meth:`~VideoCatalog.recent`, :meth:`~VideoCatalog.get_with`,
:meth:`~VideoCatalog.list`) only ever see videos that are ready AND published;
admins (:meth:`~VideoCatalog.get_any`, :meth:`~VideoCatalog.list_all`) see all.

Videos that are published and ready carry ``catalog="published"``, so the sparse
``catalog-index`` lists exactly them, newest first (``sort_key`` is
``created_at#video_id``). What is read of a video stays in memory for
``cache_seconds``, never more than :data:`MAX_CACHE_SECONDS`
(:meth:`VideoCatalog.recent`), and every read is strongly consistent, so a
tier change, an unpublish or a removal made by any process reaches every
process within that second; one made through this catalog clears its own copy
at once. A video not in memory is read with the viewer's entitlement in one
BatchGetItem (:meth:`VideoCatalog.get_with`): a grant never costs more than
one DynamoDB round trip. Posters are public on the CDN; :func:`poster_url`
builds their URL.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from botocore.exceptions import ClientError

from app.dynamo import (
    Item,
    KeyRead,
    b,
    batch_get_pair,
    check_limit,
    decode_cursor,
    error_code,
    format_time,
    get_bool,
    get_n,
    get_s,
    get_time,
    n,
    query_page,
    s,
    unavailable_on_errors,
)
from app.errors import BadRequestError, VideoNotFoundError
from app.signing import InvalidObjectKeyError, object_key_to_path
from app.tables import VIDEOS_ALL_INDEX, VIDEOS_CATALOG_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("vidgate.catalog")

Tier = Literal["free", "premium"]
TIERS: frozenset[str] = frozenset({"free", "premium"})
State = Literal["uploading", "processing", "ready", "failed"]
UPLOADING: State = "uploading"
PROCESSING: State = "processing"
READY: State = "ready"
FAILED: State = "failed"
STATES: frozenset[str] = frozenset({UPLOADING, PROCESSING, READY, FAILED})
Format = Literal["hls", "mp4"]
FORMATS: frozenset[str] = frozenset({"hls", "mp4"})
HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
HLS_CONTENT_TYPES = frozenset({HLS_CONTENT_TYPE, "application/x-mpegurl"})
PUBLISHED = "published"
VIDEO_ENTITY = "video"
VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CATEGORIES: dict[str, str] = {
    "animation": "Animation",
    "comedy": "Comedy",
    "documentary": "Documentary",
    "drama": "Drama",
    "kids": "Kids",
    "music": "Music",
    "nature": "Nature",
    "science": "Science",
    "sports": "Sports",
    "tutorials": "Tutorials",
}
"""The categories a video may be filed under (slug -> label): a closed list, stable links."""
MAX_CATEGORIES = 4
CACHE_MAX_ENTRIES = 1024
MAX_CACHE_SECONDS = 1.0
"""The longest a video read from DynamoDB is reused: the bound on how late a catalog
change made in another process reaches a free video's grants (premium ones: never late)."""
_T = TypeVar("_T")
_STATE_RACE_TRIES = 3
_TEXT_MAX = 4096


@dataclass(frozen=True)
class Video:
    """One video's metadata; the media itself sits in the private bucket.

    ``object_key`` / ``content_type``: the progressive MP4 (``""`` when the video
    has HLS only). ``hls_key``: the HLS master playlist, inside
    :func:`hls_folder` of this video, or None.

    Publishing (docs/publishing.md#states): ``state``; ``progress`` (0-100, while
    processing); ``failure_reason`` (for people, when failed); ``attempts`` (transcode
    attempts of the current run); ``source_key`` (the original,
    ``uploads/<upload-id>/<file>``); ``job_id`` (the transcode job of the current
    attempt); ``width``/``height`` of the top rendition; ``heartbeat_at``: when the
    current attempt last said it is alive. Only a ``ready`` video
    that is ``published`` reaches viewers (:attr:`viewable`).
    """

    video_id: str
    title: str
    description: str
    tier: Tier
    object_key: str
    content_type: str
    duration_seconds: float
    poster_key: str | None
    size_bytes: int
    created_at: datetime
    published: bool = True
    hls_key: str | None = None
    categories: tuple[str, ...] = ()
    state: State = READY
    progress: int = 0
    failure_reason: str | None = None
    attempts: int = 0
    source_key: str | None = None
    job_id: str | None = None
    width: int = 0
    height: int = 0
    heartbeat_at: datetime | None = None

    @property
    def viewable(self) -> bool:
        """Ready and published: the only videos viewers may see or play."""
        return self.published and self.state == READY

    @property
    def sort_key(self) -> str:
        return f"{format_time(self.created_at)}#{self.video_id}"

    @property
    def formats(self) -> tuple[Format, ...]:
        """What this video can be played as, HLS first: never a playlist outside its folder."""
        found: list[Format] = []
        if self.hls_key is not None and is_hls_key_for(self.video_id, self.hls_key):
            found.append("hls")
        if self.object_key:
            found.append("mp4")
        return tuple(found)

    def to_public(self, poster_url: str | None) -> dict[str, Any]:
        """The catalog item of the HTTP API (``GET /api/videos``)."""
        return {
            "id": self.video_id,
            "title": self.title,
            "description": self.description,
            "tier": self.tier,
            "duration_seconds": self.duration_seconds,
            "poster_url": poster_url,
            "categories": list(self.categories),
        }


VideoPage = tuple[list[Video], str | None]
"""A page of videos and the cursor of the next page (None on the last)."""


def poster_url(video: Video, cdn_url: str) -> str | None:
    """The poster's URL under the CDN's public ``posters/`` path (no signature needed).

    None when the video has no poster, there is no CDN URL, or the poster key
    cannot be served (logged: a catalog entry to fix, not the viewer's problem).
    """
    if not video.poster_key or not cdn_url:
        return None
    try:
        return cdn_url.rstrip("/") + object_key_to_path(video.poster_key)
    except InvalidObjectKeyError:
        log.warning(json.dumps({"event": "bad_poster_key", "video": video.video_id}))
        return None


def is_video_id(video_id: object) -> bool:
    return isinstance(video_id, str) and VIDEO_ID.match(video_id) is not None


def video_folder(video_id: str) -> str:
    """``videos/<id>/``: the key prefix of everything one video is made of."""
    return f"videos/{video_id}/"


def hls_folder(video_id: str) -> str:
    """``videos/<id>/hls/``: the key prefix of one video's HLS renditions (and of its cookies)."""
    return video_folder(video_id) + "hls/"


def is_hls_key_for(video_id: str, key: object) -> bool:
    """True when ``key`` is a ``.m3u8`` playlist inside ``videos/<video_id>/hls/``.

    The key must also be one the signer accepts (no ``.``/``..`` segment, no
    ``//``), so ``videos/a/hls/../b/master.m3u8`` is not inside ``a``'s folder.
    """
    if not is_video_id(video_id) or not isinstance(key, str):
        return False
    folder = hls_folder(video_id)
    if not key.startswith(folder) or not key.endswith(".m3u8") or len(key) <= len(folder) + 5:
        return False
    try:
        object_key_to_path(key)
    except InvalidObjectKeyError:
        return False
    return True


class VideoCatalog:
    """Reads (with a cache of at most a second) and maintains the catalog.

    :raises ValueError: ``cache_seconds`` outside 0 to :data:`MAX_CACHE_SECONDS`.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        videos_table: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = MAX_CACHE_SECONDS,
    ) -> None:
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be 0 to {MAX_CACHE_SECONDS}: {cache_seconds!r}")
        self._client = client
        self._table = videos_table
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Video]] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], object]] = []

    def on_change(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(video_id)`` after every write of a video (e.g. the search index)."""
        self._listeners.append(listener)

    def notify_changed(self, video_id: str) -> None:
        """Tell the listeners ``video_id`` was written (writers outside this class call it too)."""
        for listener in self._listeners:
            listener(video_id)

    # --- reading -------------------------------------------------------------------

    def get(self, video_id: str) -> Video:
        """A published, ready video, from the cache when it was read within ``cache_seconds``.

        :raises VideoNotFoundError: no published, ready video has this id (or the id is
            malformed).
        :raises DependencyUnavailableError: DynamoDB cannot be read.
        """
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        cached = self._cached(video_id)
        if cached is not None:
            return cached
        read_at = self._clock()
        return self._published(video_id, self._read(video_id), read_at)

    def recent(self, video_id: str) -> Video | None:
        """The published video as read within the last ``cache_seconds``, or None.

        Never a DynamoDB read. A change made by another process may be up to
        ``cache_seconds`` old here: the bound on how late it reaches grants.
        """
        return self._cached(video_id)

    def get_with(self, video_id: str, other: KeyRead[_T]) -> tuple[Video, _T]:
        """A published video read fresh, with ``other`` (the viewer's entitlement) in one
        strongly consistent BatchGetItem: one round trip.

        :raises VideoNotFoundError: no published video has this id (or the id is malformed).
        :raises DependencyUnavailableError: DynamoDB cannot be read.
        """
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        read: KeyRead[Video | None] = KeyRead(
            self._table,
            {"video_id": s(video_id)},
            lambda item: video_from_item(item) if item else None,
        )
        read_at = self._clock()
        video, found = batch_get_pair(self._client, read, other)
        return self._published(video_id, video, read_at), found

    def get_any(self, video_id: str) -> Video:
        """A video, published or not, in any state, read fresh (for admins).

        :raises VideoNotFoundError: no video has this id.
        """
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        video = self._read(video_id)
        if video is None:
            raise VideoNotFoundError(f"no video {video_id}")
        return video

    def list(self, limit: int, cursor: str | None) -> VideoPage:
        """Published, ready videos, newest first, ``limit`` (``app.dynamo.check_limit``) a page.

        :raises BadRequestError: bad limit, or a cursor not issued for this listing.
        """
        return self._page(VIDEOS_CATALOG_INDEX, "catalog", PUBLISHED, limit, cursor)

    def list_all(self, limit: int, cursor: str | None) -> VideoPage:
        """Every video, published or not, in any state (for admins), newest first.

        :raises BadRequestError: bad limit, or a cursor not issued for this listing.
        """
        return self._page(VIDEOS_ALL_INDEX, "entity", VIDEO_ENTITY, limit, cursor)

    def _page(
        self, index: str, partition: str, value: str, limit: int, cursor: str | None
    ) -> VideoPage:
        """One page of a Query on ``index`` (partition ``partition = value``), newest first."""
        limit = check_limit(limit)
        start = decode_cursor(
            cursor,
            key_types={"video_id": "S", partition: "S", "sort_key": "S"},
            fixed={partition: value},
        )
        items, next_cursor = query_page(
            self._client,
            {
                "TableName": self._table,
                "IndexName": index,
                "KeyConditionExpression": "#p = :p",
                "ExpressionAttributeNames": {"#p": partition},
                "ExpressionAttributeValues": {":p": s(value)},
                "ScanIndexForward": False,
            },
            limit=limit,
            start_key=start,
            key_attributes=("video_id", partition, "sort_key"),
        )
        return [video_from_item(item) for item in items], next_cursor

    # --- changing ------------------------------------------------------------------

    def put(self, video: Video) -> Video:
        """Create or replace ``video`` (published, ready ones appear in the listing).

        :raises BadRequestError: a field is malformed, a ready video has neither an MP4
            nor an HLS playlist, or the playlist is not inside ``videos/<id>/hls/``.
        """
        _check_video(video)
        item = video_item(video)
        with unavailable_on_errors():
            self._client.put_item(TableName=self._table, Item=item)
        self.invalidate(video.video_id)
        self.notify_changed(video.video_id)
        return video_from_item(item)

    def update(
        self,
        video_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        tier: str | None = None,
        categories: Sequence[str] | None = None,
    ) -> Video:
        """Change the given fields of an existing video (``categories=()`` clears them).

        :raises VideoNotFoundError: no video has this id.
        :raises BadRequestError: a new value is malformed.
        """
        sets: list[str] = []
        names: dict[str, str] = {}
        values: Item = {}
        if title is not None:
            sets.append("#t = :t")
            names["#t"] = "title"
            values[":t"] = s(_check_text(title, "title", required=True))
        if description is not None:
            sets.append("#d = :d")
            names["#d"] = "description"
            values[":d"] = s(_check_text(description, "description", required=False))
        if tier is not None:
            sets.append("#tier = :tier")
            names["#tier"] = "tier"
            values[":tier"] = s(_check_tier(tier))
        removes: list[str] = []
        if categories is not None:
            names["#cat"] = "categories"
            checked = check_categories(categories)
            if checked:
                sets.append("#cat = :cat")
                values[":cat"] = {"SS": list(checked)}
            else:
                removes.append("#cat")
        if not sets and not removes:
            return self.get_any(video_id)
        expression = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE " + ", ".join(removes) if removes else ""
        )
        return self._update(video_id, expression.strip(), names, values)

    def set_poster(self, video_id: str, poster_key: str) -> Video:
        """Point the video at a new poster object. :raises VideoNotFoundError:"""
        return self._update(
            video_id,
            "SET #poster = :poster",
            {"#poster": "poster_key"},
            {":poster": s(_check_text(poster_key, "poster_key", required=True))},
        )

    def publish(self, video_id: str) -> Video:
        """Show a video in the catalog again (viewers see it once it is also ready).

        One conditional write: a ready video (or one from before states) also joins
        the sparse listing; a video still in the pipeline only gets ``published``, and
        ``app.publishing`` lists it when it becomes ready.

        :raises VideoNotFoundError: no video has this id.
        """
        for _ in range(_STATE_RACE_TRIES):
            try:
                return self._update(
                    video_id,
                    "SET #pub = :true, #c = :c",
                    {"#pub": "published", "#c": "catalog", "#st": "state"},
                    {":true": b(True), ":c": s(PUBLISHED), ":ready": s(READY)},
                    condition="attribute_not_exists(#st) OR #st = :ready",
                )
            except _ConditionFailedError:
                pass
            try:
                return self._update(
                    video_id,
                    "SET #pub = :true REMOVE #c",
                    {"#pub": "published", "#c": "catalog", "#st": "state"},
                    {":true": b(True), ":ready": s(READY)},
                    condition="attribute_exists(#st) AND #st <> :ready",
                )
            except _ConditionFailedError:
                pass
        # Both conditions failed each time: the item is gone (or its state keeps changing).
        self.get_any(video_id)
        raise VideoNotFoundError(f"video {video_id} changed state while being published")

    def unpublish(self, video_id: str) -> Video:
        """Hide a video: out of the listing, not playable, still in the table.

        :raises VideoNotFoundError: no video has this id.
        """
        return self._update(
            video_id,
            "SET #pub = :false REMOVE #c",
            {"#pub": "published", "#c": "catalog"},
            {":false": b(False)},
        )

    def remove(self, video_id: str) -> None:
        """Delete a video's metadata. :raises VideoNotFoundError: no video has this id."""
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        with unavailable_on_errors():
            response = self._client.delete_item(
                TableName=self._table, Key={"video_id": s(video_id)}, ReturnValues="ALL_OLD"
            )
        self.invalidate(video_id)
        if not response.get("Attributes"):
            raise VideoNotFoundError(f"no video {video_id}")
        self.notify_changed(video_id)

    def invalidate(self, video_id: str) -> None:
        """Forget the cached copy of one video (this process only)."""
        with self._lock:
            self._cache.pop(video_id, None)

    # --- internals -----------------------------------------------------------------

    def _cached(self, video_id: str) -> Video | None:
        with self._lock:
            hit = self._cache.get(video_id)
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    def _published(self, video_id: str, video: Video | None, read_at: float) -> Video:
        """``video`` if it is published, remembered until ``cache_seconds`` after
        ``read_at`` (taken before the read: the copy is never older than that); else not found.
        """
        if video is None or not video.viewable:
            self.invalidate(video_id)
            raise VideoNotFoundError(f"no published video {video_id}")
        if self._cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._evict(self._clock())
                self._cache[video_id] = (read_at + self._cache_seconds, video)
        return video

    def _read(self, video_id: str) -> Video | None:
        with unavailable_on_errors():
            response = self._client.get_item(
                TableName=self._table, Key={"video_id": s(video_id)}, ConsistentRead=True
            )
        item = response.get("Item")
        return video_from_item(item) if item else None

    def _update(
        self,
        video_id: str,
        expression: str,
        names: dict[str, str],
        values: Item,
        *,
        condition: str | None = None,
    ) -> Video:
        """One UpdateItem on an existing video; ``condition`` (ANDed with existence)
        failing on an existing item raises :class:`_ConditionFailedError`.
        """
        if not is_video_id(video_id):
            raise VideoNotFoundError("no such video")
        full = (
            "attribute_exists(#id)"
            if condition is None
            else f"attribute_exists(#id) AND ({condition})"
        )
        try:
            request: dict[str, Any] = {
                "TableName": self._table,
                "Key": {"video_id": s(video_id)},
                "UpdateExpression": expression,
                "ConditionExpression": full,
                "ExpressionAttributeNames": {**names, "#id": "video_id"},
                "ReturnValues": "ALL_NEW",
            }
            if values:  # DynamoDB refuses an empty map (a REMOVE-only update has no values)
                request["ExpressionAttributeValues"] = values
            with unavailable_on_errors():
                response = self._client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                if condition is not None:
                    raise _ConditionFailedError(video_id) from exc
                raise VideoNotFoundError(f"no video {video_id}") from exc
            raise
        finally:
            self.invalidate(video_id)
        self.notify_changed(video_id)
        return video_from_item(response["Attributes"])

    def _evict(self, now: float) -> None:
        """Drop expired entries, then the oldest ones, so the cache stays bounded."""
        for key in [key for key, (expires, _) in self._cache.items() if expires <= now]:
            del self._cache[key]
        while len(self._cache) >= CACHE_MAX_ENTRIES:
            del self._cache[next(iter(self._cache))]


class _ConditionFailedError(Exception):
    """A conditional catalog write found the video in another state (internal)."""


def video_item(video: Video) -> Item:
    """The DynamoDB item of ``video``; ``catalog`` (the sparse listing's key) is set only
    when it is published AND ready."""
    item: Item = {
        "video_id": s(video.video_id),
        "title": s(video.title),
        "description": s(video.description),
        "tier": s(video.tier),
        "duration_seconds": {"N": _number_text(video.duration_seconds)},
        "size_bytes": {"N": str(video.size_bytes)},
        "created_at": s(format_time(video.created_at)),
        "sort_key": s(video.sort_key),
        "published": b(video.published),
        "entity": s(VIDEO_ENTITY),
        "state": s(video.state),
        "progress": n(video.progress),
        "attempts": n(video.attempts),
    }
    if video.object_key:
        item["object_key"] = s(video.object_key)
        item["content_type"] = s(video.content_type)
    if video.hls_key is not None:
        item["hls_key"] = s(video.hls_key)
    if video.poster_key:
        item["poster_key"] = s(video.poster_key)
    if video.failure_reason is not None:
        item["failure_reason"] = s(video.failure_reason)
    if video.source_key is not None:
        item["source_key"] = s(video.source_key)
    if video.job_id is not None:
        item["job_id"] = s(video.job_id)
    if video.width or video.height:
        item["width"] = n(video.width)
        item["height"] = n(video.height)
    if video.heartbeat_at is not None:
        item["heartbeat_at"] = s(format_heartbeat(video.heartbeat_at))
    if video.viewable:
        item["catalog"] = s(PUBLISHED)
    if video.categories:
        item["categories"] = {"SS": list(check_categories(video.categories))}
    return item


def check_video(video: Video) -> None:
    """Refuse a malformed video. :raises BadRequestError: with what is wrong."""
    _check_video(video)


def _check_video(video: Video) -> None:
    if not is_video_id(video.video_id):
        raise BadRequestError("video id must be 1-64 of A-Z a-z 0-9 _ -")
    _check_text(video.title, "title", required=True)
    _check_text(video.description, "description", required=False)
    _check_tier(video.tier)
    if video.state not in STATES:
        raise BadRequestError(f"state must be one of {sorted(STATES)}")
    if video.state == READY or video.object_key or video.hls_key is not None:
        _check_media(video)
    if video.poster_key is not None:
        _check_text(video.poster_key, "poster_key", required=False)
    duration = video.duration_seconds
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or duration < 0
    ):
        raise BadRequestError("duration_seconds must be a number >= 0")
    size = video.size_bytes
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadRequestError("size_bytes must be a whole number >= 0")
    created = video.created_at
    if not isinstance(created, datetime) or created.tzinfo is None:
        raise BadRequestError("created_at must be a timezone-aware datetime")
    if not isinstance(video.published, bool):
        raise BadRequestError("published must be true or false")
    progress = video.progress
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise BadRequestError("progress must be a whole number from 0 to 100")
    for what, count in (
        ("attempts", video.attempts),
        ("width", video.width),
        ("height", video.height),
    ):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BadRequestError(f"{what} must be a whole number >= 0")
    for what, text in (
        ("failure_reason", video.failure_reason),
        ("source_key", video.source_key),
        ("job_id", video.job_id),
    ):
        if text is not None:
            _check_text(text, what, required=True)
    check_categories(video.categories)


def check_categories(categories: object) -> tuple[str, ...]:
    """``categories`` as a sorted tuple of known slugs, at most :data:`MAX_CATEGORIES`.

    :raises BadRequestError: an unknown category, or too many.
    """
    if not isinstance(categories, list | tuple) or not all(isinstance(c, str) for c in categories):
        raise BadRequestError("categories must be a list of category names")
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise BadRequestError(f"unknown category {unknown[0][:40]!r}; known: {sorted(CATEGORIES)}")
    if len(set(categories)) > MAX_CATEGORIES:
        raise BadRequestError(f"at most {MAX_CATEGORIES} categories")
    return tuple(sorted(set(categories)))


def _check_media(video: Video) -> None:
    if video.hls_key is not None and not is_hls_key_for(video.video_id, video.hls_key):
        raise BadRequestError(
            f"hls_key must be a .m3u8 playlist inside {hls_folder(video.video_id)}"
        )
    if video.hls_key is not None and video.object_key == "":
        return  # HLS only
    _check_text(video.object_key, "object_key", required=True)
    content_type = _check_text(video.content_type, "content_type", required=True)
    if content_type.lower() in HLS_CONTENT_TYPES:
        raise BadRequestError("object_key is the progressive MP4; an HLS playlist goes in hls_key")


def _check_text(value: object, what: str, *, required: bool) -> str:
    if not isinstance(value, str) or len(value) > _TEXT_MAX or (required and not value.strip()):
        raise BadRequestError(f"{what} must be {'a non-empty' if required else 'a'} string")
    return value


def _check_tier(tier: object) -> str:
    if tier not in TIERS:
        raise BadRequestError(f"tier must be one of {sorted(TIERS)}")
    return str(tier)


def _number_text(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _number(item: Mapping[str, Any], name: str) -> float:
    text = item.get(name, {}).get("N", "0")
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _media_from_item(item: Mapping[str, Any], video_id: str) -> tuple[str, str, str | None]:
    """``(object_key, content_type, hls_key)`` of a stored item; a misplaced playlist is dropped."""
    object_key = get_s(item, "object_key") or ""
    content_type = get_s(item, "content_type") or ""
    hls_key = get_s(item, "hls_key")
    if hls_key is None and content_type.lower() in HLS_CONTENT_TYPES:
        # Written before hls_key existed: object_key is the playlist, and there is no MP4.
        hls_key, object_key, content_type = object_key, "", ""
    if hls_key is not None and not is_hls_key_for(video_id, hls_key):
        log.warning(json.dumps({"event": "hls_key_outside_its_folder", "video": video_id}))
        hls_key = None
    return object_key, content_type, hls_key


def video_from_item(item: Mapping[str, Any]) -> Video:
    """The video a stored item describes (no state: written before states, so ready)."""
    tier = get_s(item, "tier", "premium")
    state = get_s(item, "state", READY)
    video_id = get_s(item, "video_id") or ""
    object_key, content_type, hls_key = _media_from_item(item, video_id)
    return Video(
        video_id=video_id,
        title=get_s(item, "title") or "",
        description=get_s(item, "description") or "",
        # An unknown tier is treated as premium: fail closed.
        tier="free" if tier == "free" else "premium",
        object_key=object_key,
        content_type=content_type,
        duration_seconds=_number(item, "duration_seconds"),
        poster_key=get_s(item, "poster_key"),
        size_bytes=get_n(item, "size_bytes"),
        created_at=get_time(item, "created_at") or datetime.min.replace(tzinfo=UTC),
        published=_published_flag(item),
        hls_key=hls_key,
        # An unknown state is not ready: fail closed.
        state=state if state in STATES else FAILED,  # type: ignore[arg-type]
        progress=get_n(item, "progress"),
        failure_reason=get_s(item, "failure_reason"),
        attempts=get_n(item, "attempts"),
        source_key=get_s(item, "source_key"),
        job_id=get_s(item, "job_id"),
        width=get_n(item, "width"),
        height=get_n(item, "height"),
        heartbeat_at=parse_heartbeat(get_s(item, "heartbeat_at")),
        categories=tuple(
            sorted(c for c in item.get("categories", {}).get("SS", []) if c in CATEGORIES)
        ),
    )


def format_heartbeat(moment: datetime) -> str:
    """A heartbeat as stored: ISO-8601 UTC to the microsecond, so stored texts compare
    in time order (the conditions of ``app.publishing`` compare them)."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_heartbeat(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _published_flag(item: Mapping[str, Any]) -> bool:
    """Published: the flag, and for a ready item also its place in the listing (an item
    from before states was published only when it carried ``catalog``)."""
    if not get_bool(item, "published"):
        return False
    if get_s(item, "state", READY) == READY:
        return get_s(item, "catalog") == PUBLISHED
    return True

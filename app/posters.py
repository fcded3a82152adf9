"""Posters chosen by admins: a JPEG checked by its bytes, stored public at ``posters/<id>.jpg``.

The browser turns whatever the admin picked (a frame of the preview drawn on a
canvas, or an image file) into a JPEG, so the app stores one format and needs
no image library: :func:`check_jpeg` reads the magic bytes and walks the JPEG
markers to the frame header (the picture's size) and checks the file ends with
EOI. Posters are public and cached by CloudFront and browsers, so each is
written with a short ``Cache-Control``: a new poster shows within a minute
(docs/uploads.md#posters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.errors import BadRequestError, DependencyUnavailableError

POSTER_PREFIX = "posters/"
MAX_POSTER_BYTES = 5 * 1024 * 1024
MAX_SIDE = 8192
MIN_SIDE = 16
POSTER_CACHE_CONTROL = "public, max-age=60"
"""How long CloudFront and browsers keep a poster: a replaced poster shows within a minute."""
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


class InvalidPosterError(BadRequestError):
    """Not a JPEG, too big, or a picture of an unusable size (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.friendly = f"That poster cannot be used: {reason}."


@dataclass(frozen=True)
class PosterImage:
    width: int
    height: int
    size: int


def check_jpeg(data: bytes) -> PosterImage:
    """The size of a well-formed baseline or progressive JPEG.

    :raises InvalidPosterError: empty, over :data:`MAX_POSTER_BYTES`, not a JPEG
        (PNG and others are named), truncated, or smaller/larger than allowed.
    """
    if not data:
        raise InvalidPosterError("the file is empty")
    if len(data) > MAX_POSTER_BYTES:
        raise InvalidPosterError(f"it is over {MAX_POSTER_BYTES // (1024 * 1024)} MiB")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InvalidPosterError("it is a PNG; the page converts images to JPEG before sending")
    if not data.startswith(b"\xff\xd8\xff"):
        raise InvalidPosterError("it is not a JPEG image")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise InvalidPosterError("the JPEG is truncated (no end marker)")
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise InvalidPosterError("the JPEG's markers are corrupt")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2 or at + 2 + length > len(data):
            raise InvalidPosterError("the JPEG is truncated")
        if marker in _SOF:
            if length < 8:
                raise InvalidPosterError("the JPEG's frame header is corrupt")
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                raise InvalidPosterError(
                    f"it is {width}x{height}; sides must be {MIN_SIDE} to {MAX_SIDE} pixels"
                )
            return PosterImage(width, height, len(data))
        if marker == 0xDA:  # start of scan before any frame header
            break
        at += 2 + length
    raise InvalidPosterError("the JPEG has no frame header")


def poster_key(video_id: str) -> str:
    return f"{POSTER_PREFIX}{video_id}.jpg"


def store_poster(s3: Any, bucket: str, video_id: str, data: bytes) -> str:
    """Check ``data`` and write it as the video's poster; returns the key.

    :raises InvalidPosterError: see :func:`check_jpeg` (nothing is written).
    :raises DependencyUnavailableError: S3 refused the write.
    """
    check_jpeg(data)
    key = poster_key(video_id)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType="image/jpeg",
            CacheControl=POSTER_CACHE_CONTROL,
        )
    except (ClientError, BotoCoreError) as exc:
        raise DependencyUnavailableError(f"could not write {key}: {exc}") from exc
    return key

"""Browser uploads straight to S3: multipart uploads the browser fills through presigned part URLs.

The web app starts the multipart upload under ``uploads/<video id>/<safe file
name>`` (the video's ``source_key``), hands out short-lived presigned
``UploadPart`` URLs, lists the parts S3 already holds (so a resumed upload skips
them), completes or aborts it. Video
bytes never pass through the app. The size cap is checked twice: on the size the
browser announces, and on the object S3 assembled (a browser can lie), which is
deleted when it is over. Content type and duration are never taken from the
browser: the pipeline probes the original. The rules are in docs/uploads.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import is_video_id
from app.config import DEFAULT_MAX_UPLOAD_BYTES
from app.errors import BadRequestError, DependencyUnavailableError, NotFoundError, VidgateError

UPLOAD_PREFIX = "uploads/"
GIB = 1024**3
MIB = 1024**2
PART_URL_SECONDS = 900
"""Lifetime of a presigned part URL: enough for one slow part, useless soon after."""
MAX_PARTS = 10_000
"""S3's most parts per multipart upload."""
MIN_PART_BYTES = 5 * MIB
"""S3's smallest part (all but the last)."""
MAX_SIGN_AT_ONCE = 100
MAX_FILE_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ETAG = re.compile(r'^"?[0-9A-Za-z-]{1,128}"?$')
_S3_UPLOAD_ID = re.compile(r"^[A-Za-z0-9._~+/=-]{1,1024}$")


class UploadTooLargeError(VidgateError):
    """The file is over the size cap: 413 ``too_large``."""

    status = 413
    code = "too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"upload of {size} bytes is over the cap of {limit} bytes")
        self.size = size
        self.limit = limit
        self.friendly = (
            f"This file is {describe_size(size)}; videos are limited to {describe_size(limit)}."
        )


class InvalidUploadError(BadRequestError):
    """A field of a new upload the admin must fix (400); the message is shown to them."""

    def __init__(self, friendly: str) -> None:
        super().__init__(friendly)
        self.friendly = friendly


class UploadNotFoundError(NotFoundError):
    """No such multipart upload (finished, aborted, or never this video's): 404 ``not_found``."""

    friendly = "This upload is no longer open. Start it again."


class InvalidPartsError(BadRequestError):
    """A part list or part number S3 would refuse: 400."""

    friendly = "The upload's part list is not valid. Start the upload again."


def describe_size(size: int) -> str:
    """``20 GiB``, ``1.5 GiB``, ``12.0 MiB``: sizes as people read them."""
    if size >= GIB:
        text = f"{size / GIB:.1f}".removesuffix(".0")
        return f"{text} GiB"
    return f"{size / MIB:.1f} MiB"


def safe_file_name(name: str) -> str:
    """The last path component of ``name``, reduced to ``A-Z a-z 0-9 . _ -`` (at most 100).

    Accents are dropped (NFKD), every other run of characters becomes ``-``, and
    leading dots go, so the key has no ``..``, no ``/`` and nothing a URL must escape.
    """
    base = re.split(r"[/\\]", name)[-1]
    ascii_text = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("-", ascii_text).strip("-").lstrip(".")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if len(cleaned) > MAX_FILE_NAME:
        stem, dot, suffix = cleaned.rpartition(".")
        if dot and 0 < len(suffix) <= 10:
            cleaned = stem[: MAX_FILE_NAME - len(suffix) - 1].rstrip("-.") + "." + suffix
        else:
            cleaned = cleaned[:MAX_FILE_NAME]
    return cleaned or "upload"


def is_source_key(key: object) -> bool:
    """True for ``uploads/<video id>/<safe file name>`` (the only keys uploads write)."""
    if not isinstance(key, str) or not key.startswith(UPLOAD_PREFIX):
        return False
    parts = key[len(UPLOAD_PREFIX) :].split("/")
    if len(parts) != 2 or not is_video_id(parts[0]):
        return False
    return safe_file_name(parts[1]) == parts[1]


def check_size(size: object, limit: int) -> int:
    """The announced size as an int.

    :raises BadRequestError: not a whole number above 0.
    :raises UploadTooLargeError: over ``limit``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidUploadError("The file is empty or its size is unknown.")
    if size > limit:
        raise UploadTooLargeError(size, limit)
    return size


def check_part_numbers(numbers: object) -> list[int]:
    """1 to :data:`MAX_SIGN_AT_ONCE` distinct part numbers in 1..10000.

    :raises InvalidPartsError: anything else.
    """
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_SIGN_AT_ONCE:
        raise InvalidPartsError(f"ask for 1 to {MAX_SIGN_AT_ONCE} part numbers")
    checked: list[int] = []
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
            raise InvalidPartsError(f"a part number is 1 to {MAX_PARTS}")
        checked.append(number)
    if len(set(checked)) != len(checked):
        raise InvalidPartsError("part numbers repeat")
    return checked


@dataclass(frozen=True)
class Part:
    """One uploaded part, as S3 lists it."""

    number: int
    etag: str
    size: int

    def to_json(self) -> dict[str, Any]:
        # The shape Uppy's listParts expects.
        return {"PartNumber": self.number, "ETag": self.etag, "Size": self.size}


def check_completed_parts(parts: object) -> list[dict[str, Any]]:
    """``[{"PartNumber", "ETag"}]`` in ascending order, as CompleteMultipartUpload takes them.

    :raises InvalidPartsError: empty, unordered, repeated, or malformed.
    """
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
        raise InvalidPartsError("the part list is empty or too long")
    checked: list[dict[str, Any]] = []
    previous = 0
    for part in parts:
        if not isinstance(part, dict):
            raise InvalidPartsError("a part is an object")
        number, etag = part.get("PartNumber"), part.get("ETag")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
            raise InvalidPartsError("a part number is 1 to 10000")
        if number <= previous:
            raise InvalidPartsError("parts must be in ascending order, without repeats")
        if not isinstance(etag, str) or not _ETAG.match(etag):
            raise InvalidPartsError("a part's ETag is malformed")
        previous = number
        quoted = etag if etag.startswith('"') else f'"{etag}"'
        checked.append({"PartNumber": number, "ETag": quoted})
    return checked


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """S3 refusals about the upload become 404; anything else means S3 is unavailable (503)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchUpload", "NoSuchKey", "404"):
            raise UploadNotFoundError(f"no open multipart upload for {key}") from exc
        if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            raise InvalidPartsError(f"S3 refused the parts of {key}: {code}") from exc
        raise DependencyUnavailableError(f"S3 failed on {key}: {code}") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailableError(f"S3 unreachable for {key}: {exc}") from exc


class BrowserUploads:
    """Multipart uploads into ``bucket`` that a browser fills with presigned part URLs.

    ``s3`` is a boto3 S3 client; its endpoint is where the part URLs point.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        part_url_seconds: int = PART_URL_SECONDS,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.max_bytes = max_bytes
        self.part_url_seconds = part_url_seconds

    def endpoint_origin(self) -> str:
        """``scheme://host[:port]`` the part URLs point at (the CSP's ``connect-src`` needs it)."""
        url = self._presign(f"{UPLOAD_PREFIX}origin/origin", "origin", 1)
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    def start(self, key: str) -> str:
        """Create the multipart upload of ``key``; returns S3's UploadId.

        No ``ContentType`` from the browser: the object is ``binary/octet-stream``
        until the pipeline has probed it.
        """
        self._check_key(key)
        with _s3_errors(key):
            response = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key)
        return str(response["UploadId"])

    def sign_parts(self, key: str, upload_id: str, numbers: Iterable[int]) -> dict[int, str]:
        """A presigned ``UploadPart`` URL for each part number (valid ``part_url_seconds``)."""
        self._check_key(key)
        self._check_upload_id(upload_id)
        return {number: self._presign(key, upload_id, number) for number in numbers}

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The parts S3 holds for this upload, in order.

        :raises UploadNotFoundError: the upload is not open.
        """
        self._check_key(key)
        self._check_upload_id(upload_id)
        parts: list[Part] = []
        marker = 0
        with _s3_errors(key):
            while True:
                response = self._s3.list_parts(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                parts.extend(
                    Part(int(p["PartNumber"]), str(p["ETag"]), int(p.get("Size", 0)))
                    for p in response.get("Parts", [])
                )
                if not response.get("IsTruncated"):
                    break
                marker = int(response.get("NextPartNumberMarker", 0))
        return parts

    def complete(self, key: str, upload_id: str, parts: object) -> int:
        """Assemble the object from ``parts``; returns its size.

        :raises InvalidPartsError: the list is malformed or S3 refuses it.
        :raises UploadNotFoundError: the upload is not open.
        :raises UploadTooLargeError: the assembled object is over the cap (it is deleted).
        """
        self._check_key(key)
        self._check_upload_id(upload_id)
        checked = check_completed_parts(parts)
        with _s3_errors(key):
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": checked},
            )
            size = int(self._s3.head_object(Bucket=self._bucket, Key=key)["ContentLength"])
        if size > self.max_bytes:
            self.delete(key)
            raise UploadTooLargeError(size, self.max_bytes)
        return size

    def abort(self, key: str, upload_id: str) -> None:
        """Abort the upload (S3 drops its parts); an upload already gone is not an error."""
        self._check_key(key)
        self._check_upload_id(upload_id)
        try:
            with _s3_errors(key):
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except UploadNotFoundError:
            return

    def delete(self, key: str) -> None:
        """Delete the original (a refused or cancelled upload)."""
        self._check_key(key)
        with _s3_errors(key):
            self._s3.delete_object(Bucket=self._bucket, Key=key)

    def open_uploads(self, key: str) -> list[str]:
        """UploadIds of the multipart uploads open for exactly ``key``."""
        self._check_key(key)
        with _s3_errors(key):
            listed = self._s3.list_multipart_uploads(Bucket=self._bucket, Prefix=key)
        return [str(u["UploadId"]) for u in listed.get("Uploads", []) if u.get("Key") == key]

    # --- internals -----------------------------------------------------------------

    def _presign(self, key: str, upload_id: str, number: int) -> str:
        return str(
            self._s3.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": number,
                },
                ExpiresIn=self.part_url_seconds,
                HttpMethod="PUT",
            )
        )

    @staticmethod
    def _check_key(key: str) -> None:
        if not is_source_key(key):
            raise BadRequestError("not an upload key")

    @staticmethod
    def _check_upload_id(upload_id: object) -> None:
        if not isinstance(upload_id, str) or not _S3_UPLOAD_ID.match(upload_id):
            raise UploadNotFoundError("malformed multipart upload id")

"""HTTP Range, HEAD and streaming at the local CloudFront edge (docs/s3-origin.md#v-1 … #v-4).

A single satisfiable range is 206 with ``Content-Range``; an unsatisfiable one
is 416 with ``Content-Range: bytes */size``; malformed or multiple ranges get
the whole object (200), as CloudFront does. Bodies are streamed from S3 in
``chunk_size`` reads: the flat-memory test counts the reads rather than
measuring RSS.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from tests.integration.test_edge import (
    NOW,
    OBJECTS,
    EdgeStack,
    error_code,
    start_edge_stack,
)

pytestmark = pytest.mark.integration

VIDEO = "videos/a.mp4"
BODY = OBJECTS[VIDEO]
SIZE = len(BODY)


@pytest.fixture(scope="module")
def stack(boto_session: boto3.Session) -> Iterator[EdgeStack]:
    started = start_edge_stack(boto_session)
    yield started
    started.server.stop()


@pytest.fixture(scope="module")
def video_url(stack: EdgeStack) -> str:
    return stack.signer().sign_url(stack.url(VIDEO), expires_at=NOW + 3600)


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-1023", 0, 1023),
        ("bytes=40000-49999", 40000, 49999),
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
        ("bytes=99000-", 99000, SIZE - 1),
        ("bytes=0-", 0, SIZE - 1),
        ("bytes=-1", SIZE - 1, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        (f"bytes=-{SIZE * 2}", 0, SIZE - 1),
        (f"bytes=99990-{SIZE * 5}", 99990, SIZE - 1),
        ("BYTES=10-19", 10, 19),
    ],
    ids=[
        "first-byte",
        "first-kib",
        "middle",
        "last-byte",
        "open-ended",
        "open-ended-from-zero",
        "suffix-one",
        "suffix",
        "suffix-longer-than-object",
        "end-past-object",
        "unit-case-insensitive",
    ],
)
def test_a_single_satisfiable_range_is_206_with_exactly_those_bytes(
    video_url: str, range_header: str, first: int, last: int
) -> None:
    response = requests.get(video_url, headers={"Range": range_header}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == BODY[first : last + 1]


@pytest.mark.parametrize(
    "range_header",
    [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=200000-300000", "bytes=-0"],
    ids=["starts-at-size", "starts-past-end", "far-past-end", "empty-suffix"],
)
def test_an_unsatisfiable_range_is_416_with_the_size(video_url: str, range_header: str) -> None:
    response = requests.get(video_url, headers={"Range": range_header}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert error_code(response.content) == "InvalidRange"
    assert BODY[:64] not in response.content


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=500-100",
        "bytes=0-1,5-6",
        "bytes=0-10,-5",
        "bytes=abc",
        "bytes=-",
        "bytes=--5",
        "bytes=1-2-3",
        "items=0-5",
        "bytes 0-5",
        "bytes=0x10-0x20",
        "bytes=¹-²",
        "",
    ],
)
def test_an_invalid_or_multiple_range_gets_the_whole_object(
    video_url: str, range_header: str
) -> None:
    response = requests.get(video_url, headers={"Range": range_header}, timeout=10)
    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.content == BODY


def test_a_full_response_carries_the_objects_headers(stack: EdgeStack, video_url: str) -> None:
    head = stack.s3.head_object(Bucket=stack.bucket, Key=VIDEO)
    response = requests.get(video_url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == head["ETag"]
    assert (
        response.headers["Last-Modified"]
        == head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    )
    assert response.content == BODY


def test_head_answers_the_get_headers_without_a_body(video_url: str) -> None:
    get = requests.get(video_url, timeout=10)
    head = requests.head(video_url, timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head.headers[name] == get.headers[name]


def test_head_with_a_range_answers_the_partial_headers(video_url: str) -> None:
    response = requests.head(video_url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{SIZE}"
    assert response.headers["Content-Length"] == "100"
    assert response.content == b""


def test_head_with_an_unsatisfiable_range_is_416_without_a_body(video_url: str) -> None:
    response = requests.head(video_url, headers={"Range": f"bytes={SIZE}-"}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert response.content == b""


def test_if_range_with_the_current_etag_keeps_the_range_and_a_stale_one_sends_everything(
    video_url: str,
) -> None:
    etag = requests.head(video_url, timeout=10).headers["ETag"]
    current = requests.get(video_url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert (current.status_code, current.content) == (206, BODY[:10])
    stale = requests.get(
        video_url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'}, timeout=10
    )
    assert (stale.status_code, stale.content) == (200, BODY)


def test_if_range_with_the_last_modified_date_keeps_the_range(video_url: str) -> None:
    last_modified = requests.head(video_url, timeout=10).headers["Last-Modified"]
    current = requests.get(
        video_url, headers={"Range": "bytes=0-9", "If-Range": last_modified}, timeout=10
    )
    assert (current.status_code, current.content) == (206, BODY[:10])
    older = requests.get(
        video_url,
        headers={"Range": "bytes=0-9", "If-Range": "Thu, 01 Jan 2015 00:00:00 GMT"},
        timeout=10,
    )
    assert (older.status_code, older.content) == (200, BODY)


def test_an_empty_object_is_200_and_any_range_of_it_is_416(stack: EdgeStack) -> None:
    url = stack.signer().url_for_key("videos/empty.bin", 60).url
    whole = requests.get(url, timeout=10)
    assert (whole.status_code, whole.content, whole.headers["Content-Length"]) == (200, b"", "0")
    ranged = requests.get(url, headers={"Range": "bytes=0-"}, timeout=10)
    assert ranged.status_code == 416
    assert ranged.headers["Content-Range"] == "bytes */0"


def test_a_public_poster_supports_ranges_without_a_signature(stack: EdgeStack) -> None:
    response = requests.get(stack.url("posters/a.jpg"), headers={"Range": "bytes=0-1"}, timeout=10)
    assert response.status_code == 206
    assert response.content == OBJECTS["posters/a.jpg"][:2]
    assert (
        requests.get(stack.url(VIDEO), headers={"Range": "bytes=0-1"}, timeout=10).status_code
        == 403
    )


def test_a_range_request_after_expiry_is_refused(stack: EdgeStack) -> None:
    """U-6/V-3: every Range GET issued after expiry fails, even mid-playback."""
    url = stack.signer().sign_url(stack.url(VIDEO), expires_at=NOW + 10)
    assert requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10).status_code == 206
    stack.clock.now = NOW + 10
    try:
        assert requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10).status_code == 403
    finally:
        stack.clock.now = NOW


# --- streaming: never a whole-object read -------------------------------------------------------


class RecordingBody:
    """A StreamingBody stand-in that passes reads through and records their sizes."""

    def __init__(self, body: Any, reads: list[int | None]) -> None:
        self._body = body
        self._reads = reads

    def read(self, amt: int | None = None) -> bytes:
        self._reads.append(amt)
        return bytes(self._body.read(amt))

    def close(self) -> None:
        self._body.close()


class RecordingS3:
    """The real S3 client, with GetObject calls and body reads recorded."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.gets: list[dict[str, Any]] = []
        self.reads: list[int | None] = []

    def head_object(self, **kwargs: Any) -> Any:
        return self._real.head_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs)
        response = self._real.get_object(**kwargs)
        response["Body"] = RecordingBody(response["Body"], self.reads)
        return response


BIG = 64 * 1024 * 1024
CHUNK = 256 * 1024


def test_a_64_mib_object_streams_in_chunk_sized_reads(boto_session: boto3.Session) -> None:
    content = random.Random(64).randbytes(BIG)
    recording = RecordingS3(boto_session.client("s3"))
    stack = start_edge_stack(
        boto_session, objects={"videos/big.mp4": content}, s3_client=recording, chunk_size=CHUNK
    )
    try:
        url = stack.signer().sign_url(stack.url("videos/big.mp4"), expires_at=NOW + 600)
        digest = hashlib.sha256()
        received = 0
        with requests.get(url, stream=True, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(BIG)
            for piece in response.iter_content(1024 * 1024):
                digest.update(piece)
                received += len(piece)
        assert received == BIG
        assert digest.digest() == hashlib.sha256(content).digest()
        assert recording.gets == [{"Bucket": stack.bucket, "Key": "videos/big.mp4"}]
        assert None not in recording.reads
        assert max(amt for amt in recording.reads if amt is not None) <= CHUNK
        assert len(recording.reads) >= BIG // CHUNK

        recording.reads.clear()
        middle = requests.get(url, headers={"Range": "bytes=33554432-34603007"}, timeout=30)
        assert middle.status_code == 206
        assert middle.content == content[33554432:34603008]
        assert recording.gets[-1]["Range"] == "bytes=33554432-34603007"
        assert None not in recording.reads
        assert max(amt for amt in recording.reads if amt is not None) <= CHUNK
    finally:
        stack.server.stop()

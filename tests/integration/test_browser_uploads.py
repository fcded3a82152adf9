"""Browser uploads against the AWS emulator: presigned part PUTs over HTTP, as a browser sends them.

The parts go to the presigned URLs with plain HTTP (``requests``), never through
boto3, so what is tested is what the page does: start, sign, PUT, list (a resume
skips what S3 holds), complete, abort. The bucket's CORS (app/bucket_cors.py) is
applied and a preflight is sent to see what the emulator answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from app.browser_uploads import (
    MIN_PART_BYTES,
    BrowserUploads,
    InvalidPartsError,
    UploadNotFoundError,
    UploadTooLargeError,
)
from app.bucket_cors import s3_cors
from app.local.emulator import EMULATOR_ENV, Emulator

pytestmark = pytest.mark.integration

SITE = "http://127.0.0.1:8765"


@pytest.fixture
def s3(emulator: Emulator) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4"),
    )


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"uploads-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=s3_cors(SITE))
    yield name


def put(url: str, body: bytes) -> requests.Response:
    return requests.put(url, data=body, headers={"Origin": SITE}, timeout=10)


def test_a_file_sent_in_presigned_parts_is_assembled(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket, max_bytes=64 * 1024 * 1024)
    key = "uploads/clip-1/clip.mp4"
    upload_id = uploads.start(key)
    first, second = b"a" * MIN_PART_BYTES, b"b" * 1000
    urls = uploads.sign_parts(key, upload_id, [1, 2])
    assert all("X-Amz-Signature=" in url for url in urls.values()), "SigV4 part URLs"
    answers = [put(urls[1], first), put(urls[2], second)]
    assert [a.status_code for a in answers] == [200, 200]
    etags = [a.headers["ETag"] for a in answers]
    listed = uploads.list_parts(key, upload_id)
    assert [(p.number, p.etag, p.size) for p in listed] == [
        (1, etags[0], len(first)),
        (2, etags[1], len(second)),
    ]
    size = uploads.complete(
        key, upload_id, [{"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": etags[1]}]
    )
    assert size == len(first) + len(second)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == first + second
    assert uploads.open_uploads(key) == []


def test_a_resumed_upload_lists_only_what_s3_holds(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket)
    key = "uploads/clip-2/clip.mp4"
    upload_id = uploads.start(key)
    put(uploads.sign_parts(key, upload_id, [1])[1], b"x" * MIN_PART_BYTES)
    # The page reloads: a new signer, the same upload.
    again = BrowserUploads(s3, bucket)
    assert [p.number for p in again.list_parts(key, upload_id)] == [1]
    uploads.abort(key, upload_id)


def test_abort_leaves_no_multipart_upload_and_is_idempotent(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket)
    key = "uploads/clip-3/clip.mp4"
    upload_id = uploads.start(key)
    put(uploads.sign_parts(key, upload_id, [1])[1], b"x" * 100)
    uploads.abort(key, upload_id)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    uploads.abort(key, upload_id)
    with pytest.raises(UploadNotFoundError):
        uploads.list_parts(key, upload_id)


def test_an_object_over_the_cap_is_deleted_at_completion(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket, max_bytes=100)
    key = "uploads/clip-4/clip.mp4"
    upload_id = uploads.start(key)
    answer = put(uploads.sign_parts(key, upload_id, [1])[1], b"x" * 101)
    with pytest.raises(UploadTooLargeError):
        uploads.complete(key, upload_id, [{"PartNumber": 1, "ETag": answer.headers["ETag"]}])
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0


def test_a_wrong_etag_is_refused(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket)
    key = "uploads/clip-5/clip.mp4"
    upload_id = uploads.start(key)
    put(uploads.sign_parts(key, upload_id, [1])[1], b"x" * 10)
    with pytest.raises(InvalidPartsError):
        uploads.complete(key, upload_id, [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}])
    uploads.abort(key, upload_id)


def test_keys_outside_uploads_are_never_signed(s3: Any, bucket: str) -> None:
    uploads = BrowserUploads(s3, bucket)
    for key in ("videos/a/hls/master.m3u8", "uploads/a/../b/x.mp4", "uploads/a/b/c.mp4"):
        with pytest.raises(Exception, match="not an upload key"):
            uploads.start(key)


def test_the_emulator_answers_the_cors_preflight_of_a_part_put(s3: Any, bucket: str) -> None:
    """What moto really does with the bucket's CORS (docs/uploads.md#cors)."""
    uploads = BrowserUploads(s3, bucket)
    key = "uploads/clip-7/clip.mp4"
    upload_id = uploads.start(key)
    url = uploads.sign_parts(key, upload_id, [1])[1]
    allowed = requests.options(
        url,
        headers={"Origin": SITE, "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert allowed.status_code == 200
    assert allowed.headers.get("Access-Control-Allow-Origin") == SITE
    assert "PUT" in allowed.headers.get("Access-Control-Allow-Methods", "")
    other = requests.options(
        url,
        headers={"Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    # moto refuses a foreign origin's preflight with 403 (it still echoes the origin; a
    # browser fails any preflight that is not 2xx, so the refusal is what counts).
    assert other.status_code == 403
    delete = requests.options(
        url, headers={"Origin": SITE, "Access-Control-Request-Method": "DELETE"}, timeout=10
    )
    # Answered, but without DELETE among the allowed methods: the browser refuses it.
    assert delete.headers.get("Access-Control-Allow-Methods") == "PUT", delete.headers
    answer = put(url, b"x")
    assert answer.headers.get("Access-Control-Allow-Origin") == SITE
    assert "ETag" in answer.headers.get("Access-Control-Expose-Headers", "")
    uploads.abort(key, upload_id)

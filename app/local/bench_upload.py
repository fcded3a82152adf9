"""Upload bench: browser-style presigned part uploads against a direct boto3 upload.

Both send the same file to the AWS emulator in 8 MiB parts, four at a time:
(a) boto3's transfer manager (what ``vidgate videos add`` uses), (b) what the
admin page does: CreateMultipartUpload, presigned UploadPart URLs, plain HTTP
PUTs (``requests``, as a browser sends them), CompleteMultipartUpload. Printed
as medians with the ratio (b)/(a) (goal >= 0.8); never asserted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from app.browser_uploads import BrowserUploads
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.ports import free_port

PART = 8 * 1024 * 1024
CONCURRENCY = 4
DEFAULT_SIZE_MIB = 64
DEFAULT_RUNS = 3
GOAL = 0.8


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", max_pool_connections=CONCURRENCY * 2),
    )


def _direct(s3: Any, bucket: str, key: str, path: Path) -> float:
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY
    )
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, key, Config=config)
    return time.perf_counter() - started


def _presigned(uploads: BrowserUploads, key: str, path: Path) -> float:
    size = path.stat().st_size
    count = (size + PART - 1) // PART
    started = time.perf_counter()
    upload_id = uploads.start(key)
    urls = uploads.sign_parts(key, upload_id, list(range(1, count + 1)))

    def send(number: int) -> dict[str, Any]:
        with path.open("rb") as file:
            file.seek((number - 1) * PART)
            body = file.read(PART)
        answer = requests.put(urls[number], data=body, timeout=120)
        answer.raise_for_status()
        return {"PartNumber": number, "ETag": answer.headers["ETag"]}

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        parts = list(pool.map(send, range(1, count + 1)))
    uploads.complete(key, upload_id, parts)
    return time.perf_counter() - started


def run_upload_bench(size_mib: int = DEFAULT_SIZE_MIB, runs: int = DEFAULT_RUNS) -> list[str]:
    """Medians of both ways over ``runs`` interleaved rounds, as printable lines."""
    with tempfile.TemporaryDirectory() as tmp, Emulator(free_port()) as emulator:
        path = Path(tmp) / "original.bin"
        path.write_bytes(os.urandom(size_mib * 1024 * 1024))
        s3 = _client(emulator.endpoint)
        bucket = "bench-uploads"
        s3.create_bucket(Bucket=bucket)
        uploads = BrowserUploads(s3, bucket, max_bytes=(size_mib + 1) * 1024 * 1024)
        direct: list[float] = []
        presigned: list[float] = []
        for run in range(runs):
            direct.append(_direct(s3, bucket, f"uploads/direct-{run}/original.bin", path))
            presigned.append(_presigned(uploads, f"uploads/browser-{run}/original.bin", path))
    mib = float(size_mib)
    a, b = mib / statistics.median(direct), mib / statistics.median(presigned)
    return [
        f"upload of {size_mib} MiB to the emulator, {PART // 2**20} MiB parts, "
        f"{CONCURRENCY} at a time (median of {runs}):",
        f"  (a) boto3 transfer manager            {a:>8.1f} MiB/s",
        f"  (b) presigned parts over plain HTTP   {b:>8.1f} MiB/s",
        f"  ratio (b)/(a): {b / a:.2f}  (goal >= {GOAL})",
    ]

"""The local transcoder worker end to end on the emulator: an upload under uploads/ is
notified to the ingest queue by S3 itself, the worker transcodes it and publishes it.

Clips are tiny (2-4 s, 426x240 or 640x360) to spare the shared cores. Every test
waits for a final state with a generous deadline, never on a timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import m3u8
import pytest

from app.catalog import Video, VideoCatalog
from app.config import Need
from app.errors import VideoNotFoundError
from app.local.ingest_queue import ensure_ingest_queues, notify_on_upload
from app.local.transcoder import TranscoderWorker, WorkerOptions
from app.ops.media import encode_clip, ffmpeg_exe
from app.publishing import Publishing
from app.tables import TABLES, create_tables

pytestmark = pytest.mark.integration

DEADLINE = 180.0


@dataclass
class Pipeline:
    env: dict[str, str]
    session: boto3.Session
    s3: Any
    sqs: Any
    bucket: str
    tables: dict[str, str]
    queue_url: str
    dlq_url: str
    catalog: VideoCatalog
    work_dir: Path

    def publishing(self, *, max_attempts: int = 3, visibility: int = 6) -> Publishing:
        return Publishing(
            self.catalog_client,
            self.tables["videos"],
            catalog=self.catalog,
            max_attempts=max_attempts,
            heartbeat_timeout=timedelta(seconds=visibility * 2 / 3),
        )

    @property
    def catalog_client(self) -> Any:
        return self.session.client("dynamodb")

    def worker(self, *, max_attempts: int = 3, visibility: int = 6) -> TranscoderWorker:
        return TranscoderWorker(
            sqs=self.session.client("sqs"),
            s3=self.session.client("s3"),
            publishing=self.publishing(max_attempts=max_attempts, visibility=visibility),
            options=WorkerOptions(
                queue_url=self.queue_url,
                bucket=self.bucket,
                work_dir=self.work_dir,
                visibility_timeout=visibility,
                wait_seconds=1,
                preset="ultrafast",
            ),
        )

    def upload(self, video_id: str, path: Path, *, title: str = "Clip") -> Video:
        """What the CLI and the admin page do: a draft, then the original under uploads/."""
        key = f"uploads/{video_id}/{path.name}"
        draft = self.publishing().create_draft(video_id, title=title, tier="free", source_key=key)
        self.s3.upload_file(str(path), self.bucket, key)
        return draft

    def wait_for(self, video_id: str, states: set[str], deadline: float = DEADLINE) -> Video:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            video = self.catalog.get_any(video_id)
            if video.state in states:
                return video
            time.sleep(0.2)
        raise AssertionError(f"{video_id} never reached {states}: {self.catalog.get_any(video_id)}")

    def keys(self, prefix: str) -> set[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"] for o in listed.get("Contents", [])}


@pytest.fixture
def pipeline(boto_session: boto3.Session, aws_env: dict[str, str], tmp_path: Path) -> Pipeline:
    prefix = f"w{uuid.uuid4().hex[:10]}"
    dynamodb = boto_session.client("dynamodb")
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
    create_tables(dynamodb, tables)
    s3 = boto_session.client("s3")
    sqs = boto_session.client("sqs")
    bucket = f"{prefix}-media"
    s3.create_bucket(Bucket=bucket)
    queues = ensure_ingest_queues(sqs, prefix)
    notify_on_upload(s3, bucket, queues.ingest_arn)
    env = {
        **aws_env,
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_BUCKET": bucket,
        "VIDGATE_INGEST_QUEUE_URL": queues.ingest_url,
    }
    return Pipeline(
        env=env,
        session=boto_session,
        s3=s3,
        sqs=sqs,
        bucket=bucket,
        tables=tables,
        queue_url=queues.ingest_url,
        dlq_url=queues.dlq_url,
        catalog=VideoCatalog(dynamodb, tables["videos"], cache_seconds=0),
        work_dir=tmp_path / "work",
    )


@pytest.fixture
def running(pipeline: Pipeline) -> Iterator[Callable[..., TranscoderWorker]]:
    """Starts in-process workers (threads); stops them all at the end."""
    started: list[tuple[TranscoderWorker, threading.Thread]] = []

    def start(**kwargs: Any) -> TranscoderWorker:
        worker = pipeline.worker(**kwargs)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, _ in started:
        worker.stop()
    for _, thread in started:
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    small = folder / "small clip.mp4"
    encode_clip(small, seconds=2, size="426x240", preset="ultrafast")
    larger = folder / "larger.mp4"
    encode_clip(larger, seconds=4, size="640x360", preset="ultrafast")
    audio = folder / "song.m4a"
    subprocess.run(
        [
            *(ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(audio)),
        ],
        check=True,
        timeout=60,
    )
    speck = folder / "speck.mp4"
    encode_clip(speck, seconds=1, size="8x8", preset="ultrafast")
    notes = folder / "notes.mp4"
    notes.write_text("this is not a video\n")
    cut = folder / "cut.mp4"
    whole = larger.read_bytes()
    cut.write_bytes(whole[: len(whole) * 2 // 5])
    return {
        "small": small,
        "larger": larger,
        "audio": audio,
        "notes": notes,
        "cut": cut,
        "speck": speck,
    }


def _assert_published_completely(pipeline: Pipeline, video: Video) -> None:
    """Every file the master playlist leads to is in the bucket, and the MP4 and poster."""
    assert video.state == "ready" and video.progress == 100
    keys = pipeline.keys(f"videos/{video.video_id}/")
    assert video.hls_key in keys and video.object_key in keys
    assert video.poster_key == f"posters/{video.video_id}.jpg"
    assert pipeline.keys(video.poster_key) == {video.poster_key}
    master_text = pipeline.s3.get_object(Bucket=pipeline.bucket, Key=video.hls_key)["Body"].read()
    master = m3u8.loads(master_text.decode())
    assert master.playlists
    folder = video.hls_key.rsplit("/", 1)[0]
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    for uri in uris:
        key = f"{folder}/{uri}"
        assert key in keys
        media = m3u8.loads(
            pipeline.s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read().decode()
        )
        base = key.rsplit("/", 1)[0]
        assert media.segments
        for segment in media.segments:
            assert f"{base}/{segment.uri}" in keys
        for init in media.segment_map:
            assert f"{base}/{init.uri}" in keys


def test_an_uploaded_clip_is_transcoded_and_published_only_when_complete(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    pipeline.upload("first", clips["small"], title="First")
    assert pipeline.catalog.list(10, None)[0] == []
    running()

    video = pipeline.wait_for("first", {"ready", "failed"})

    assert video.failure_reason is None, video.failure_reason
    _assert_published_completely(pipeline, video)
    assert (video.width, video.height) == (426, 240)
    assert 1.5 < video.duration_seconds < 2.5
    assert pipeline.catalog.get("first") == video
    assert [v.video_id for v in pipeline.catalog.list(10, None)[0]] == ["first"]
    assert pipeline.keys("uploads/first/") == {"uploads/first/small clip.mp4"}  # kept


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        ("notes", "cannot be read as a video"),
        ("audio", "no video stream"),
        ("cut", "truncated"),
    ],
)
def test_a_file_that_is_no_whole_video_fails_with_a_clear_reason_and_publishes_nothing(
    pipeline: Pipeline,
    clips: dict[str, Path],
    running: Callable[..., TranscoderWorker],
    clip: str,
    reason: str,
) -> None:
    pipeline.upload("bad", clips[clip])
    running()

    video = pipeline.wait_for("bad", {"ready", "failed"})

    assert video.state == "failed"
    assert video.failure_reason is not None and reason in video.failure_reason
    assert video.attempts == 1  # a permanent failure is not retried
    assert pipeline.keys("videos/bad/") == set()
    assert pipeline.keys("posters/") == set()
    with pytest.raises(VideoNotFoundError):
        pipeline.catalog.get("bad")
    _wait_queue_empty(pipeline)


def test_two_uploads_at_once_both_end_ready(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    running()
    running()
    pipeline.upload("one", clips["small"], title="One")
    pipeline.upload("two", clips["larger"], title="Two")

    one = pipeline.wait_for("one", {"ready", "failed"})
    two = pipeline.wait_for("two", {"ready", "failed"})

    _assert_published_completely(pipeline, one)
    _assert_published_completely(pipeline, two)
    assert not pipeline.keys("videos/one/") & pipeline.keys("videos/two/")
    assert {v.video_id for v in pipeline.catalog.list(10, None)[0]} == {"one", "two"}


def _start_worker_process(pipeline: Pipeline, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "app.local.transcoder", "--work-dir", str(pipeline.work_dir)),
            *("--visibility-timeout", "6", "--wait-seconds", "1", *args),
        ],
        env={**os.environ, **pipeline.env, "PYTHONPATH": str(Path.cwd())},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_while_processing(pipeline: Pipeline, video_id: str, *args: str) -> Video:
    """Start a slow worker process, SIGKILL it (and its ffmpeg) once it reports progress."""
    worker = _start_worker_process(pipeline, "--preset", "veryslow", *args)
    try:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            video = pipeline.catalog.get_any(video_id)
            if video.state == "processing" and video.progress > 0:
                os.killpg(worker.pid, signal.SIGKILL)
                return video
            assert video.state != "ready", "finished before it could be killed"
            time.sleep(0.05)
        raise AssertionError("the worker never reported progress")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def test_a_worker_killed_mid_transcode_is_taken_over_and_the_video_ends_ready(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    pipeline.upload("killed", clips["larger"])
    seen = _kill_while_processing(pipeline, "killed")
    assert seen.attempts == 1
    assert pipeline.catalog.get_any("killed").state == "processing"  # never ready half-made

    running()  # the message comes back after its visibility timeout
    video = pipeline.wait_for("killed", {"ready", "failed"})

    assert video.failure_reason is None, video.failure_reason
    assert video.attempts == 2
    _assert_published_completely(pipeline, video)


def test_a_worker_killed_on_its_last_attempt_leaves_the_video_failed_with_the_reason(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    pipeline.upload("doomed", clips["larger"])
    _kill_while_processing(pipeline, "doomed", "--max-attempts", "1")

    running(max_attempts=1)
    video = pipeline.wait_for("doomed", {"ready", "failed"})

    assert video.state == "failed"
    assert video.failure_reason is not None
    assert "stopped 1 times without finishing" in video.failure_reason
    with pytest.raises(VideoNotFoundError):
        pipeline.catalog.get("doomed")
    _wait_queue_empty(pipeline)


def test_a_stopped_worker_releases_its_attempt_and_the_next_one_finishes(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    pipeline.upload("stopped", clips["larger"])
    worker = _start_worker_process(pipeline, "--preset", "veryslow")
    try:
        end = time.monotonic() + DEADLINE
        while pipeline.catalog.get_any("stopped").progress == 0:
            assert time.monotonic() < end
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    released = pipeline.catalog.get_any("stopped")
    assert released.state == "processing"
    assert released.failure_reason == "the transcoder was stopped"

    running()
    video = pipeline.wait_for("stopped", {"ready", "failed"})
    assert video.attempts == 2 and video.failure_reason is None
    _assert_published_completely(pipeline, video)


def _wait_queue_empty(pipeline: Pipeline) -> None:
    """Finished messages are deleted (none in flight, none waiting, none in the DLQ)."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        attributes = pipeline.sqs.get_queue_attributes(
            QueueUrl=pipeline.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if all(value == "0" for value in attributes.values()):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"messages left: {attributes}")
    dlq = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert dlq["ApproximateNumberOfMessages"] == "0"


def test_retranscode_restores_an_archived_original_first_then_runs_the_ladder_again(
    pipeline: Pipeline,
    clips: dict[str, Path],
    running: Callable[..., TranscoderWorker],
) -> None:
    from app.ops.admin_cli import Operator, videos_retranscode
    from app.ops.cli import EX_TEMPFAIL

    running()
    pipeline.upload("again", clips["small"])
    first = pipeline.wait_for("again", {"ready", "failed"})
    assert first.state == "ready"
    key = "uploads/again/small clip.mp4"
    # What the lifecycle rule does after 30 days (the emulator never does it by itself).
    pipeline.s3.copy_object(
        Bucket=pipeline.bucket,
        Key=key,
        CopySource={"Bucket": pipeline.bucket, "Key": key},
        StorageClass="GLACIER",
    )
    said: list[str] = []
    operator = Operator.load(
        {Need.TABLES, Need.MEDIA, Need.INGEST}, environ=pipeline.env, say=said.append
    )

    assert videos_retranscode(operator, "again", wait=False) == EX_TEMPFAIL
    assert "restore requested (Standard retrieval, typically 3-5 hours)" in said[-1]
    assert "Restore" in pipeline.s3.head_object(Bucket=pipeline.bucket, Key=key)
    assert pipeline.catalog.get_any("again") == first  # nothing queued yet

    # The emulator restores at once; in AWS the operator runs the command again hours later.
    assert videos_retranscode(operator, "again", wait_timeout=DEADLINE) == 0
    again = pipeline.catalog.get_any("again")
    assert again.state == "ready" and again.job_id != first.job_id
    assert said[-1].startswith("re-transcoded video again: 426x240")
    _assert_published_completely(pipeline, again)


def test_removing_a_video_deletes_its_renditions_and_poster_and_keeps_the_original(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    from app.publishing import remove_video

    running()
    pipeline.upload("gone", clips["small"])
    pipeline.upload("stays", clips["small"])
    pipeline.wait_for("gone", {"ready"})
    pipeline.wait_for("stays", {"ready"})

    removal = remove_video("gone", catalog=pipeline.catalog, s3=pipeline.s3, bucket=pipeline.bucket)

    assert "posters/gone.jpg" in removal.deleted
    assert removal.kept_original == "uploads/gone/small clip.mp4"
    assert pipeline.keys("videos/gone/") == set()
    assert pipeline.keys("posters/gone") == set()
    assert pipeline.keys("uploads/gone/") == {"uploads/gone/small clip.mp4"}
    tags = pipeline.s3.get_object_tagging(Bucket=pipeline.bucket, Key=removal.kept_original)
    assert {t["Key"] for t in tags["TagSet"]} == {"vidgate-removed", "vidgate-video-id"}
    with pytest.raises(VideoNotFoundError):
        pipeline.catalog.get_any("gone")
    assert pipeline.keys("videos/stays/")  # the other video is untouched
    assert pipeline.catalog.get("stays").state == "ready"


def test_videos_add_waits_for_ready_or_reports_the_failure_reason(
    pipeline: Pipeline, clips: dict[str, Path], running: Callable[..., TranscoderWorker]
) -> None:
    from app.ops.admin_cli import Operator, OperatorError, videos_add

    running()
    said: list[str] = []
    operator = Operator.load({Need.TABLES, Need.MEDIA}, environ=pipeline.env, say=said.append)

    def add(clip: str, video_id: str, **kwargs: Any) -> int:
        return videos_add(
            operator,
            clips[clip],
            title=f"Clip {video_id}",
            tier="premium",
            description="",
            video_id=video_id,
            part_size_mib=8,
            wait_timeout=DEADLINE,
            **kwargs,
        )

    assert add("small", "added") == 0
    assert said[-1].startswith("added video added: 'Clip added' (premium, 2.0 s")
    assert pipeline.catalog.get("added").state == "ready"

    # A file ffmpeg reads (so the CLI sends it) that the ladder cannot encode.
    with pytest.raises(OperatorError) as failed:
        add("speck", "broken")
    assert str(failed.value).startswith(
        "video broken failed: the video's picture size or frame rate is not supported"
    )

    assert add("small", "later", wait=False) == 0
    assert said[-1] == (
        "uploaded video later: 'Clip later' (premium); it is uploading: "
        "`vidgate videos list` shows when it is ready"
    )
    assert pipeline.wait_for("later", {"ready", "failed"}).state == "ready"

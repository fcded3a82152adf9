"""The AWS publishing pipeline against the emulator: ingest (SQS batches of S3 upload
notifications) and publish (MediaConvert job state changes), with MediaConvert a fake
that validates every request against botocore's model and keeps the jobs it created.

Events are the documented shapes, from tests/events.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from app.catalog import VideoCatalog
from app.dynamo import dynamodb_client
from app.errors import DependencyUnavailableError, StaleAttemptError, VideoNotFoundError
from app.ingest import Ingest, Transcoder, Upload, uploads_in
from app.job_events import BadEventError, JobEvents
from app.mediaconvert import JobConfig, MediaConvertJobs
from app.publishing import Publishing
from app.tables import create_tables

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[1] / "events"
ROLE = "arn:aws:iam::111122223333:role/vidgate-mediaconvert"
QUEUE = "arn:aws:mediaconvert:us-east-1:111122223333:queues/vidgate-test"
VIDEO_TRACK = {"TrackType": "video", "Codec": "AVC", "Index": 1, "VideoProperties": {
    "Width": 1920, "Height": 1080, "FrameRate": {"Numerator": 25, "Denominator": 1}}}  # fmt: skip
AUDIO_TRACK = {"TrackType": "audio", "Codec": "AAC", "Index": 2,
               "AudioProperties": {"Channels": 2, "SampleRate": 48000}}  # fmt: skip


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": f"{code} (fake)"},
                     "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
    return ClientError(response, "op")


class FakeMediaConvert:
    """Answers Probe and CreateJob like MediaConvert, after botocore's own validation."""

    def __init__(self) -> None:
        self._model = boto3.client(
            "mediaconvert", region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x").meta.service_model  # fmt: skip
        self.tracks: dict[str, list[dict[str, Any]]] = {}
        self.unreadable: set[str] = set()
        self.down = False
        self.create_down = False
        self.jobs: list[dict[str, Any]] = []

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, self._model.operation_model(operation).input_shape)

    def probe(self, **params: Any) -> dict[str, Any]:
        self._validate("Probe", params)
        if self.down:
            raise _client_error("TooManyRequestsException", 429)
        url = params["InputFiles"][0]["FileUrl"]
        if url in self.unreadable:
            raise _client_error("UnprocessableEntityException", 422)
        tracks = self.tracks.get(url, [VIDEO_TRACK, AUDIO_TRACK])
        return {"ProbeResults": [{"Container": {"Format": "mp4", "Duration": 125.5,
                                                "Tracks": tracks}}]}  # fmt: skip

    def create_job(self, **params: Any) -> dict[str, Any]:
        self._validate("CreateJob", params)
        if self.down or self.create_down:
            raise _client_error("InternalServerErrorException", 500)
        job_id = f"{1764260000000 + len(self.jobs)}-{uuid.uuid4().hex[:6]}"
        self.jobs.append({"Id": job_id, **params})
        return {"Job": {"Id": job_id, "Role": params["Role"], "Settings": params["Settings"]}}


@dataclass
class Clock:
    """The real time, moved ``ahead`` when a test needs a heartbeat to go stale."""

    ahead: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Pipeline:
    bucket: str
    s3: Any
    mediaconvert: FakeMediaConvert
    publishing: Publishing
    catalog: VideoCatalog
    ingest: Ingest
    events: JobEvents
    clock: Clock

    def draft(self, video_id: str, file_name: str = "My Clip é+1.mov") -> str:
        key = f"uploads/{video_id}/{file_name}"
        self.publishing.create_draft(video_id, title=f"Clip {video_id}", tier="free",
                                     source_key=key)  # fmt: skip
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"original")
        return key


@pytest.fixture
def pipeline(boto_session: boto3.Session) -> Pipeline:
    prefix = f"mc{uuid.uuid4().hex[:10]}"
    dynamodb = dynamodb_client(boto_session)
    tables = {logical: f"{prefix}-{logical}" for logical in ("users", "videos", "audit",
                                                              "sessions")}  # fmt: skip
    create_tables(dynamodb, tables)
    s3: Any = boto_session.client("s3")
    bucket = f"{prefix}-media"
    s3.create_bucket(Bucket=bucket)
    catalog = VideoCatalog(dynamodb, tables["videos"], cache_seconds=0)
    clock = Clock()
    publishing = Publishing(
        dynamodb, tables["videos"], catalog=catalog, max_attempts=2, clock=clock
    )
    fake = FakeMediaConvert()
    transcoder = Transcoder(publishing, MediaConvertJobs(fake, JobConfig(ROLE, QUEUE)), bucket)
    return Pipeline(bucket, s3, fake, publishing, catalog, Ingest(transcoder),
                    JobEvents(transcoder, s3, queue_arn=QUEUE), clock)  # fmt: skip


def _notification(bucket: str, key: str) -> dict[str, Any]:
    # Keys arrive URL-encoded the form way, as S3 writes them into notifications.
    from urllib.parse import quote_plus

    text = (EVENTS / "s3-object-created.json").read_text()
    body = json.loads(text.replace("BUCKET", bucket))
    body["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    return body


def _sqs(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    template = json.loads((EVENTS / "sqs-s3-upload.json").read_text())["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append({**template, "messageId": f"m-{i}", "body": text})
    return {"Records": records}


def _job_event(
    name: str,
    pipeline: Pipeline,
    video_id: str,
    attempt: int,
    job_id: str = "1764260000000-abcdef",
    queue: str = QUEUE,
) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for old, new in (("BUCKET", pipeline.bucket), ("VIDEO_ID", video_id),
                     ("\"ATTEMPT\"", f"\"{attempt}\""), ("QUEUE_ARN", queue),
                     ("JOB_ID", job_id)):  # fmt: skip
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


# --------------------------------------------------------------------------- ingest


def test_an_upload_notification_starts_one_job_and_the_video_is_processing(
    pipeline: Pipeline,
) -> None:
    key = pipeline.draft("clip-a")

    result = pipeline.ingest.handle_batch(_sqs(_notification(pipeline.bucket, key)))

    assert result == {"batchItemFailures": []}
    (job,) = pipeline.mediaconvert.jobs
    assert job["Settings"]["Inputs"][0]["FileInput"] == f"s3://{pipeline.bucket}/{key}"
    assert job["UserMetadata"] == {"video_id": "clip-a", "attempt": "1"}
    assert (job["Role"], job["Queue"]) == (ROLE, QUEUE)
    video = pipeline.publishing.video("clip-a")
    assert (video.state, video.attempts, video.job_id) == ("processing", 1, job["Id"])


def test_a_duplicate_delivery_starts_nothing_twice(pipeline: Pipeline) -> None:
    key = pipeline.draft("clip-b")
    message = _notification(pipeline.bucket, key)

    pipeline.ingest.handle_batch(_sqs(message))
    again = pipeline.ingest.handle_batch(_sqs(message, message))

    assert again == {"batchItemFailures": []}
    assert len(pipeline.mediaconvert.jobs) == 1


def test_the_s3_test_event_is_acknowledged_and_ignored(pipeline: Pipeline) -> None:
    test_event = (EVENTS / "s3-test-event.json").read_text().replace("BUCKET", pipeline.bucket)
    assert uploads_in(test_event) == []
    assert pipeline.ingest.handle_batch(_sqs(test_event)) == {"batchItemFailures": []}
    assert pipeline.mediaconvert.jobs == []


def test_only_the_bad_messages_of_a_batch_are_reported_failed(pipeline: Pipeline) -> None:
    key = pipeline.draft("clip-c")
    good = _notification(pipeline.bucket, key)
    other_bucket = _notification("someone-elses-bucket", key)
    outside = _notification(pipeline.bucket, "videos/clip-c/x.mp4")
    no_draft = _notification(pipeline.bucket, "uploads/nobody/x.mov")

    result = pipeline.ingest.handle_batch(
        _sqs("not json", other_bucket, good, outside, no_draft, {"Records": []})
    )

    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == ["m-0", "m-1", "m-3", "m-4", "m-5"]
    assert pipeline.publishing.video("clip-c").state == "processing"


def test_a_file_without_a_video_stream_fails_with_a_clear_reason(pipeline: Pipeline) -> None:
    key = pipeline.draft("clip-d", "voice.m4a")
    pipeline.mediaconvert.tracks[f"s3://{pipeline.bucket}/{key}"] = [AUDIO_TRACK]

    result = pipeline.ingest.handle_batch(_sqs(_notification(pipeline.bucket, key)))

    assert result == {"batchItemFailures": []}  # the message is done: the video says why
    video = pipeline.publishing.video("clip-d")
    assert (video.state, video.failure_reason) == ("failed", "it has no video stream")
    assert pipeline.mediaconvert.jobs == []


def test_a_file_mediaconvert_cannot_read_fails_with_its_reason(pipeline: Pipeline) -> None:
    key = pipeline.draft("clip-e", "broken.mp4")
    pipeline.mediaconvert.unreadable.add(f"s3://{pipeline.bucket}/{key}")

    pipeline.ingest.handle_batch(_sqs(_notification(pipeline.bucket, key)))

    video = pipeline.publishing.video("clip-e")
    assert video.state == "failed"
    assert video.failure_reason is not None and "cannot read it" in video.failure_reason


def test_mediaconvert_down_fails_the_message_and_the_redelivery_takes_over(
    pipeline: Pipeline,
) -> None:
    key = pipeline.draft("clip-f")
    message = _sqs(_notification(pipeline.bucket, key))
    pipeline.mediaconvert.down = True

    assert pipeline.ingest.handle_batch(message) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    video = pipeline.publishing.video("clip-f")
    assert (video.state, video.attempts, video.job_id) == ("processing", 1, None)

    pipeline.mediaconvert.down = False
    assert pipeline.ingest.handle_batch(message) == {"batchItemFailures": []}
    video = pipeline.publishing.video("clip-f")
    assert (video.state, video.attempts) == ("processing", 2)  # took over the stopped attempt
    assert video.job_id == pipeline.mediaconvert.jobs[0]["Id"]


def test_a_delivery_that_died_before_createjob_is_taken_over_once_its_heartbeat_is_stale(
    pipeline: Pipeline,
) -> None:
    key = pipeline.draft("clip-g")
    pipeline.publishing.start_processing("clip-g", attempt=1)  # then the function died
    message = _sqs(_notification(pipeline.bucket, key))

    # Its heartbeat is fresh, so it may still be running: the message comes back later.
    assert pipeline.ingest.handle_batch(message) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    assert pipeline.mediaconvert.jobs == []

    pipeline.clock.ahead = pipeline.publishing.heartbeat_timeout + timedelta(seconds=1)
    assert pipeline.ingest.handle_batch(message) == {"batchItemFailures": []}

    (job,) = pipeline.mediaconvert.jobs
    assert job["UserMetadata"]["attempt"] == "2"
    assert pipeline.publishing.video("clip-g").job_id == job["Id"]


def test_a_second_file_in_the_upload_folder_is_not_the_original(pipeline: Pipeline) -> None:
    pipeline.draft("clip-h")
    assert pipeline.ingest.handle(Upload(pipeline.bucket, "uploads/clip-h/other.mov")) == "ignored"
    assert pipeline.mediaconvert.jobs == []


# --------------------------------------------------------------------------- publish


def _processing(pipeline: Pipeline, video_id: str) -> str:
    key = pipeline.draft(video_id)
    pipeline.ingest.handle_batch(_sqs(_notification(pipeline.bucket, key)))
    job_id: str = pipeline.mediaconvert.jobs[-1]["Id"]
    return job_id


def test_a_status_update_reports_the_jobs_percentage(pipeline: Pipeline) -> None:
    job = _processing(pipeline, "pub-a")

    event = _job_event("mediaconvert-status-update.json", pipeline, "pub-a", 1, job)
    assert pipeline.events.handle(event) == "progress"

    assert pipeline.publishing.video("pub-a").progress == 42


def test_complete_copies_the_poster_and_marks_the_video_ready_for_viewers(
    pipeline: Pipeline,
) -> None:
    job = _processing(pipeline, "pub-b")
    capture = "videos/pub-b/poster.0000001.jpg"
    pipeline.s3.put_object(Bucket=pipeline.bucket, Key=capture, Body=b"\xff\xd8jpeg")

    event = _job_event("mediaconvert-complete.json", pipeline, "pub-b", 1, job)
    assert pipeline.events.handle(event) == "ready"

    video = pipeline.catalog.get("pub-b")  # what viewers read: ready and published
    assert video.hls_key == "videos/pub-b/hls/master.m3u8"
    assert (video.object_key, video.content_type) == ("videos/pub-b/480p.mp4", "video/mp4")
    assert video.poster_key == "posters/pub-b.jpg"
    assert (video.width, video.height, video.duration_seconds) == (1920, 1080, 125.5)
    poster = pipeline.s3.get_object(Bucket=pipeline.bucket, Key="posters/pub-b.jpg")
    assert poster["Body"].read() == b"\xff\xd8jpeg"
    assert poster["ContentType"] == "image/jpeg"


def test_an_error_is_retried_then_the_video_fails_with_mediaconverts_reason(
    pipeline: Pipeline,
) -> None:
    first = _processing(pipeline, "pub-c")

    retried = pipeline.events.handle(_job_event("mediaconvert-error.json", pipeline, "pub-c", 1,
                                                first))  # fmt: skip
    assert retried == "retried"
    second = pipeline.mediaconvert.jobs[-1]
    assert second["UserMetadata"] == {"video_id": "pub-c", "attempt": "2"}
    video = pipeline.publishing.video("pub-c")
    assert (video.state, video.attempts, video.job_id) == ("processing", 2, second["Id"])

    final = pipeline.events.handle(_job_event("mediaconvert-error.json", pipeline, "pub-c", 2,
                                              second["Id"]))  # fmt: skip
    assert final == "failed"  # max_attempts is 2 here
    video = pipeline.publishing.video("pub-c")
    assert video.state == "failed"
    assert video.failure_reason is not None
    assert video.failure_reason.startswith("MediaConvert error 1040: Demuxer")
    with pytest.raises(VideoNotFoundError):
        pipeline.catalog.get("pub-c")


def test_a_late_event_of_an_earlier_attempt_changes_nothing(pipeline: Pipeline) -> None:
    first = _processing(pipeline, "pub-d")
    pipeline.events.handle(_job_event("mediaconvert-error.json", pipeline, "pub-d", 1, first))

    late = _job_event("mediaconvert-complete.json", pipeline, "pub-d", 1, first)
    assert pipeline.events.handle(late) == "ignored"

    video = pipeline.publishing.video("pub-d")
    assert (video.state, video.attempts) == ("processing", 2)
    missing = pipeline.s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="posters/")
    assert missing.get("KeyCount", 0) == 0


def test_jobs_of_another_queue_or_without_our_metadata_are_ignored(pipeline: Pipeline) -> None:
    job = _processing(pipeline, "pub-e")
    other = "arn:aws:mediaconvert:us-east-1:111122223333:queues/Default"
    event = _job_event("mediaconvert-complete.json", pipeline, "pub-e", 1, job, queue=other)
    assert pipeline.events.handle(event) == "ignored"
    foreign = _job_event("mediaconvert-status-update.json", pipeline, "pub-e", 1, job)
    foreign["detail"]["userMetadata"] = {}
    assert pipeline.events.handle(foreign) == "ignored"
    assert pipeline.publishing.video("pub-e").state == "processing"


def test_a_canceled_job_fails_the_video(pipeline: Pipeline) -> None:
    job = _processing(pipeline, "pub-f")
    event = _job_event("mediaconvert-error.json", pipeline, "pub-f", 1, job)
    event["detail"]["status"] = "CANCELED"
    assert pipeline.events.handle(event) == "failed"
    assert pipeline.publishing.video("pub-f").failure_reason == "the transcode was canceled"


def test_an_event_that_is_not_a_job_state_change_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(BadEventError):
        pipeline.events.handle({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})


def test_a_retry_that_stopped_before_createjob_is_started_again_by_the_redelivered_error(
    pipeline: Pipeline,
) -> None:
    first = _processing(pipeline, "pub-g")
    error = _job_event("mediaconvert-error.json", pipeline, "pub-g", 1, first)
    pipeline.mediaconvert.create_down = True
    with pytest.raises(DependencyUnavailableError):
        pipeline.events.handle(error)  # Lambda retries the invocation
    video = pipeline.publishing.video("pub-g")
    assert (video.state, video.attempts, video.job_id) == ("processing", 2, None)

    pipeline.mediaconvert.create_down = False
    assert pipeline.events.handle(error) == "failed"  # attempt 3 is past max_attempts (2)
    video = pipeline.publishing.video("pub-g")
    assert video.state == "failed"
    assert video.failure_reason == "transcoding failed 2 times; giving up"


def test_a_retranscode_message_reruns_the_ladder_on_a_ready_video(pipeline: Pipeline) -> None:
    job = _processing(pipeline, "pub-h")
    capture = "videos/pub-h/poster.0000001.jpg"
    pipeline.s3.put_object(Bucket=pipeline.bucket, Key=capture, Body=b"jpeg")
    pipeline.events.handle(_job_event("mediaconvert-complete.json", pipeline, "pub-h", 1, job))
    video = pipeline.publishing.video("pub-h")
    assert video.state == "ready"
    message = {
        "type": "vidgate:retranscode",
        "bucket": pipeline.bucket,
        "video_id": "pub-h",
        "source_key": video.source_key,
    }

    assert pipeline.ingest.handle_batch(_sqs(message)) == {"batchItemFailures": []}

    rerun = pipeline.mediaconvert.jobs[-1]
    assert rerun["UserMetadata"] == {"video_id": "pub-h", "attempt": "1"}
    video = pipeline.publishing.video("pub-h")
    assert (video.state, video.attempts, video.job_id) == ("processing", 1, rerun["Id"])
    wrong = _sqs({**message, "video_id": "someone-else"})
    assert pipeline.ingest.handle_batch(wrong) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


class AliveAttemptPublishing(Publishing):
    """Refuses every takeover as the heartbeat rule does while the previous attempt is alive."""

    def start_processing(self, video_id: str, *, attempt: int, **kwargs: Any) -> Any:
        if attempt > 1:
            current = self.video(video_id)
            raise StaleAttemptError(
                "alive",
                video_id=video_id,
                expected=f"processing, attempt {attempt - 1} stopped",
                current_state=current.state,
                current_attempt=current.attempts,
            )
        return super().start_processing(video_id, attempt=attempt, **kwargs)


def test_a_takeover_of_an_attempt_still_alive_is_asked_again_later(
    pipeline: Pipeline, boto_session: boto3.Session
) -> None:
    key = pipeline.draft("clip-i")
    pipeline.publishing.start_processing("clip-i", attempt=1)  # a delivery still at work
    alive = AliveAttemptPublishing(pipeline.publishing._client, pipeline.publishing._table)
    transcoder = pipeline.ingest.transcoder
    ingest = Ingest(Transcoder(alive, transcoder.jobs, transcoder.bucket))

    result = ingest.handle_batch(_sqs(_notification(pipeline.bucket, key)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert pipeline.mediaconvert.jobs == []
    assert pipeline.publishing.video("clip-i").attempts == 1

"""Reading the pipeline's inputs: S3 notifications in SQS bodies and MediaConvert job events.
Whatever arrives, the readers answer with what they found or their own error, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ingest import BadMessageError, Upload, uploads_in
from app.job_events import BadEventError, outputs_of, parse_event

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _notification(key: str, event_name: str = "ObjectCreated:Put") -> str:
    body = json.loads((EVENTS / "s3-object-created.json").read_text().replace("BUCKET", "media"))
    body["Records"][0]["s3"]["object"]["key"] = key
    body["Records"][0]["eventName"] = event_name
    return json.dumps(body)


def test_notification_keys_are_decoded_the_form_way() -> None:
    encoded = "uploads/v1/My+Clip+%C3%A9%2B1.mov"
    assert uploads_in(_notification(encoded)) == [Upload("media", "uploads/v1/My Clip é+1.mov")]


def test_the_s3_test_event_names_no_upload() -> None:
    assert uploads_in((EVENTS / "s3-test-event.json").read_text()) == []


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"Records": []}',
        '{"Records": [{"eventSource": "aws:sqs"}]}',
        _notification("uploads/v1/a.mov", "ObjectRemoved:Delete"),
        _notification(""),
    ],
)
def test_what_is_not_an_upload_notification_is_a_bad_message(body: str) -> None:
    with pytest.raises(BadMessageError):
        uploads_in(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), JSON.map(json.dumps)))
def test_any_body_is_read_or_refused_as_a_bad_message(body: str) -> None:
    try:
        result = uploads_in(body)
    except BadMessageError:
        return
    assert all(isinstance(u, Upload) for u in result)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_event_is_read_or_refused_as_a_bad_event(event: Any) -> None:
    if not isinstance(event, dict):
        event = {"detail": event}
    event.setdefault("source", "aws.mediaconvert")
    event.setdefault("detail-type", "MediaConvert Job State Change")
    try:
        job = parse_event(event)
    except BadEventError:
        return
    assert isinstance(job.job_id, str) and job.job_id
    assert (job.video_id is None) == (job.attempt is None)


def test_an_event_without_our_metadata_names_no_video() -> None:
    event = json.loads((EVENTS / "mediaconvert-error.json").read_text())
    event["detail"]["userMetadata"] = {"video_id": "v1", "attempt": "zero"}
    job = parse_event(event)
    assert (job.video_id, job.attempt, job.status) == (None, None, "ERROR")
    assert job.error.startswith("MediaConvert error 1040: Demuxer")


def test_outputs_of_a_complete_event_and_one_outside_the_bucket() -> None:
    text = (EVENTS / "mediaconvert-complete.json").read_text()
    event = json.loads(text.replace("BUCKET", "media").replace("VIDEO_ID", "v1"))
    outputs = outputs_of(event["detail"], "media")
    assert outputs.hls_key == "videos/v1/hls/master.m3u8"
    assert outputs.mp4_key == "videos/v1/480p.mp4"
    assert outputs.capture_key == "videos/v1/poster.0000001.jpg"
    assert (outputs.width, outputs.height, outputs.duration_seconds) == (1920, 1080, 125.5)
    with pytest.raises(BadEventError, match="outside the bucket"):
        outputs_of(event["detail"], "another-bucket")

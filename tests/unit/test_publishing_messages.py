"""The ingest queue's messages: S3 event notifications and re-transcode requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.catalog import Video
from app.errors import BadRequestError
from app.publishing import (
    IngestRequest,
    parse_ingest_message,
    retranscode_message,
    source_key_for,
    upload_id_of,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _video(source_key: str | None) -> Video:
    return Video(
        video_id="aurora-2",
        title="Aurora",
        description="",
        tier="free",
        object_key="",
        content_type="",
        duration_seconds=0,
        poster_key=None,
        size_bytes=0,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        state="ready",
        source_key=source_key,
    )


def test_an_s3_notification_names_the_original_with_its_key_decoded() -> None:
    body = (EVENTS / "s3-object-created-sqs-body.json").read_text()

    assert parse_ingest_message(body) == [
        IngestRequest("vidgate-media", "uploads/aurora-2/my film été + more.mov", "aurora-2")
    ]


def test_s3s_test_event_and_records_outside_uploads_ask_for_nothing() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}
    assert parse_ingest_message(json.dumps(test_event)) == []
    record = json.loads((EVENTS / "s3-object-created-sqs-body.json").read_text())
    for key in ("videos/aurora-2/x.mp4", "uploads/a/b/c.mov", "uploads/bad%20id/x.mov"):
        record["Records"][0]["s3"]["object"]["key"] = key
        assert parse_ingest_message(json.dumps(record)) == []
    record["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    record["Records"][0]["s3"]["object"]["key"] = "uploads/a/x.mov"
    assert parse_ingest_message(json.dumps(record)) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        '{"Records": "x"}',
        '{"Records": [1]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}',
        '{"type": "vidgate:retranscode", "bucket": "b", "video_id": "x",'
        ' "source_key": "uploads/y/f.mov"}',
        "[" * 5000,
    ],
)
def test_a_malformed_message_is_a_bad_request(body: str) -> None:
    with pytest.raises(BadRequestError):
        parse_ingest_message(body)


def test_a_retranscode_message_round_trips_as_a_rerun() -> None:
    body = retranscode_message("vidgate-media", _video("uploads/aurora-2/film.mov"))

    assert parse_ingest_message(body) == [
        IngestRequest("vidgate-media", "uploads/aurora-2/film.mov", "aurora-2", rerun=True)
    ]
    with pytest.raises(BadRequestError):
        retranscode_message("vidgate-media", _video(None))  # added before the pipeline


def test_source_keys_live_in_the_videos_own_upload_folder() -> None:
    assert source_key_for("aurora-2", "film.mov") == "uploads/aurora-2/film.mov"
    assert upload_id_of("uploads/aurora-2/film.mov") == "aurora-2"
    for bad in ("uploads/aurora-2/", "uploads/aurora-2", "videos/a/b.mov", "uploads/a b/f"):
        assert upload_id_of(bad) is None
    for name in ("", "a/b", ".."):
        with pytest.raises(BadRequestError):
            source_key_for("aurora-2", name)
    with pytest.raises(BadRequestError):
        source_key_for("bad id", "f.mov")

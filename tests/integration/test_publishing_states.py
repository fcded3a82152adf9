"""Publishing states and transitions against real engines (the emulator and DynamoDB Local).

Every transition is one conditional write, so each test that races or replays a
transition checks that the loser gets the right error and the item is unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.catalog import Video, VideoCatalog
from app.errors import (
    AttemptsExhaustedError,
    BadRequestError,
    InvalidTransitionError,
    StaleAttemptError,
    VideoExistsError,
    VideoNotFoundError,
)
from app.publishing import PublishedMedia, Publishing
from tests.integration.conftest import DdbTarget

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


class SteppingClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _pipeline(target: DdbTarget, **kwargs: Any) -> tuple[Publishing, VideoCatalog]:
    catalog = VideoCatalog(target.client, target.tables["videos"], cache_seconds=0)
    publishing = Publishing(
        target.client, target.tables["videos"], catalog=catalog, clock=SteppingClock(), **kwargs
    )
    return publishing, catalog


def _draft(publishing: Publishing, video_id: str = "clip", **kwargs: Any) -> Video:
    return publishing.create_draft(
        video_id,
        title=f"Clip {video_id}",
        tier="free",
        description="A clip",
        source_key=f"uploads/{video_id}/clip.mov",
        **kwargs,
    )


def _media(video_id: str = "clip") -> PublishedMedia:
    return PublishedMedia(
        hls_key=f"videos/{video_id}/hls/master.m3u8",
        mp4_key=f"videos/{video_id}/360p.mp4",
        poster_key=f"posters/{video_id}.jpg",
        duration_seconds=3.5,
        width=640,
        height=360,
        size_bytes=12345,
    )


def test_a_draft_is_uploading_seen_by_admins_and_never_by_viewers(ddb_target: DdbTarget) -> None:
    publishing, catalog = _pipeline(ddb_target)

    draft = _draft(publishing)

    assert (draft.state, draft.progress, draft.attempts) == ("uploading", 0, 0)
    assert draft.source_key == "uploads/clip/clip.mov"
    assert catalog.get_any("clip") == draft
    assert [v.video_id for v in catalog.list_all(10, None)[0]] == ["clip"]
    assert catalog.list(10, None)[0] == []
    with pytest.raises(VideoNotFoundError):
        catalog.get("clip")


def test_a_second_draft_with_the_same_id_is_refused_and_changes_nothing(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    first = _draft(publishing)

    with pytest.raises(VideoExistsError):
        publishing.create_draft(
            "clip", title="Other", tier="premium", source_key="uploads/clip/other.mp4"
        )
    assert catalog.get_any("clip") == first


def test_a_draft_needs_its_original_under_its_own_upload_folder(ddb_target: DdbTarget) -> None:
    publishing, _ = _pipeline(ddb_target)
    for source in ("uploads/other/clip.mov", "videos/clip/clip.mov", "uploads/clip/a/b.mov"):
        with pytest.raises(BadRequestError):
            publishing.create_draft("clip", title="t", tier="free", source_key=source)


def test_the_whole_way_to_ready_lists_the_video_for_viewers_with_its_renditions(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)

    started = publishing.start_processing("clip", attempt=1, job_id="job-1")
    assert (started.state, started.attempts, started.job_id) == ("processing", 1, "job-1")
    assert publishing.report_progress("clip", attempt=1, percent=40).progress == 40
    assert publishing.report_progress("clip", attempt=1, percent=25).progress == 40  # not back
    with pytest.raises(VideoNotFoundError):
        catalog.get("clip")

    ready = publishing.mark_ready("clip", attempt=1, media=_media())

    assert (ready.state, ready.progress, ready.failure_reason) == ("ready", 100, None)
    assert ready.formats == ("hls", "mp4")
    assert (ready.width, ready.height, ready.duration_seconds) == (640, 360, 3.5)
    assert ready.poster_key == "posters/clip.jpg"
    assert catalog.get("clip") == ready
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["clip"]


def test_a_video_unpublished_while_processing_becomes_ready_but_stays_hidden(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)
    publishing.start_processing("clip", attempt=1)
    catalog.unpublish("clip")

    ready = publishing.mark_ready("clip", attempt=1, media=_media())

    assert ready.state == "ready" and not ready.published
    assert catalog.list(10, None)[0] == []
    with pytest.raises(VideoNotFoundError):
        catalog.get("clip")
    catalog.publish("clip")
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["clip"]


def test_publishing_a_video_still_processing_shows_it_only_once_ready(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing, published=False)
    publishing.start_processing("clip", attempt=1)

    assert catalog.publish("clip").published
    assert catalog.list(10, None)[0] == []

    publishing.mark_ready("clip", attempt=1, media=_media())
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["clip"]


def test_only_one_of_two_workers_takes_an_attempt(ddb_target: DdbTarget) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def take(job: str) -> None:
        barrier.wait()
        try:
            publishing.start_processing("clip", attempt=1, job_id=job)
            outcomes.append("won")
        except StaleAttemptError:
            outcomes.append("lost")

    threads = [threading.Thread(target=take, args=(f"job-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["lost", "won"]
    assert catalog.get_any("clip").attempts == 1


def test_a_later_attempt_takes_over_and_the_stale_one_can_neither_report_nor_finish(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)
    first = publishing.start_processing("clip", attempt=1)
    publishing.report_progress("clip", attempt=1, percent=60)
    assert publishing.next_attempt(first) == 2

    second = publishing.start_processing("clip", attempt=2, job_id="again")

    assert (second.attempts, second.progress) == (2, 0)
    with pytest.raises(StaleAttemptError) as stale:
        publishing.report_progress("clip", attempt=1, percent=90)
    assert (stale.value.current_state, stale.value.current_attempt) == ("processing", 2)
    with pytest.raises(StaleAttemptError):
        publishing.mark_ready("clip", attempt=1, media=_media())
    with pytest.raises(StaleAttemptError):
        publishing.start_processing("clip", attempt=2)
    assert catalog.get_any("clip") == second


def test_attempts_are_bounded_then_the_video_fails_with_the_reason(ddb_target: DdbTarget) -> None:
    publishing, catalog = _pipeline(ddb_target, max_attempts=2)
    _draft(publishing)
    publishing.start_processing("clip", attempt=1)
    publishing.start_processing("clip", attempt=2)
    assert not publishing.can_retry(2)

    with pytest.raises(AttemptsExhaustedError):
        publishing.start_processing("clip", attempt=3)
    assert catalog.get_any("clip").attempts == 2

    failed = publishing.mark_failed("clip", reason="gave up after 2 attempts", attempt=2)
    assert (failed.state, failed.failure_reason) == ("failed", "gave up after 2 attempts")
    with pytest.raises(InvalidTransitionError):
        publishing.mark_ready("clip", attempt=2, media=_media())
    with pytest.raises(InvalidTransitionError):
        publishing.start_processing("clip", attempt=1)  # a replayed upload event


def test_a_rerun_starts_again_from_ready_or_failed_and_clears_the_reason(
    ddb_target: DdbTarget,
) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)
    publishing.start_processing("clip", attempt=1)
    publishing.mark_failed("clip", reason="no video stream", attempt=1)

    rerun = publishing.start_processing("clip", attempt=1, rerun=True)
    assert (rerun.state, rerun.failure_reason, rerun.attempts) == ("processing", None, 1)
    publishing.mark_ready("clip", attempt=1, media=_media())
    with pytest.raises(InvalidTransitionError):
        publishing.start_processing("clip", attempt=1)

    again = publishing.start_processing("clip", attempt=1, rerun=True)
    assert again.state == "processing"
    with pytest.raises(VideoNotFoundError):
        catalog.get("clip")


def test_an_upload_that_never_completes_can_be_failed_but_a_ready_video_cannot(
    ddb_target: DdbTarget,
) -> None:
    publishing, _ = _pipeline(ddb_target)
    _draft(publishing, "a")
    assert publishing.mark_failed("a", reason="upload abandoned").state == "failed"
    _draft(publishing, "b")
    publishing.start_processing("b", attempt=1)
    publishing.mark_ready("b", attempt=1, media=_media("b"))
    with pytest.raises(InvalidTransitionError):
        publishing.mark_failed("b", reason="late failure")
    with pytest.raises(VideoNotFoundError):
        publishing.mark_failed("nope", reason="x")


def test_ready_refuses_keys_outside_the_videos_folders(ddb_target: DdbTarget) -> None:
    publishing, catalog = _pipeline(ddb_target)
    _draft(publishing)
    publishing.start_processing("clip", attempt=1)
    for media in (
        replace(_media(), hls_key="videos/other/hls/master.m3u8"),
        replace(_media(), mp4_key="videos/other/360p.mp4"),
        replace(_media(), poster_key="posters/other.jpg"),
        replace(_media(), hls_key=None, mp4_key=""),
    ):
        with pytest.raises(BadRequestError):
            publishing.mark_ready("clip", attempt=1, media=media)
    assert catalog.get_any("clip").state == "processing"


def test_items_written_before_states_read_as_ready(ddb_target: DdbTarget) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"], cache_seconds=0)
    ddb_target.client.put_item(
        TableName=ddb_target.tables["videos"],
        Item={
            "video_id": {"S": "old"},
            "title": {"S": "Old"},
            "description": {"S": ""},
            "tier": {"S": "free"},
            "object_key": {"S": "videos/old/old.mp4"},
            "content_type": {"S": "video/mp4"},
            "duration_seconds": {"N": "4"},
            "size_bytes": {"N": "10"},
            "created_at": {"S": "2026-01-01T00:00:00Z"},
            "sort_key": {"S": "2026-01-01T00:00:00Z#old"},
            "published": {"BOOL": True},
            "catalog": {"S": "published"},
            "entity": {"S": "video"},
        },
    )

    old = catalog.get("old")

    assert (old.state, old.published, old.attempts) == ("ready", True, 0)
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["old"]

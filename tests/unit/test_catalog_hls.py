"""The catalog's HLS rule: a playlist lies inside its own video's ``videos/<id>/hls/`` or nowhere.

A write that breaks the rule is refused before anything reaches DynamoDB; an
item that breaks it (written by other code, or before the rule) reads back
without its HLS, so nothing can sign it. A small in-memory table stands in
for DynamoDB: it keeps the items it was given and answers ``GetItem``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.catalog import Video, VideoCatalog, hls_folder, is_hls_key_for
from app.errors import BadRequestError

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeVideosTable:
    """Items by ``video_id``, as the low-level DynamoDB client reads and writes them."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.items[Item["video_id"]["S"]] = Item
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        item = self.items.get(Key["video_id"]["S"])
        return {"Item": item} if item is not None else {}


def video(video_id: str = "a", **changes: Any) -> Video:
    base = Video(
        video_id=video_id,
        title="A",
        description="",
        tier="free",
        object_key=f"videos/{video_id}/a.mp4",
        content_type="video/mp4",
        duration_seconds=12.0,
        poster_key=None,
        size_bytes=1000,
        created_at=NOW,
        hls_key=f"videos/{video_id}/hls/master.m3u8",
    )
    return replace(base, **changes)


@pytest.fixture
def table() -> FakeVideosTable:
    return FakeVideosTable()


@pytest.fixture
def catalog(table: FakeVideosTable) -> VideoCatalog:
    return VideoCatalog(table, "videos", cache_seconds=0)  # type: ignore[arg-type]


def test_the_hls_folder_of_a_video_ends_with_a_slash() -> None:
    assert hls_folder("a") == "videos/a/hls/"


@pytest.mark.parametrize(
    "key",
    ["videos/a/hls/master.m3u8", "videos/a/hls/main.m3u8", "videos/a/hls/720p/index.m3u8"],
)
def test_a_playlist_inside_the_videos_own_hls_folder_belongs_to_it(key: str) -> None:
    assert is_hls_key_for("a", key)


@pytest.mark.parametrize(
    "key",
    [
        "videos/b/hls/master.m3u8",  # another video's folder
        "videos/a/master.m3u8",  # the video's folder, but not hls/
        "videos/a/hls/../b/hls/master.m3u8",  # climbs out
        "videos/a/hls/./master.m3u8",
        "videos/a/hls//master.m3u8",
        "videos/ab/hls/master.m3u8",  # a video whose id starts with "a"
        "videos/a/hlsx/master.m3u8",
        "videos/A/hls/master.m3u8",  # keys are case-sensitive
        "videos/a/hls/",
        "videos/a/hls/.m3u8",
        "videos/a/hls/master.mp4",
        "/videos/a/hls/master.m3u8",
        "shared/hls/master.m3u8",
        "videos/a/hls/mas\x00ter.m3u8",
        "",
        None,
        7,
    ],
)
def test_a_key_anywhere_else_does_not_belong_to_the_video(key: object) -> None:
    assert not is_hls_key_for("a", key)


def test_an_id_the_catalog_would_refuse_owns_no_folder() -> None:
    assert not is_hls_key_for("../a", "videos/../a/hls/master.m3u8")


def test_a_video_with_hls_and_mp4_reads_back_with_both(catalog: VideoCatalog) -> None:
    stored = catalog.put(video())

    assert stored == video()
    assert catalog.get("a") == video()
    assert catalog.get("a").formats == ("hls", "mp4")


def test_an_mp4_only_video_keeps_working_without_hls(catalog: VideoCatalog) -> None:
    catalog.put(video(hls_key=None))

    assert catalog.get("a").hls_key is None
    assert catalog.get("a").formats == ("mp4",)


def test_an_hls_only_video_has_no_mp4(catalog: VideoCatalog, table: FakeVideosTable) -> None:
    catalog.put(video(object_key="", content_type=""))

    assert "object_key" not in table.items["a"]
    assert catalog.get("a").formats == ("hls",)


@pytest.mark.parametrize(
    "hls_key",
    [
        "videos/b/hls/master.m3u8",
        "videos/a/master.m3u8",
        "videos/a/hls/../b/hls/master.m3u8",
        "videos/a/hls/master.txt",
    ],
)
def test_writing_a_playlist_outside_its_own_folder_is_refused_and_nothing_is_stored(
    catalog: VideoCatalog, table: FakeVideosTable, hls_key: str
) -> None:
    with pytest.raises(BadRequestError):
        catalog.put(video(hls_key=hls_key))
    assert table.items == {}


def test_a_video_with_neither_mp4_nor_hls_is_refused(
    catalog: VideoCatalog, table: FakeVideosTable
) -> None:
    with pytest.raises(BadRequestError):
        catalog.put(video(object_key="", content_type="", hls_key=None))
    assert table.items == {}


def test_a_playlist_as_the_progressive_object_is_refused(
    catalog: VideoCatalog, table: FakeVideosTable
) -> None:
    with pytest.raises(BadRequestError):
        catalog.put(
            video(
                object_key="videos/a/hls/master.m3u8",
                content_type="application/vnd.apple.mpegurl",
                hls_key=None,
            )
        )
    assert table.items == {}


def test_a_stored_playlist_outside_its_folder_reads_back_without_hls(
    catalog: VideoCatalog, table: FakeVideosTable, caplog: pytest.LogCaptureFixture
) -> None:
    catalog.put(video())
    table.items["a"]["hls_key"] = {"S": "videos/b/hls/master.m3u8"}
    caplog.set_level(logging.WARNING, logger="vidgate.catalog")

    found = catalog.get("a")

    assert found.hls_key is None
    assert found.formats == ("mp4",)
    assert "hls_key_outside_its_folder" in caplog.text


def test_an_entry_from_before_hls_key_with_its_playlist_in_its_folder_plays_as_hls(
    catalog: VideoCatalog, table: FakeVideosTable
) -> None:
    catalog.put(video(hls_key=None))
    table.items["a"]["object_key"] = {"S": "videos/a/hls/master.m3u8"}
    table.items["a"]["content_type"] = {"S": "application/vnd.apple.mpegurl"}

    found = catalog.get("a")

    assert (found.hls_key, found.object_key, found.formats) == (
        "videos/a/hls/master.m3u8",
        "",
        ("hls",),
    )


@pytest.mark.parametrize("playlist", ["videos/shared/master.m3u8", "videos/a/master.m3u8"])
def test_an_entry_from_before_hls_key_with_a_shared_playlist_folder_is_not_playable(
    catalog: VideoCatalog, table: FakeVideosTable, playlist: str
) -> None:
    catalog.put(video(hls_key=None))
    table.items["a"]["object_key"] = {"S": playlist}
    table.items["a"]["content_type"] = {"S": "application/x-mpegURL"}

    found = catalog.get("a")

    assert found.hls_key is None
    assert found.formats == ()

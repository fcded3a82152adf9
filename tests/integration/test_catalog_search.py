"""The search index on both DynamoDB engines: what a viewer finds, in which order, kept in step.

Every test runs once per engine (``[emulator]``, ``[dynamodb-local]``) on fresh tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.catalog import Video, VideoCatalog
from app.errors import BadRequestError
from app.search import FILTERED_READS, SearchIndex, parse_query, searchable_catalog
from app.tables import VIDEOS_BROWSE_INDEX
from tests.integration.conftest import DdbTarget

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _video(
    video_id: str,
    title: str,
    minute: int,
    *,
    categories: tuple[str, ...] = (),
    published: bool = True,
    tier: str = "free",
) -> Video:
    return Video(
        video_id=video_id,
        title=title,
        description="",
        tier=tier,  # type: ignore[arg-type]
        object_key=f"videos/{video_id}/main.mp4",
        content_type="video/mp4",
        duration_seconds=10,
        poster_key=None,
        size_bytes=1,
        created_at=START + timedelta(minutes=minute),
        published=published,
        categories=categories,
    )


def _catalog(target: DdbTarget) -> tuple[VideoCatalog, SearchIndex]:
    catalog, index = searchable_catalog(target.client, target.tables["videos"])
    catalog.put(_video("bunny", "Big Buck Bunny", 1, categories=("animation",)))
    catalog.put(_video("cafe", "Café Society", 2, categories=("drama", "comedy")))
    catalog.put(_video("sintel", "Sintel", 3, categories=("animation", "drama")))
    catalog.put(_video("tears", "Tears of Steel", 4, categories=("science",)))
    catalog.put(_video("hidden", "Big Secret", 5, published=False))
    return catalog, index


def _ids(index: SearchIndex, q: str = "", category: str = "", sort: str = "") -> list[str]:
    videos, _ = index.browse(parse_query(q, category, sort), 100, None)
    return [video.video_id for video in videos]


def test_search_finds_word_prefixes_whatever_the_case_and_accents(ddb_target: DdbTarget) -> None:
    _, index = _catalog(ddb_target)

    assert _ids(index, "bu") == ["bunny"]
    assert _ids(index, "BUNNY") == ["bunny"]
    assert _ids(index, "big") == ["bunny"]  # "Big Secret" is not published
    assert _ids(index, "CAFE") == ["cafe"]
    assert _ids(index, "café soc") == ["cafe"]
    assert _ids(index, "SOCIÉ") == ["cafe"]  # É folds to e
    assert _ids(index, "socy") == []
    assert _ids(index, "s") == ["tears", "sintel", "cafe"]  # newest first
    assert _ids(index, "unny") == []  # a prefix of a word, not a substring
    assert _ids(index, "big bunny") == ["bunny"]
    assert _ids(index, "big steel") == []


def test_a_word_longer_than_the_indexed_prefix_is_checked_in_full(ddb_target: DdbTarget) -> None:
    catalog, index = searchable_catalog(ddb_target.client, ddb_target.tables["videos"])
    catalog.put(_video("a", "Extraordinary Journeys", 1))
    catalog.put(_video("b", "Extraordinaire", 2))

    assert _ids(index, "extraordin") == ["b", "a"]
    assert _ids(index, "extraordinary") == ["a"]


def test_categories_and_sort_by_title(ddb_target: DdbTarget) -> None:
    _, index = _catalog(ddb_target)

    assert _ids(index, category="animation") == ["sintel", "bunny"]
    assert _ids(index, category="animation", sort="title") == ["bunny", "sintel"]
    assert _ids(index, sort="title") == ["bunny", "cafe", "sintel", "tears"]
    assert _ids(index, "s", category="drama") == ["sintel", "cafe"]
    assert _ids(index, category="kids") == []


def test_changes_reach_the_index_at_once(ddb_target: DdbTarget) -> None:
    catalog, index = _catalog(ddb_target)

    catalog.update("bunny", title="Elephants Dream", categories=("nature",))
    assert _ids(index, "bunny") == []
    assert _ids(index, "elep") == ["bunny"]
    assert _ids(index, category="animation") == ["sintel"]
    assert _ids(index, category="nature") == ["bunny"]
    assert catalog.update("cafe", categories=()).categories == ()
    assert _ids(index, category="drama") == ["sintel"]

    catalog.unpublish("sintel")
    assert _ids(index, "sintel") == []
    assert _ids(index, sort="title") == ["cafe", "bunny", "tears"]
    catalog.publish("hidden")
    assert _ids(index, "secret") == ["hidden"]
    catalog.remove("tears")
    assert _ids(index, "tears") == []


def test_unpublishing_leaves_no_index_item_behind(ddb_target: DdbTarget) -> None:
    catalog, _ = _catalog(ddb_target)
    for video_id in ("bunny", "cafe", "sintel", "tears"):
        catalog.unpublish(video_id)

    response = ddb_target.client.query(
        TableName=ddb_target.tables["videos"],
        IndexName=VIDEOS_BROWSE_INDEX,
        KeyConditionExpression="browse = :b",
        ExpressionAttributeValues={":b": {"S": "n|all"}},
    )
    assert response["Items"] == []
    # The manifests go too: only the five video items remain.
    assert len(ddb_target.client.scan(TableName=ddb_target.tables["videos"])["Items"]) == 5


def test_a_stale_index_item_never_shows_a_video_that_no_longer_matches(
    ddb_target: DdbTarget,
) -> None:
    _, index = _catalog(ddb_target)
    # A title changed behind the index's back (no sync): the index still says "bunny".
    ddb_target.client.update_item(
        TableName=ddb_target.tables["videos"],
        Key={"video_id": {"S": "bunny"}},
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "Something Else"}},
    )
    assert _ids(index, "bunny") == []
    assert index.sync("bunny") > 0
    assert _ids(index, "some") == ["bunny"]


def test_pages_follow_cursors_to_the_end(ddb_target: DdbTarget) -> None:
    catalog, index = searchable_catalog(ddb_target.client, ddb_target.tables["videos"])
    for number in range(7):
        catalog.put(_video(f"v{number}", f"Ocean {number}", number, categories=("nature",)))
    query = parse_query("oce", "nature", "title")
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = index.browse(query, 3, cursor)
        seen += [video.video_id for video in page]
        if cursor is None:
            break
    assert seen == [f"v{number}" for number in range(7)]


@pytest.mark.parametrize("cursor", ["nope", "eyJ4IjoxfQ"])
def test_a_foreign_cursor_is_a_bad_request(ddb_target: DdbTarget, cursor: Any) -> None:
    _, index = _catalog(ddb_target)
    with pytest.raises(BadRequestError):
        index.browse(parse_query("b", "", ""), 10, cursor)
    # A cursor of another query (another partition) is refused too.
    catalog, index = searchable_catalog(ddb_target.client, ddb_target.tables["videos"])
    for number in range(3):
        catalog.put(_video(f"w{number}", "Wave", number))
    _, other = index.browse(parse_query("wave", "", ""), 1, None)
    assert other is not None
    with pytest.raises(BadRequestError):
        index.browse(parse_query("wav", "", ""), 1, other)


def test_a_filtered_page_reads_a_bounded_number_of_index_items(ddb_target: DdbTarget) -> None:
    catalog, index = searchable_catalog(ddb_target.client, ddb_target.tables["videos"])
    for number in range(FILTERED_READS + 5):
        catalog.put(_video(f"r{number:03d}", "River Walk", number))
    catalog.put(_video("match", "River Sea", -1))  # the oldest: the last one newest-first
    query = parse_query("riv sea", "", "")
    scanned: list[int] = []

    def count(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(parsed["ScannedCount"])

    events = ddb_target.client.meta.events
    events.register("after-call.dynamodb.Query", count)  # the client is shared: unregistered below
    try:
        page, cursor = index.browse(query, 10, None)
        assert page == [] and cursor is not None  # nothing in the first reads, more to read
        assert scanned == [FILTERED_READS]
        found: list[str] = []
        for _ in range(5):
            page, cursor = index.browse(query, 10, cursor)
            found += [video.video_id for video in page]
            if cursor is None:
                break
    finally:
        events.unregister("after-call.dynamodb.Query", count)
    assert found == ["match"]
    assert max(scanned) <= FILTERED_READS

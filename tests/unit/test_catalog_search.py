"""The search index's pure parts (folding, queries, browse keys, items) and the date formats."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.catalog import CATEGORIES, READY, Video, check_categories
from app.errors import BadRequestError
from app.search import (
    MAX_PREFIX,
    browse_keys,
    fold,
    index_items,
    parse_query,
    title_sort,
    words,
)
from app.web.dates import format_duration, iso_utc, utc_day, utc_text

VIDEO = Video(
    video_id="v1",
    title="Café Society: the Ÿear",
    description="",
    tier="premium",
    object_key="videos/v1/main.mp4",
    content_type="video/mp4",
    duration_seconds=61,
    poster_key=None,
    size_bytes=1,
    created_at=datetime(2026, 11, 27, 16, 5, tzinfo=UTC),
    categories=("drama",),
)


def test_folding_drops_accents_and_case() -> None:
    assert fold("Café ÉTÉ Straße") == "cafe ete strasse"
    assert words("Café Society: the Ÿear, the END") == ["cafe", "society", "the", "year", "end"]
    assert words("  --  ") == []


def test_a_query_is_its_folded_words_a_category_and_an_order() -> None:
    query = parse_query("  CAFÉ  soc ", "drama", "title")
    assert (query.terms, query.category, query.sort) == (("cafe", "soc"), "drama", "title")
    assert parse_query(None, None, None).is_plain
    assert parse_query("", "", "newest").is_plain
    assert not parse_query("", "", "title").is_plain


@pytest.mark.parametrize(
    ("q", "category", "sort"),
    [
        ("x" * 101, "", ""),
        ("a b c d e f g", "", ""),
        ("", "cooking", ""),
        ("", "", "oldest"),
        ("", "", "Title"),
    ],
)
def test_a_bad_query_is_a_bad_request(q: str, category: str, sort: str) -> None:
    with pytest.raises(BadRequestError):
        parse_query(q, category, sort)


def test_a_query_of_100_characters_and_six_words_is_fine() -> None:
    assert len(parse_query("a" * 100, "", "").terms) == 1
    assert len(parse_query("a b c d e f", "", "").terms) == 6


def test_the_longest_word_picks_the_partition_cut_to_the_indexed_prefix() -> None:
    assert parse_query("big bunny", "", "").browse_key() == "p#bunny"
    assert parse_query("extraordinarily", "", "").browse_key() == "p#" + "extraordinarily"[:10]
    assert parse_query("", "nature", "").browse_key() == "c#nature"
    assert parse_query("", "", "title").browse_key() == "all"


def test_matching_is_by_word_prefix_on_the_current_title_and_category() -> None:
    assert parse_query("soc caf", "", "").matches(VIDEO)
    assert parse_query("YEAR", "drama", "").matches(VIDEO)
    assert not parse_query("ciety", "", "").matches(VIDEO)
    assert not parse_query("cafe", "comedy", "").matches(VIDEO)


def test_a_viewable_video_has_one_key_per_word_prefix_category_and_all() -> None:
    keys = browse_keys(VIDEO)
    assert keys[0] == "all"
    assert "c#drama" in keys
    assert {"p#c", "p#ca", "p#caf", "p#cafe", "p#s", "p#society", "p#y", "p#year"} <= set(keys)
    assert len(keys) == len(set(keys))  # "the" and "th..." once
    long = replace(VIDEO, title="Supercalifragilistic")
    assert "p#" + "supercalifragilistic"[:MAX_PREFIX] in browse_keys(long)
    assert not any(len(key) > MAX_PREFIX + 2 for key in browse_keys(long))


def test_an_unpublished_or_unready_video_has_no_keys() -> None:
    assert browse_keys(replace(VIDEO, published=False)) == []
    assert browse_keys(replace(VIDEO, state="processing")) == []
    assert browse_keys(replace(VIDEO, state=READY)) != []


def test_index_items_come_in_newest_and_a_z_pairs_and_never_look_like_videos() -> None:
    items = index_items(VIDEO)
    assert len(items) == 2 * len(browse_keys(VIDEO))
    for item in items:
        assert "#" in item["video_id"]["S"]  # never a video id
        assert "entity" not in item and "catalog" not in item  # never in the video listings
        assert item["ref"] == {"S": "v1"}
    by_browse = {item["browse"]["S"]: item["browse_sort"]["S"] for item in items}
    assert by_browse["n|all"] == VIDEO.sort_key
    assert by_browse["t|all"] == title_sort(VIDEO) == "cafe society: the year#v1"


def test_categories_are_a_closed_list_of_at_most_four() -> None:
    assert check_categories(["drama", "comedy", "drama"]) == ("comedy", "drama")
    assert check_categories([]) == ()
    with pytest.raises(BadRequestError):
        check_categories(["cooking"])
    with pytest.raises(BadRequestError):
        check_categories(sorted(CATEGORIES)[:5])
    with pytest.raises(BadRequestError):
        check_categories("drama")


def test_admin_dates_are_one_utc_format() -> None:
    moment = datetime(2026, 11, 27, 16, 5, 59, tzinfo=UTC)
    assert utc_text(moment) == "27 Nov 2026, 16:05 UTC"
    assert utc_text(moment.astimezone(timezone(timedelta(hours=-5)))) == "27 Nov 2026, 16:05 UTC"
    assert utc_text(datetime(2026, 1, 2, 3, 4, tzinfo=UTC)) == "2 Jan 2026, 03:04 UTC"
    assert utc_text(None) == "—"
    assert utc_day(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "31 Dec 2026"
    assert iso_utc(moment) == "2026-11-27T16:05:59Z"
    assert iso_utc(None) == ""


def test_durations_read_like_a_player() -> None:
    assert format_duration(75.4) == "1:15"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(-3) == "0:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("31/12/2026", "not a date we can read"),
        ("2026-02-30", "not a date we can read"),
        ("2026-12-31T18:00", "not a date we can read"),
        ("99999-01-01", "between 1970 and 9998"),
        ("x" * 80, "too long"),
        ("0001-01-01", "between 1970 and 9998"),
    ],
)
def test_a_refused_end_date_reads_as_a_sentence(text: str, expected: str) -> None:
    from app.entitlements import parse_until
    from app.web.admin_views import until_problem

    with pytest.raises(BadRequestError) as refused:
        parse_until(text)
    sentence = until_problem(str(refused.value))
    assert expected in sentence
    assert "until" not in sentence.lower()  # no API wording


def test_a_past_end_date_reads_as_a_sentence() -> None:
    from app.web.admin_views import until_problem

    assert until_problem("until must be in the future").startswith("The end date has already")

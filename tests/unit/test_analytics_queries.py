"""The shared analytics SQL: it parses as Athena's Trino, and DuckDB's numbers are what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from app.analytics import (
    QUERY_NAMES,
    AnalyticsQueries,
    DateRange,
    QueryResult,
    parameters,
    sql_text,
)
from app.analytics.duck import DirectoryEventFiles, DuckDbEngine
from app.errors import BadRequestError
from app.viewing_events import RecordingSink, ViewingEvents


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_each_query_parses_as_trino_and_filters_the_partition_with_parameters(name) -> None:
    tree = sqlglot.parse_one(sql_text(name), read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    tables = {t.name for t in tree.find_all(exp.Table)}
    assert "viewing_events" in tables
    assert len(list(tree.find_all(exp.Placeholder))) == 4
    (between,) = [b for b in tree.find_all(exp.Between) if b.this.name == "dt"]
    assert isinstance(between.args["low"], exp.Placeholder)
    assert isinstance(between.args["high"], exp.Placeholder)
    # Round trip through Trino's generator and back: nothing DuckDB-only in the text.
    again = sqlglot.transpile(sql_text(name), read="trino", write="trino")[0]
    sqlglot.parse_one(again, read="trino", error_level=sqlglot.ErrorLevel.RAISE)


def test_parameters_cover_the_range_and_the_day_after_for_partitions() -> None:
    days = DateRange.parse("2026-02-27", "2026-02-28")
    assert parameters(days) == ["2026-02-27", "2026-03-01", "2026-02-27", "2026-02-28"]
    assert days.partitions() == ["2026-02-27", "2026-02-28", "2026-03-01"]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-1-01", "2026-01-02"),
        ("2026-02-30", "2026-03-01"),
        ("2026-03-02", "2026-03-01"),
        ("2025-01-01", "2026-01-02"),
        (None, "2026-01-01"),
        ("2026-01-01'; DROP", "2026-01-02"),
    ],
)
def test_bad_ranges_are_refused(first, last) -> None:
    with pytest.raises(BadRequestError):
        DateRange.parse(first, last)


def test_a_range_of_exactly_366_days_is_accepted() -> None:
    assert len(DateRange.parse("2024-01-01", "2024-12-31").days()) == 366


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 0.001  # every event a millisecond after the previous one
        return self.now


DAY1 = 1_790_035_200.0  # 2026-09-22T00:00:00Z
DAY = 86_400.0


def _write(root: Path, partition: str, records: list[dict]) -> None:
    folder = root / f"dt={partition}" / "2026" / "x"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"part-{len(list(folder.iterdir()))}").open("w") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def scripted(tmp_path: Path) -> tuple[AnalyticsQueries, DuckDbEngine]:
    """Two days of viewing, one day outside the range, and a late-arriving event."""
    clock = Clock(DAY1 + 3600)
    sink = RecordingSink()
    events = ViewingEvents(sink, b"k" * 32, clock=clock)

    def session(sub, video, sid, startup, watched, stall, ended, plan="free", rendition="720p"):
        events.emit("grant", sub=sub, plan=plan, video_id=video, session_id=sid, format="hls")
        events.emit(
            "start",
            sub=sub,
            plan=plan,
            video_id=video,
            session_id=sid,
            startup_ms=startup,
            rendition=rendition,
            bitrate=2_000_000,
        )
        for w, s in zip(watched[:-1], stall[:-1], strict=True):
            events.emit(
                "heartbeat",
                sub=sub,
                plan=plan,
                video_id=video,
                session_id=sid,
                watched_s=w,
                stall_ms=s,
                rendition=rendition,
            )
        events.emit(
            "stop",
            sub=sub,
            plan=plan,
            video_id=video,
            session_id=sid,
            watched_s=watched[-1],
            stall_ms=stall[-1],
            rendition=rendition,
            reason="ended" if ended else "user",
        )

    # Day 1: alice watches "a" to the end, bob watches "a" partly and "b" at 1080p.
    session("alice", "a", "s1", 200, [60, 60, 30], [0, 1000, 0], True)
    session("bob", "a", "s2", 400, [30], [500], False)
    session("bob", "b", "s3", 1000, [120, 60], [0, 0], True, rendition="1080p")
    events.emit("upsell_view", sub="carol", plan="free", video_id="p")
    events.emit("upsell_view", sub="carol", plan="free", video_id="p")
    events.emit("refusal", sub="carol", plan="free", video_id="p", reason="premium_required")
    day1 = list(sink.records)
    sink.records.clear()
    # Day 2: carol is premium now and plays p; dave only looks at the upsell page.
    clock.now = DAY1 + DAY + 3600
    session("carol", "p", "s4", 600, [90], [3000], False, plan="premium")
    events.emit("upsell_view", sub="dave", plan="free", video_id="p")
    day2 = list(sink.records)
    sink.records.clear()
    # Emitted at 23:59:59.9 on day 2, received by Firehose on day 3: partition dt = day 3.
    clock.now = DAY1 + 2 * DAY - 0.1
    session("erin", "b", "s5", 800, [10], [0], False)
    late = list(sink.records)
    sink.records.clear()
    # Day 3 proper (outside the range) and day 0 (outside too).
    clock.now = DAY1 + 2 * DAY + 60
    session("frank", "b", "s6", 5000, [600], [0], True)
    clock.now = DAY1 - 3600
    session("gina", "a", "s7", 7000, [600], [0], True)
    outside = list(sink.records)

    _write(tmp_path, "2026-09-22", day1)
    _write(tmp_path, "2026-09-23", day2)
    _write(tmp_path, "2026-09-24", late + outside[: len(outside) // 2])
    _write(tmp_path, "2026-09-21", outside[len(outside) // 2 :])
    _write(tmp_path, "2026-09-25", outside)
    engine = DuckDbEngine(DirectoryEventFiles(tmp_path))
    return AnalyticsQueries(engine), engine


RANGE = DateRange.parse("2026-09-22", "2026-09-23")


def test_plays_and_watch_minutes_per_day(scripted) -> None:
    queries, engine = scripted
    daily = queries.run("daily", RANGE).rows
    assert daily == [
        {"day": "2026-09-22", "plays": 3, "watch_minutes": 6.0, "viewers": 2},
        {"day": "2026-09-23", "plays": 2, "watch_minutes": 1.67, "viewers": 2},
    ]
    # dt=2026-09-21 and dt=2026-09-25 are never read; the day after the range is.
    assert engine.last_scan.partitions == 3 and engine.last_scan.files == 3


def test_the_summary_has_nearest_rank_startup_percentiles(scripted) -> None:
    queries, _ = scripted
    (summary,) = queries.run("summary", RANGE).rows
    assert summary["plays"] == 5
    assert summary["viewers"] == 4
    assert summary["startup_p50_ms"] == 600  # 200, 400, 600, 800, 1000: rank 3
    assert summary["startup_p95_ms"] == 1000
    assert summary["refusals"] == 1
    stalled = 1.0 + 0.5 + 3.0
    watched = 150 + 30 + 180 + 90 + 10
    assert summary["rebuffering_ratio"] == round(stalled / (watched + stalled), 4)


def test_top_videos_completion_and_renditions(scripted) -> None:
    queries, _ = scripted
    top = queries.run("top_videos", RANGE).rows
    assert [(r["video_id"], r["plays"], r["watch_minutes"]) for r in top] == [
        ("b", 2, 3.17),
        ("a", 2, 3.0),
        ("p", 1, 1.5),
    ]
    completion = {r["video_id"]: r for r in queries.run("completion", RANGE).rows}
    assert completion["a"]["completion_rate"] == 0.5
    assert completion["b"]["started"] == 2 and completion["b"]["completed"] == 1
    assert completion["p"]["completion_rate"] == 0.0
    mix = {r["rendition"]: r for r in queries.run("renditions", RANGE).rows}
    assert mix["1080p"]["watch_minutes"] == 3.0
    assert mix["720p"]["watch_minutes"] == round((150 + 30 + 90 + 10) / 60, 2)
    assert mix["1080p"]["share"] == round(180 / 460, 4)


def test_conversion_counts_premium_grants_after_an_upsell_view(scripted) -> None:
    queries, _ = scripted
    (row,) = queries.run("conversion", RANGE).rows
    assert row == {"upsell_views": 3, "upsell_viewers": 2, "converted": 1, "conversion_rate": 0.5}


def test_qoe_per_day(scripted) -> None:
    queries, _ = scripted
    qoe = queries.run("qoe", RANGE).rows
    assert [(r["day"], r["starts"], r["startup_p50_ms"], r["startup_p95_ms"]) for r in qoe] == [
        ("2026-09-22", 3, 400, 1000),
        ("2026-09-23", 2, 600, 800),
    ]


def test_an_empty_range_gives_zeros_not_errors(scripted) -> None:
    queries, engine = scripted
    days = DateRange.parse("2020-01-01", "2020-01-02")
    result = queries.dashboard(days)
    assert engine.last_scan.files == 0
    assert result["daily"].rows == []
    assert result["summary"].rows[0]["plays"] == 0
    assert result["conversion"].rows[0]["conversion_rate"] == 0.0


def test_results_are_cached_only_when_asked() -> None:
    class Counting:
        name = "counting"

        def __init__(self):
            self.calls = 0

        def run(self, sql, params, days):
            self.calls += 1
            return QueryResult(["n"], [{"n": self.calls}])

    engine = Counting()
    cached = AnalyticsQueries(engine, cache_seconds=60)
    assert cached.run("daily", RANGE).rows == cached.run("daily", RANGE).rows
    assert engine.calls == 1
    cached.run("daily", DateRange.parse("2026-09-22", "2026-09-24"))
    assert engine.calls == 2
    uncached = AnalyticsQueries(engine)
    uncached.run("daily", RANGE)
    uncached.run("daily", RANGE)
    assert engine.calls == 4

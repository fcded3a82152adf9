"""The analytics bench: the dashboard's queries over 1 million synthetic viewing events in DuckDB.

Events of the schema of docs/viewing-events.md are generated (by DuckDB, in
seconds) over ``--days`` days into ``dt=YYYY-MM-DD/`` folders, as Firehose lays
them out, several newline-delimited JSON files per day. Then, each in a fresh
interpreter so its peak memory is its own, the seven dashboard queries run
through :class:`app.analytics.duck.DuckDbEngine` for a 7-day range and for the
whole period: time per query, the files and bytes each read (the partition
pruning), and the child's peak RSS. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from app.analytics import QUERY_NAMES, AnalyticsQueries, DateRange
from app.analytics.duck import DirectoryEventFiles, DuckDbEngine

DEFAULT_EVENTS = 1_000_000
DEFAULT_DAYS = 30
RANGE_DAYS = 7
FILES_PER_DAY = 4
FIRST_DAY = date(2026, 1, 1)


def generate(root: Path, events: int, days: int) -> int:
    """Write ``events`` synthetic events over ``days`` days under ``root``; returns bytes."""
    import duckdb

    per_day = events // days
    connection = duckdb.connect()
    # Sessions of 10 events: grant, start, 7 heartbeats, stop; plus upsell views and refusals.
    select = f"""
        SELECT
            1 AS schema_version,
            md5(CAST(i AS VARCHAR)) AS event_id,
            strftime(DATE '{FIRST_DAY.isoformat()}' + CAST(i // {per_day} AS INTEGER)
                     + INTERVAL (i % {per_day} * 86399 // {per_day}) SECOND,
                     '%Y-%m-%dT%H:%M:%S.000Z') AS ts,
            CASE WHEN i % 50 = 49 THEN 'upsell_view' WHEN i % 50 = 48 THEN 'refusal'
                 ELSE ['grant', 'start', 'heartbeat', 'heartbeat', 'heartbeat', 'heartbeat',
                       'heartbeat', 'heartbeat', 'heartbeat', 'stop'][i // 1 % 10 + 1] END AS type,
            md5('user' || CAST((i // 10) % 20000 AS VARCHAR)) AS user_pid,
            CASE WHEN (i // 10) % 3 = 0 THEN 'premium' ELSE 'free' END AS plan,
            'video-' || CAST((i // 10) % 200 AS VARCHAR) AS video_id,
            CASE WHEN (i // 10) % 200 < 60 THEN 'free' ELSE 'premium' END AS video_tier,
            'session-' || CAST(i // 10 AS VARCHAR) AS session_id,
            'hls' AS format,
            CASE WHEN i % 10 = 9 THEN CASE WHEN i % 7 < 3 THEN 'ended' ELSE 'user' END
                 WHEN i % 50 = 48 THEN 'premium_required' END AS reason,
            CAST(i % 10 * 30 AS DOUBLE) AS position_s,
            CASE WHEN i % 10 >= 2 THEN 30.0 END AS watched_s,
            CASE WHEN i % 10 = 1 THEN 200 + CAST(hash(i) % 1800 AS BIGINT) END AS startup_ms,
            CASE WHEN i % 10 >= 2 THEN
                 CASE WHEN hash(i) % 20 = 0 THEN CAST(hash(i) % 4000 AS BIGINT) ELSE 0 END
            END AS stall_ms,
            ['360p', '720p', '1080p'][CAST(hash(i // 10) % 3 AS BIGINT) + 1] AS rendition,
            [800000, 2500000, 5000000][CAST(hash(i // 10) % 3 AS BIGINT) + 1] AS bitrate,
            strftime(DATE '{FIRST_DAY.isoformat()}' + CAST(i // {per_day} AS INTEGER),
                     '%Y-%m-%d') AS dt,
            i % {FILES_PER_DAY} AS part
        FROM range({per_day * days}) t(i)
    """  # noqa: S608 - numbers and dates of our own, no input
    for part in range(FILES_PER_DAY):
        connection.execute(
            f"COPY (SELECT * EXCLUDE (part) FROM ({select}) WHERE part = {part}) "  # noqa: S608
            f"TO '{root}' (FORMAT json, PARTITION_BY (dt), FILENAME_PATTERN 'part{part}_{{i}}', "
            "OVERWRITE_OR_IGNORE)"
        )
    connection.close()
    return sum(p.stat().st_size for p in root.rglob("*.json"))


def query_child(root: Path, first: str, last: str) -> dict[str, object]:
    """Run the dashboard's queries once (in this process) and report time, scan and peak RSS."""
    engine = DuckDbEngine(DirectoryEventFiles(root))
    queries = AnalyticsQueries(engine)
    days = DateRange.parse(first, last)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    dashboard = queries.dashboard(days)  # one read of the range, seven queries
    total = time.perf_counter() - started
    scan = engine.last_scan
    for name in QUERY_NAMES:  # each alone again, reading the files itself: per-query cost
        begun = time.perf_counter()
        queries.run(name, days)
        timings[name] = time.perf_counter() - begun
    plays = dashboard["summary"].rows[0]["plays"]
    return {
        "total_s": total,
        "timings": timings,
        "files": scan.files,
        "bytes": scan.bytes,
        "partitions": scan.partitions,
        "plays": plays,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(root: Path, first: date, last: date) -> dict[str, object]:
    out = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "app.local.bench_analytics", "--child", str(root),
         first.isoformat(), last.isoformat()],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_analytics_bench(events: int = DEFAULT_EVENTS, days: int = DEFAULT_DAYS) -> list[str]:
    """The bench's printed lines."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="vidgate-analytics-bench-") as tmp:
        root = Path(tmp)
        begun = time.perf_counter()
        total_bytes = generate(root, events, days)
        files = sorted(root.rglob("*.json"))
        took = time.perf_counter() - begun
        lines.append(
            f"analytics: {events:,} synthetic events over {days} days, {len(files)} files, "
            f"{total_bytes / 2**20:.0f} MiB NDJSON, generated in {took:.1f} s"
        )
        middle = FIRST_DAY + timedelta(days=days // 2)
        ranges = [
            (f"{RANGE_DAYS}-day range", middle, middle + timedelta(days=RANGE_DAYS - 1)),
            (f"all {days} days", FIRST_DAY, FIRST_DAY + timedelta(days=days - 1)),
        ]
        for label, first, last in ranges:
            result = _child(root, first, last)
            timings = result["timings"]
            assert isinstance(timings, dict)
            per_query = ", ".join(
                f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items()
            )
            lines.append(
                f"analytics {label} {first}..{last}: dashboard ({len(QUERY_NAMES)} queries, one "
                f"read) {result['total_s']:.2f} s; read {result['files']}/{len(files)} files "
                f"({int(str(result['bytes'])) / 2**20:.0f}/{total_bytes / 2**20:.0f} MiB, "
                f"partitions {result['partitions']}), {result['plays']:,} plays; "
                f"peak RSS {float(str(result['peak_rss_mib'])):.0f} MiB"
            )
            lines.append(f"  each query alone: {per_query}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "FROM", "TO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        root, first, last = args.child
        print(json.dumps(query_child(Path(root), first, last)))
        return
    for line in run_analytics_bench(args.events, args.days):
        print(line, flush=True)


if __name__ == "__main__":
    main()

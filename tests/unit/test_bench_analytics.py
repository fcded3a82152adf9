"""The analytics bench's synthetic events fit the schema, and a range reads only its partitions."""

from __future__ import annotations

from pathlib import Path

from app.local.bench_analytics import FILES_PER_DAY, generate, query_child


def test_synthetic_events_are_read_by_the_dashboard_and_a_range_prunes_partitions(
    tmp_path: Path,
) -> None:
    assert generate(tmp_path, 2000, 4) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dt=2026-01-01",
        "dt=2026-01-02",
        "dt=2026-01-03",
        "dt=2026-01-04",
    ]
    one_day = query_child(tmp_path, "2026-01-02", "2026-01-02")
    # The day and the next (late arrivals): 2 of 4 partitions, never the others.
    assert one_day["partitions"] == 2
    assert one_day["files"] == 2 * FILES_PER_DAY
    assert one_day["plays"] == 50  # 500 events a day, one start per 10-event session
    everything = query_child(tmp_path, "2026-01-01", "2026-01-04")
    assert everything["files"] == 4 * FILES_PER_DAY
    assert everything["plays"] == 200

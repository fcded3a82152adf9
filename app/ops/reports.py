"""CSV reports of the viewing analytics, written to S3 under ``reports/``.

One CSV per dashboard query for a date range, at
``reports/viewing/<from>_<to>/<query>.csv`` (a header row, then one row per
result row), plus a ``manifest.json`` naming the engine, the range and when it
ran. The same queries the admin page draws, so a report and the page agree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.analytics import QUERY_NAMES, REPORTS_PREFIX, AnalyticsQueries, DateRange, QueryResult


def report_prefix(days: DateRange) -> str:
    return f"{REPORTS_PREFIX}viewing/{days.first.isoformat()}_{days.last.isoformat()}/"


def to_csv(result: QueryResult) -> bytes:
    """RFC 4180 CSV with a header row; ``None`` as an empty field."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if row[c] is None else row[c] for c in result.columns])
    return out.getvalue().encode("utf-8")


def write_reports(
    queries: AnalyticsQueries,
    s3: Any,
    bucket: str,
    days: DateRange,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[str]:
    """Run every query for ``days`` and write its CSV; returns the ``s3://`` URIs written."""
    prefix = report_prefix(days)
    written = []
    rows: dict[str, int] = {}
    for name in QUERY_NAMES:
        result = queries.run(name, days)
        key = f"{prefix}{name}.csv"
        s3.put_object(
            Bucket=bucket, Key=key, Body=to_csv(result), ContentType="text/csv; charset=utf-8"
        )
        rows[name] = len(result.rows)
        written.append(f"s3://{bucket}/{key}")
    manifest = {
        "from": days.first.isoformat(),
        "to": days.last.isoformat(),
        "engine": queries.engine.name,
        "generated_at": clock().astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "rows": rows,
    }
    key = f"{prefix}manifest.json"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    written.append(f"s3://{bucket}/{key}")
    return written

"""The admin analytics page (``/admin/analytics``): viewing and quality charts for a date range.

One form (from, to; default the last 7 days) and the dashboard's queries
(:class:`app.analytics.AnalyticsQueries`: DuckDB locally, Athena in AWS with a
short cache) drawn as server-side SVG (:mod:`app.web.charts`), each chart
with its numbers in a table under it. A bad range is a 400 page; an engine
that cannot answer is a 503 page. Admins only, like every ``/admin`` page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, render_template, request

from app.analytics import DateRange, QueryResult
from app.web.admin_views import admin_template_context
from app.web.charts import Series, bar_chart, hbar_chart, line_chart, share_bar
from app.web.context import current_services
from app.web.signin import admin_required

blueprint = Blueprint("admin_analytics", __name__, url_prefix="/admin")
# The admin nav (Add video link) and the other admin pages' template values.
blueprint.context_processor(admin_template_context)

DEFAULT_DAYS = 7


def _percent(value: float) -> str:
    return f"{value:.1%}" if value * 100 != int(value * 100) else f"{value:.0%}"


def _default_range(today: datetime) -> tuple[str, str]:
    last = today.date()
    return (last - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), last.isoformat()


def _by_day(days: DateRange, result: QueryResult, column: str, zero: Any = 0) -> list[Any]:
    """One value per day of the range, ``zero`` where the query returned no row."""
    found = {row["day"]: row[column] for row in result.rows}
    return [found.get(day.isoformat(), zero) for day in days.days()]


def _charts(days: DateRange, data: dict[str, QueryResult]) -> dict[str, Any]:
    labels = [day.isoformat()[5:] for day in days.days()]  # MM-DD under the axis
    daily, qoe = data["daily"], data["qoe"]
    top, completion = data["top_videos"].rows, data["completion"].rows
    mix = data["renditions"].rows
    return {
        "plays": bar_chart(
            "Plays per day",
            labels,
            _by_day(days, daily, "plays"),
            description="Streams that reached their first frame, per UTC day.",
        ),
        "minutes": bar_chart(
            "Watch minutes per day",
            labels,
            _by_day(days, daily, "watch_minutes", 0.0),
            description="Minutes actually watched (from heartbeats), per UTC day.",
            color="#16a34a",
        ),
        "top": hbar_chart(
            "Top videos by watch minutes",
            [row["video_id"] for row in top],
            [row["watch_minutes"] for row in top],
        ),
        "completion": hbar_chart(
            "Completion rate per video",
            [row["video_id"] for row in completion],
            [row["completion_rate"] for row in completion],
            fmt=_percent,
            top=1.0,
            color="#9333ea",
        ),
        "startup": line_chart(
            "Startup time per day (ms)",
            labels,
            [
                Series("p50", _by_day(days, qoe, "startup_p50_ms", None)),
                Series("p95", _by_day(days, qoe, "startup_p95_ms", None)),
            ],
            description="From the play request to the first frame: median and 95th percentile.",
        ),
        "rebuffering": bar_chart(
            "Rebuffering ratio per day",
            labels,
            _by_day(days, qoe, "rebuffering_ratio", 0.0),
            description="Time stalled out of time watched plus stalled.",
            fmt=_percent,
            color="#ea580c",
        ),
        "renditions": share_bar(
            "Rendition mix (share of watch minutes)",
            [row["rendition"] for row in mix],
            [row["share"] for row in mix],
        ),
    }


@blueprint.get("/analytics")
@admin_required
def page() -> str:
    """The dashboard for ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (default: the last 7 days).

    :raises BadRequestError: a malformed or reversed range, or over a year (a 400 page).
    :raises DependencyUnavailableError: the events cannot be queried (a 503 page).
    """
    first_default, last_default = _default_range(datetime.now(UTC))
    first = request.args.get("from") or first_default
    last = request.args.get("to") or last_default
    days = DateRange.parse(first, last)
    services = current_services()
    data = services.analytics.dashboard(days)
    summary = data["summary"].rows[0] if data["summary"].rows else {}
    conversion = data["conversion"].rows[0] if data["conversion"].rows else {}
    conversion_chart = hbar_chart(
        "Free to premium",
        ["Saw the upsell page", "Then played premium"],
        [conversion.get("upsell_viewers", 0), conversion.get("converted", 0)],
        color="#db2777",
    )
    return render_template(
        "admin/analytics.html",
        first=days.first.isoformat(),
        last=days.last.isoformat(),
        engine=services.analytics.engine.name,
        summary=summary,
        conversion=conversion,
        conversion_chart=conversion_chart,
        charts=_charts(days, data),
        data={name: result.rows for name, result in data.items()},
        pipeline=services.viewing_events.stats(),
        percent=_percent,
    )

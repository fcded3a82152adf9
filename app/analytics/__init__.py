"""Viewing analytics: the dashboard's and the reports' queries over the events in S3.

One set of SQL files (``queries/*.sql``) runs unchanged on two engines: DuckDB
over the objects of the date range (the local stack, tests, the bench) and
Amazon Athena over the Glue table (AWS). Each query takes the date range as
four positional parameters (see :func:`parameters`), so the partition column
``dt`` is filtered with literals and only the range's partitions are read.
How the layout, the engines and the cache fit: docs/analytics.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import BadRequestError, ConfigurationError
from app.ttl_cache import TtlCache

if TYPE_CHECKING:
    import boto3

    from app.config import Settings

EVENTS_PREFIX = "analytics/events/"
FIREHOSE_PREFIX = EVENTS_PREFIX + "dt=!{timestamp:yyyy-MM-dd}/"
"""The delivery stream's S3 prefix: one ``dt=`` partition per UTC day of arrival."""
FIREHOSE_ERROR_PREFIX = "analytics/errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
REPORTS_PREFIX = "reports/"
QUERY_NAMES = ("summary", "daily", "top_videos", "completion", "conversion", "qoe", "renditions")
MAX_RANGE_DAYS = 366
ATHENA_CACHE_SECONDS = 300.0
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class DateRange:
    """Days ``first`` to ``last``, both included (UTC)."""

    first: date
    last: date

    @classmethod
    def parse(cls, first: object, last: object) -> DateRange:
        """:raises BadRequestError: not YYYY-MM-DD, ``first`` after ``last``, or over a year."""
        days = []
        for name, value in (("from", first), ("to", last)):
            if not isinstance(value, str) or not _DAY.match(value):
                raise BadRequestError(f"{name} must be a date YYYY-MM-DD")
            try:
                days.append(date.fromisoformat(value))
            except ValueError:
                raise BadRequestError(f"{name} is not a calendar date: {value[:10]}") from None
        if days[0] > days[1]:
            raise BadRequestError("from must not be after to")
        if (days[1] - days[0]).days + 1 > MAX_RANGE_DAYS:
            raise BadRequestError(f"a range covers at most {MAX_RANGE_DAYS} days")
        return cls(days[0], days[1])

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def partitions(self) -> list[str]:
        """The ``dt`` partitions to read: the range plus the next day, because an event's
        partition is the day Firehose received it, a little after it was emitted."""
        return [d.isoformat() for d in [*self.days(), self.last + timedelta(days=1)]]


def parameters(days: DateRange) -> list[str]:
    """The four positional parameters every query takes, in order:
    partition from, partition to (one day after the range), event day from, event day to."""
    partitions = days.partitions()
    return [partitions[0], partitions[-1], days.first.isoformat(), days.last.isoformat()]


def sql_text(name: str) -> str:
    """The SQL of one query, exactly as both engines run it."""
    if name not in QUERY_NAMES:
        raise KeyError(name)
    return (resources.files("app.analytics") / "queries" / f"{name}.sql").read_text("utf-8")


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query: column names in order, and one dict per row."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


class Engine(Protocol):
    """Runs one SQL text with positional parameters over ``viewing_events``."""

    name: str

    def run(self, sql: str, params: list[str], days: DateRange) -> QueryResult: ...


class AnalyticsQueries:
    """The named queries over one engine, with a short result cache where queries cost money.

    :param engine: :class:`~app.analytics.duck.DuckDbEngine` or
        :class:`~app.analytics.athena.AthenaEngine`.
    :param cache_seconds: how old a cached answer may be (0: always run).
    """

    def __init__(self, engine: Engine, *, cache_seconds: float = 0.0) -> None:
        self.engine = engine
        self._cache: TtlCache[tuple[str, str, str], QueryResult] = TtlCache(cache_seconds)
        self._dashboards: TtlCache[tuple[str, str, str], dict[str, QueryResult]] = TtlCache(
            cache_seconds
        )

    @classmethod
    def from_settings(cls, settings: Settings, session: boto3.Session) -> AnalyticsQueries:
        """Athena when a Glue database and workgroup are configured, DuckDB otherwise."""
        if settings.analytics_database:
            from app.analytics.athena import ATHENA_CLIENT_CONFIG, AthenaEngine

            athena = session.client("athena", config=ATHENA_CLIENT_CONFIG)
            engine: Engine = AthenaEngine(
                athena, settings.analytics_database, settings.analytics_workgroup
            )
            return cls(engine, cache_seconds=ATHENA_CACHE_SECONDS)
        if not settings.bucket:
            raise ConfigurationError("analytics needs VIDGATE_ANALYTICS_DATABASE or VIDGATE_BUCKET")
        from app.analytics.duck import DuckDbEngine, S3EventFiles

        files = S3EventFiles(session.client("s3"), settings.bucket)
        return cls(DuckDbEngine(files))

    def run(self, name: str, days: DateRange) -> QueryResult:
        key = (name, days.first.isoformat(), days.last.isoformat())
        return self._cache.get_or_load(
            key, lambda: self.engine.run(sql_text(name), parameters(days), days)
        )

    def dashboard(self, days: DateRange) -> dict[str, QueryResult]:
        """Every query of the dashboard for one range (one read of the events where the
        engine can share it between queries, as DuckDB can)."""
        run_many = getattr(self.engine, "run_many", None)
        if run_many is None:
            return {name: self.run(name, days) for name in QUERY_NAMES}
        key = ("*dashboard*", days.first.isoformat(), days.last.isoformat())
        results: dict[str, QueryResult] = self._dashboards.get_or_load(
            key, lambda: run_many({n: sql_text(n) for n in QUERY_NAMES}, parameters(days), days)
        )
        return results

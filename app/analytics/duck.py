"""DuckDB over the viewing events of a date range (the local stack, tests, the bench).

DuckDB's ``httpfs`` extension cannot be installed here (no network, and the
wheel that carries it pins an older DuckDB), so the partitions of the range
are listed with boto3, their objects fetched once into a local cache, and the
files handed to ``read_json`` with the schema of docs/viewing-events.md. Only
the range's ``dt=`` prefixes are listed: that is the partition pruning. DuckDB
is imported on first use; Lambda code never reaches this module.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.analytics import EVENTS_PREFIX, DateRange, QueryResult
from app.errors import DependencyUnavailableError
from app.viewing_events import FIELDS

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger("vidgate.analytics")

DUCK_TYPES = {"integer": "BIGINT", "number": "DOUBLE", "string": "VARCHAR"}


@dataclass
class Scan:
    """What the last query read: how the partition pruning shows."""

    partitions: int = 0
    files: int = 0
    bytes: int = 0


class EventFiles(Protocol):
    """Local files holding the events of some ``dt`` partitions."""

    def files_for(self, partitions: Iterable[str]) -> list[Path]: ...


class DirectoryEventFiles:
    """Events already on disk under ``<root>/dt=YYYY-MM-DD/…`` (the bench)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files_for(self, partitions: Iterable[str]) -> list[Path]:
        found: list[Path] = []
        for day in partitions:
            folder = self.root / f"dt={day}"
            if folder.is_dir():
                found.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
        return found


class S3EventFiles:
    """The range's objects under ``analytics/events/dt=…/``, fetched once into a cache folder.

    Firehose writes each object once and never changes it, so a key already
    fetched (same size) is read from the cache.
    """

    def __init__(self, s3: Any, bucket: str, *, cache_dir: Path | None = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self._tmp = None if cache_dir else tempfile.TemporaryDirectory(prefix="vidgate-events-")
        self.cache_dir = cache_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self._lock = threading.Lock()

    def files_for(self, partitions: Iterable[str]) -> list[Path]:
        found: list[Path] = []
        try:
            for day in partitions:
                prefix = f"{EVENTS_PREFIX}dt={day}/"
                pages = self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix
                )
                for page in pages:
                    for item in page.get("Contents", []):
                        found.append(self._fetched(item["Key"], int(item["Size"])))
        except Exception as exc:
            raise DependencyUnavailableError(f"analytics events unreadable: {exc}") from exc
        return found

    def _fetched(self, key: str, size: int) -> Path:
        # dt=…/ is kept in the local path: read_json's hive partitioning reads dt from it.
        path = self.cache_dir / key[len(EVENTS_PREFIX) :]
        with self._lock:
            if path.is_file() and path.stat().st_size == size:
                return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        self.s3.download_file(self.bucket, key, str(partial))
        partial.replace(path)
        return path


def _columns_sql() -> str:
    pairs = ", ".join(f"'{name}': '{DUCK_TYPES[kind]}'" for name, kind in FIELDS.items())
    return "{" + pairs + "}"


def _empty_view_sql() -> str:
    columns = [f"CAST(NULL AS {DUCK_TYPES[kind]}) AS {name}" for name, kind in FIELDS.items()]
    return "SELECT " + ", ".join([*columns, "CAST(NULL AS VARCHAR) AS dt"]) + " WHERE false"


class DuckDbEngine:
    """Runs the shared SQL in an in-memory DuckDB over the range's event files.

    :param memory_limit: DuckDB's own cap (it spills to disk past it).
    """

    name = "duckdb"

    def __init__(self, files: EventFiles, *, memory_limit: str = "1GB", threads: int = 2) -> None:
        self.files = files
        self.memory_limit = memory_limit
        self.threads = threads
        self.last_scan = Scan()

    def run(self, sql: str, params: list[str], days: DateRange) -> QueryResult:
        return self.run_many({"query": sql}, params, days)["query"]

    def run_many(
        self, sqls: dict[str, str], params: list[str], days: DateRange
    ) -> dict[str, QueryResult]:
        """Several queries over one read of the range's files (the dashboard's case)."""
        import duckdb

        partitions = days.partitions()
        paths = self.files.files_for(partitions)
        self.last_scan = Scan(
            partitions=len(partitions),
            files=len(paths),
            bytes=sum(p.stat().st_size for p in paths),
        )
        connection = duckdb.connect(
            config={"memory_limit": self.memory_limit, "threads": self.threads}
        )
        try:
            if paths:
                # A statement with a file list takes no parameters: the paths are our own,
                # quoted as SQL strings.
                listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
                source = (
                    f"SELECT * FROM read_json([{listing}], format = 'newline_delimited', "  # noqa: S608
                    f"columns = {_columns_sql()}, hive_partitioning = true, "
                    "hive_types = {'dt': 'VARCHAR'})"
                )
            else:
                source = _empty_view_sql()
            # One query reads the files through a view; several share one parsed copy.
            kind = "VIEW" if len(sqls) == 1 else "TEMP TABLE"
            connection.execute(f"CREATE {kind} viewing_events AS {source}")
            results = {}
            for name, sql in sqls.items():
                cursor = connection.execute(sql, params)
                columns = [d[0] for d in cursor.description or []]
                rows = [
                    dict(zip(columns, map(_plain, row), strict=True)) for row in cursor.fetchall()
                ]
                results[name] = QueryResult(columns, rows)
        finally:
            connection.close()
        return results


def _plain(value: object) -> object:
    """Decimals (DuckDB's ``round``) as floats, like Athena's doubles."""
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value

"""Amazon Athena: the shared SQL run in a workgroup over the Glue table of viewing events.

``StartQueryExecution`` (database, workgroup, the date range as execution
parameters) → ``GetQueryExecution`` until it finishes → ``GetQueryResults``
page by page, typed by the result's column metadata. The workgroup holds the
result location in S3 and its limits (template). A query that fails, or
runs past the deadline (then it is stopped), is a 503 for the caller. The
dashboard's queries run at the same time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config

from app.analytics import DateRange, QueryResult
from app.errors import DependencyUnavailableError

log = logging.getLogger("vidgate.analytics")

ATHENA_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
)
DEFAULT_DEADLINE_SECONDS = 12.0
"""Under the admin pages' Lambda timeout (15 s), so a slow Athena is a 503 page, not a timeout."""
_INTEGERS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"double", "float", "real", "decimal"}


class AthenaQueryError(DependencyUnavailableError):
    """Athena could not run a query (failed, cancelled, timed out, unreachable)."""


class AthenaEngine:
    """One Athena workgroup and database.

    :param deadline_seconds: how long a query may run before it is stopped.
    """

    name = "athena"

    def __init__(
        self,
        client: Any,
        database: str,
        workgroup: str,
        *,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        poll_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.database = database
        self.workgroup = workgroup
        self.deadline_seconds = deadline_seconds
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._clock = clock

    def run(self, sql: str, params: list[str], days: DateRange) -> QueryResult:
        return self.run_many({"query": sql}, params, days)["query"]

    def run_many(
        self, sqls: dict[str, str], params: list[str], days: DateRange
    ) -> dict[str, QueryResult]:
        """Start every query, then wait for all: the page waits for the slowest, not the sum."""
        try:
            ids = {
                name: self.client.start_query_execution(
                    QueryString=sql,
                    QueryExecutionContext={"Database": self.database},
                    WorkGroup=self.workgroup,
                    # Athena substitutes each value as SQL text: a string needs its quotes.
                    ExecutionParameters=[_literal(p) for p in params],
                )["QueryExecutionId"]
                for name, sql in sqls.items()
            }
            self._wait(list(ids.values()))
            return {name: self._results(query_id) for name, query_id in ids.items()}
        except AthenaQueryError:
            raise
        except Exception as exc:
            raise AthenaQueryError(f"athena unavailable: {type(exc).__name__}") from exc

    def _wait(self, query_ids: list[str]) -> None:
        deadline = self._clock() + self.deadline_seconds
        pending = list(query_ids)
        while True:
            for query_id in list(pending):
                status = self.client.get_query_execution(QueryExecutionId=query_id)
                state = status["QueryExecution"]["Status"]["State"]
                if state == "SUCCEEDED":
                    pending.remove(query_id)
                elif state in ("FAILED", "CANCELLED"):
                    reason = status["QueryExecution"]["Status"].get("StateChangeReason", "")
                    log.warning("athena query %s %s: %s", query_id, state, reason)
                    self._stop(pending, but=query_id)
                    raise AthenaQueryError(f"athena query {state.lower()}")
            if not pending:
                return
            if self._clock() >= deadline:
                self._stop(pending)
                raise AthenaQueryError("athena query timed out")
            self._sleep(self.poll_seconds)

    def _stop(self, query_ids: list[str], *, but: str | None = None) -> None:
        """Stop queries nobody will read (they cost by the byte scanned)."""
        for query_id in query_ids:
            if query_id != but:
                self.client.stop_query_execution(QueryExecutionId=query_id)

    def _results(self, query_id: str) -> QueryResult:
        columns: list[str] = []
        types: list[str] = []
        rows: list[dict[str, Any]] = []
        token: str | None = None
        first_page = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.get_query_results(**kwargs)
            result = page["ResultSet"]
            if first_page:
                info = result["ResultSetMetadata"]["ColumnInfo"]
                columns = [c["Name"] for c in info]
                types = [c["Type"].lower() for c in info]
            data = result.get("Rows", [])
            if first_page and data:
                data = data[1:]  # a SELECT's first row repeats the column names
            first_page = False
            for row in data:
                cells = [cell.get("VarCharValue") for cell in row["Data"]]
                rows.append(
                    {n: _typed(v, t) for n, v, t in zip(columns, cells, types, strict=True)}
                )
            token = page.get("NextToken")
            if not token:
                return QueryResult(columns, rows)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _typed(value: str | None, kind: str) -> object:
    if value is None:
        return None
    if kind in _INTEGERS:
        return int(value)
    if kind in _FLOATS:
        return float(value)
    return value

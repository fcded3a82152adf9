"""The Athena engine: requests checked against botocore's Athena model (Stubber), typed rows."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from app.analytics import AnalyticsQueries, DateRange, parameters, sql_text
from app.analytics.athena import AthenaEngine, AthenaQueryError

RANGE = DateRange.parse("2026-09-22", "2026-09-23")


def _client():
    return boto3.client(
        "athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _start(stub, query_id="q-1", name="daily"):
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": query_id},
        {
            "QueryString": sql_text(name),
            "QueryExecutionContext": {"Database": "vidgate_analytics"},
            "WorkGroup": "vidgate",
            "ExecutionParameters": [f"'{p}'" for p in parameters(RANGE)],
        },
    )


def _state(stub, state, query_id="q-1", reason=None):
    status = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"QueryExecutionId": query_id, "Status": status}},
        {"QueryExecutionId": query_id},
    )


COLUMNS = [
    {"Name": "day", "Type": "varchar"},
    {"Name": "plays", "Type": "bigint"},
    {"Name": "watch_minutes", "Type": "double"},
]


def _row(*cells):
    return {"Data": [{"VarCharValue": c} if c is not None else {} for c in cells]}


class Sleeps:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def _engine(client, sleeps, deadline=60.0):
    return AthenaEngine(
        client,
        "vidgate_analytics",
        "vidgate",
        deadline_seconds=deadline,
        poll_seconds=0.5,
        sleep=sleeps.sleep,
        clock=sleeps.clock,
    )


def test_a_query_runs_in_the_workgroup_and_its_pages_come_back_typed() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        _start(stub)
        _state(stub, "QUEUED")
        _state(stub, "RUNNING")
        _state(stub, "SUCCEEDED")
        stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "ResultSetMetadata": {"ColumnInfo": COLUMNS},
                    "Rows": [_row("day", "plays", "watch_minutes"), _row("2026-09-22", "3", "6.0")],
                },
                "NextToken": "page-2",
            },
            {"QueryExecutionId": "q-1", "MaxResults": 1000},
        )
        stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "ResultSetMetadata": {"ColumnInfo": COLUMNS},
                    "Rows": [_row("2026-09-23", "2", None)],
                }
            },
            {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "page-2"},
        )
        result = AnalyticsQueries(_engine(client, sleeps)).run("daily", RANGE)
        stub.assert_no_pending_responses()
    assert result.columns == ["day", "plays", "watch_minutes"]
    assert result.rows == [
        {"day": "2026-09-22", "plays": 3, "watch_minutes": 6.0},
        {"day": "2026-09-23", "plays": 2, "watch_minutes": None},
    ]
    assert sleeps.slept == [0.5, 0.5]


def test_a_failed_query_is_a_dependency_error() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        _start(stub)
        _state(stub, "FAILED", reason="HIVE_BAD_DATA")
        with pytest.raises(AthenaQueryError):
            AnalyticsQueries(_engine(client, sleeps)).run("daily", RANGE)


def test_a_query_past_its_deadline_is_stopped() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        _start(stub)
        _state(stub, "RUNNING")
        _state(stub, "RUNNING")
        _state(stub, "RUNNING")
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
        with pytest.raises(AthenaQueryError, match="timed out"):
            AnalyticsQueries(_engine(client, sleeps, deadline=1.0)).run("daily", RANGE)
        stub.assert_no_pending_responses()


def test_an_unreachable_athena_is_a_dependency_error() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_query_execution", "InternalServerException", http_status_code=500
        )
        with pytest.raises(AthenaQueryError):
            AnalyticsQueries(_engine(client, sleeps)).run("daily", RANGE)


def test_answers_are_cached_for_a_few_minutes() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        _start(stub)
        _state(stub, "SUCCEEDED")
        stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "ResultSetMetadata": {"ColumnInfo": COLUMNS},
                    "Rows": [_row("day", "plays", "watch_minutes")],
                }
            },
            {"QueryExecutionId": "q-1", "MaxResults": 1000},
        )
        queries = AnalyticsQueries(_engine(client, sleeps), cache_seconds=300)
        first = queries.run("daily", RANGE)
        second = queries.run("daily", RANGE)  # no second request: the Stubber would fail it
        stub.assert_no_pending_responses()
    assert first is second and first.rows == []


def test_the_dashboard_starts_every_query_before_waiting_for_any() -> None:
    from app.analytics import QUERY_NAMES

    client, sleeps = _client(), Sleeps()
    ids = {name: f"q-{name}" for name in QUERY_NAMES}
    with Stubber(client) as stub:
        for name in QUERY_NAMES:
            _start(stub, ids[name], name)
        for name in QUERY_NAMES:  # first round: the first query still runs
            _state(stub, "RUNNING" if name == QUERY_NAMES[0] else "SUCCEEDED", ids[name])
        _state(stub, "SUCCEEDED", ids[QUERY_NAMES[0]])
        for name in QUERY_NAMES:
            stub.add_response(
                "get_query_results",
                {
                    "ResultSet": {
                        "ResultSetMetadata": {"ColumnInfo": COLUMNS[:1]},
                        "Rows": [_row("day"), _row(name)],
                    }
                },
                {"QueryExecutionId": ids[name], "MaxResults": 1000},
            )
        results = AnalyticsQueries(_engine(client, sleeps)).dashboard(RANGE)
        stub.assert_no_pending_responses()
    assert {name: r.rows for name, r in results.items()} == {
        name: [{"day": name}] for name in QUERY_NAMES
    }
    assert sleeps.slept == [0.5]


def test_one_failed_dashboard_query_stops_the_others() -> None:
    client, sleeps = _client(), Sleeps()
    with Stubber(client) as stub:
        _start(stub, "q-a", "daily")
        _start(stub, "q-b", "qoe")
        _state(stub, "FAILED", "q-a", reason="boom")
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-b"})
        engine = _engine(client, sleeps)
        with pytest.raises(AthenaQueryError):
            engine.run_many(
                {"daily": sql_text("daily"), "qoe": sql_text("qoe")}, parameters(RANGE), RANGE
            )
        stub.assert_no_pending_responses()

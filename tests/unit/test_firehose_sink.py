"""The Firehose sink: batches off the request path, one retry of failed records, drops counted."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from app.firehose_sink import (
    DROP_METRIC,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    FirehoseSink,
    batches,
    encode,
)
from app.viewing_events import RecordingSink, ViewingEvents


class FakeFirehose:
    """Records what arrives; can fail whole calls or chosen records."""

    def __init__(self) -> None:
        self.delivered: list[bytes] = []
        self.calls: list[int] = []
        self.down = False
        self.fail_first_n_records_once = 0
        self.gate: threading.Event | None = None

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict]) -> dict:
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append(len(Records))
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        answers = []
        for index, record in enumerate(Records):
            if index < self.fail_first_n_records_once:
                answers.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "x"})
            else:
                self.delivered.append(record["Data"])
                answers.append({"RecordId": str(index)})
        failed = self.fail_first_n_records_once
        self.fail_first_n_records_once = 0
        return {"FailedPutCount": min(failed, len(Records)), "RequestResponses": answers}


def _sink(client, **kwargs):
    reports: list[dict] = []
    sink = FirehoseSink(
        client, "events", linger_seconds=kwargs.pop("linger", 0.01), report=reports.append, **kwargs
    )
    return sink, reports


def test_records_arrive_as_newline_delimited_json_in_order() -> None:
    client = FakeFirehose()
    sink, _ = _sink(client)
    for n in range(5):
        sink.put({"n": n, "text": "é"})
    assert sink.flush()
    assert [json.loads(line) for line in client.delivered] == [
        {"n": n, "text": "é"} for n in range(5)
    ]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in client.delivered)
    assert sink.stats() == {"sent": 5, "dropped": 0, "retried": 0, "failed_batches": 0, "queued": 0}


def test_batches_hold_at_most_500_records_and_4_mib() -> None:
    small = [b"x\n"] * 1001
    assert [len(b) for b in batches(small)] == [500, 500, 1]
    big = [b"y" * (1024 * 1024 - 1) + b"\n"] * 9
    groups = batches(big)
    assert [len(g) for g in groups] == [4, 4, 1]
    assert all(sum(map(len, g)) <= MAX_BATCH_BYTES for g in groups)


def test_a_busy_stream_is_sent_in_full_batches() -> None:
    client = FakeFirehose()
    client.gate = threading.Event()
    sink, _ = _sink(client, linger=5.0)
    for n in range(1200):
        sink.put({"n": n})
    client.gate.set()
    assert sink.flush()
    assert max(client.calls) == MAX_BATCH_RECORDS
    assert sum(client.calls) == 1200 and len(client.delivered) == 1200


def test_records_a_batch_reports_as_failed_are_retried_once() -> None:
    client = FakeFirehose()
    client.fail_first_n_records_once = 2
    sink, reports = _sink(client)
    for n in range(4):
        sink.put({"n": n})
    assert sink.flush()
    assert client.calls == [4, 2]
    assert sorted(json.loads(line)["n"] for line in client.delivered) == [0, 1, 2, 3]
    assert sink.stats()["retried"] == 2 and sink.stats()["dropped"] == 0
    assert reports == []


def test_records_failing_twice_are_dropped_and_reported() -> None:
    class AlwaysFailing(FakeFirehose):
        def put_record_batch(self, **kwargs):
            self.fail_first_n_records_once = 1
            return super().put_record_batch(**kwargs)

    client = AlwaysFailing()
    sink, reports = _sink(client)
    sink.put({"n": 1})
    sink.put({"n": 2})
    assert sink.flush()
    assert client.calls == [2, 1]
    assert sink.stats()["dropped"] == 1 and sink.stats()["sent"] == 1
    (report,) = reports
    assert report[DROP_METRIC] == 1 and report["reason"] == "failed_put_count"


def test_an_unreachable_firehose_drops_the_batch_counts_it_and_put_never_raises() -> None:
    client = FakeFirehose()
    client.down = True
    sink, reports = _sink(client)
    events = ViewingEvents(sink, b"k" * 32)
    for _ in range(3):
        assert events.emit("grant", sub="s", plan="free", video_id="v")
    assert sink.flush()
    assert events.stats()["dropped"] == 3 and events.stats()["sent"] == 0
    assert reports[0]["reason"] == "EndpointConnectionError"
    assert reports[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": DROP_METRIC, "Unit": "Count"}
    ]
    client.down = False
    events.emit("grant", sub="s", plan="free", video_id="v")
    assert sink.flush()
    assert events.stats()["sent"] == 1


def test_a_full_queue_drops_new_records_without_waiting() -> None:
    client = FakeFirehose()
    client.gate = threading.Event()  # the sender is stuck in its first call
    sink, reports = _sink(client, queue_limit=3)
    for n in range(10):
        sink.put({"n": n})
    dropped = sink.stats()["dropped"]
    client.gate.set()
    assert sink.flush()
    assert dropped >= 6
    assert sink.stats()["sent"] + sink.stats()["dropped"] == 10
    assert len(reports) == 1  # one line, not one per record


def test_an_oversized_record_is_dropped() -> None:
    sink, reports = _sink(FakeFirehose())
    sink.put({"blob": "z" * (1000 * 1024)})
    assert sink.stats()["dropped"] == 1 and reports[0]["reason"] == "too_large"


def test_close_sends_what_is_queued_then_refuses() -> None:
    client = FakeFirehose()
    sink, _ = _sink(client, linger=5.0)
    sink.put({"n": 1})
    sink.close()
    sink.put({"n": 2})
    assert len(client.delivered) == 1 and sink.stats()["dropped"] == 1


def test_the_request_matches_the_firehose_api_model() -> None:
    client = boto3.client(
        "firehose", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    lines = [encode({"n": 1}), encode({"n": 2})]
    with Stubber(client) as stub:
        stub.add_response(
            "put_record_batch",
            {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "a"}, {"RecordId": "b"}]},
            {"DeliveryStreamName": "events", "Records": [{"Data": line} for line in lines]},
        )
        sink, _ = _sink(client)
        sink.put({"n": 1})
        sink.put({"n": 2})
        assert sink.flush()
        stub.assert_no_pending_responses()
    assert sink.stats()["sent"] == 2


@pytest.mark.parametrize("count", [0, 1])
def test_flush_with_nothing_queued_returns_at_once(count) -> None:
    sink, _ = _sink(FakeFirehose())
    for n in range(count):
        sink.put({"n": n})
    assert sink.flush(timeout=2)
    assert sink.stats()["queued"] == 0


def test_the_emitter_and_a_recording_sink_need_no_thread() -> None:
    sink = RecordingSink()
    ViewingEvents(sink, b"k" * 32).emit("stop", sub="s", plan="free", video_id="v")
    assert len(sink.records) == 1


def test_records_put_after_a_send_go_out_without_a_flush() -> None:
    import time

    client = FakeFirehose()
    sink, _ = _sink(client)
    for n in range(3):
        sink.put({"n": n})
        deadline = time.monotonic() + 10
        while len(client.delivered) <= n and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [json.loads(line)["n"] for line in client.delivered] == [0, 1, 2]

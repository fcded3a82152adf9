"""The viewing-event emitter: one schema, pseudonymous ids, and it never raises."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from app.viewing_events import (
    FIELDS,
    KEY_RETRY_SECONDS,
    SCHEMA_VERSION,
    EventType,
    InvalidEventError,
    RecordingSink,
    ViewingEvents,
    build_record,
    iso_ts,
)

KEY = b"k" * 32
SUB = "8f0e4a52-1111-2222-3333-444455556666"


class Clock:
    def __init__(self, now: float = 1_790_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _events(key: bytes | object = KEY, clock: Clock | None = None, mono: Clock | None = None):
    sink = RecordingSink()
    events = ViewingEvents(
        sink,
        key,  # type: ignore[arg-type]
        clock=clock or Clock(),
        monotonic=mono or Clock(0.0),
    )
    return events, sink


def test_a_grant_becomes_one_record_with_every_field_and_a_pseudonymous_user() -> None:
    events, sink = _events()
    assert events.emit(
        "grant",
        sub=SUB,
        plan="premium",
        video_id="v1",
        video_tier="premium",
        session_id="s1",
        format="hls",
    )
    (record,) = sink.records
    assert list(record) == list(FIELDS)
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["type"] == "grant"
    assert record["user_pid"] == hmac.new(KEY, SUB.encode(), hashlib.sha256).hexdigest()
    assert SUB not in json.dumps(record)
    assert record["ts"] == "2026-09-21T14:13:20.250Z"
    assert record["format"] == "hls" and record["startup_ms"] is None
    assert len(record["event_id"]) == 32


def test_the_same_sub_gets_the_same_id_and_another_key_another_id() -> None:
    one, sink_one = _events()
    other, sink_other = _events(key=b"x" * 32)
    for events in (one, one, other):
        events.emit("upsell_view", sub=SUB, plan="free")
    assert sink_one.records[0]["user_pid"] == sink_one.records[1]["user_pid"]
    assert sink_one.records[0]["user_pid"] != sink_other.records[0]["user_pid"]
    assert sink_one.records[0]["event_id"] != sink_one.records[1]["event_id"]


def test_measures_are_typed_and_rounded() -> None:
    events, sink = _events()
    events.emit(
        "heartbeat",
        sub=SUB,
        plan="free",
        video_id="v",
        session_id="s",
        position_s=12.34567,
        watched_s=10,
        stall_ms=250.4,
        rendition="720p",
        bitrate=2_500_000,
    )
    record = sink.records[0]
    assert record["position_s"] == 12.346 and isinstance(record["watched_s"], float)
    assert record["stall_ms"] == 250 and isinstance(record["stall_ms"], int)


@pytest.mark.parametrize(
    ("event_type", "kwargs"),
    [
        ("play", {}),
        ("grant", {"plan": "gold"}),
        ("grant", {"video_tier": "vip"}),
        ("grant", {"format": "dash"}),
        ("grant", {"email": "a@example.com"}),
        ("grant", {"ip": "10.0.0.1"}),
        ("heartbeat", {"position_s": -1}),
        ("heartbeat", {"position_s": float("nan")}),
        ("heartbeat", {"startup_ms": True}),
        ("heartbeat", {"startup_ms": "12"}),
        ("heartbeat", {"stall_ms": 24 * 3600 * 1000 + 1}),
        ("refusal", {"reason": "x" * 65}),
        ("refusal", {"reason": "bad\nline"}),
        ("start", {"video_id": None}),
    ],
)
def test_an_event_outside_the_schema_is_counted_not_raised(event_type, kwargs) -> None:
    events, sink = _events()
    arguments = {"plan": "free", "video_id": "v", **kwargs}
    assert events.emit(event_type, sub=SUB, **arguments) is False
    assert sink.records == []
    assert events.stats()["invalid"] == 1


def test_build_record_names_the_bad_field() -> None:
    with pytest.raises(InvalidEventError, match="bitrate"):
        build_record(
            "heartbeat", user_pid="p", plan="free", ts="t", event_id="e", video_id="v", bitrate=-5
        )


def test_upper_bounds_are_inclusive() -> None:
    events, _sink = _events()
    assert events.emit("start", sub=SUB, plan="free", video_id="v", startup_ms=600_000)
    assert not events.emit("start", sub=SUB, plan="free", video_id="v", startup_ms=600_001)


def test_an_empty_sub_is_invalid() -> None:
    events, _sink = _events()
    assert events.emit("grant", sub="", plan="free", video_id="v") is False
    assert events.stats()["invalid"] == 1


def test_a_failing_key_loader_drops_events_and_is_retried_after_a_pause() -> None:
    calls = []
    mono = Clock(100.0)

    def loader() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("secrets manager down")
        return KEY

    events, _sink = _events(key=loader, mono=mono)
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is False
    mono.now += KEY_RETRY_SECONDS - 1
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is False
    assert len(calls) == 1
    mono.now += 1
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is True
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is True
    assert len(calls) == 2
    assert events.stats() == {"emitted": 2, "invalid": 0, "no_key": 2}


def test_a_short_key_is_refused() -> None:
    events, _sink = _events(key=lambda: b"short")
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is False
    assert events.stats()["no_key"] == 1


def test_a_raising_sink_never_reaches_the_caller() -> None:
    class Broken:
        def put(self, record):
            raise OSError("disk full")

    events = ViewingEvents(Broken(), KEY)
    assert events.emit("grant", sub=SUB, plan="free", video_id="v") is False


def test_sink_counters_join_the_emitter_counters() -> None:
    class Counting(RecordingSink):
        def stats(self):
            return {"sent": len(self.records), "dropped": 0}

    events = ViewingEvents(Counting(), KEY)
    events.emit("stop", sub=SUB, plan="free", video_id="v", reason="ended")
    assert events.stats() == {"emitted": 1, "invalid": 0, "no_key": 0, "sent": 1, "dropped": 0}


def test_every_event_type_is_accepted() -> None:
    events, sink = _events()
    for kind in EventType:
        assert events.emit(kind, sub=SUB, plan="free", video_id="v")
    assert [r["type"] for r in sink.records] == [k.value for k in EventType]


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert iso_ts(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ts(86399.9999) == "1970-01-01T23:59:59.999Z"

"""Playback sessions without DynamoDB: device labels, the grant body's stream part, items."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.entitlements import active_condition
from app.errors import BadRequestError
from app.http.viewer import parse_grant_body, parse_stream_body
from app.streams import (
    HISTORY_MAX,
    Stream,
    WatchEntry,
    _history_overflow,
    check_session_id,
    device_label,
    new_session_id,
    state_from_item,
)

SESSION = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on macOS",
        ),
        ("python-requests/2.32.3", "python-requests"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_a_user_agent_becomes_a_short_device_label(agent: str | None, label: str) -> None:
    assert device_label(agent) == label


def test_session_ids_are_32_hex_digits_and_anything_else_is_a_bad_request() -> None:
    assert check_session_id(new_session_id()) != check_session_id(new_session_id())
    for bad in ("", "0" * 31, "0" * 33, "G" * 32, SESSION.upper(), 12, None):
        with pytest.raises(BadRequestError):
            check_session_id(bad)


def test_a_renewal_body_carries_the_heartbeat_and_a_new_stream_none() -> None:
    body = {
        "session_id": SESSION,
        "position": 12.5,
        "rendition": "720p",
        "bitrate": 2_500_000,
        "stall_ms": 300,
        "startup_ms": 640,
        "format": "hls",
    }
    assert parse_grant_body(body) == "hls"
    stream = parse_stream_body(body, "python-requests/2")
    assert stream.session_id == SESSION and stream.device == "python-requests"
    beat = stream.beat
    assert (beat.position, beat.rendition, beat.bitrate, beat.stall_ms, beat.startup_ms) == (
        12.5,
        "720p",
        2_500_000,
        300.0,
        640.0,
    )
    fresh = parse_stream_body({}, None)
    assert fresh.session_id is None and fresh.beat.position == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"session_id": "nope"},
        {"session_id": SESSION, "position": -1},
        {"session_id": SESSION, "position": True},
        {"session_id": SESSION, "position": "3"},
        {"session_id": SESSION, "bitrate": 2e9},
        {"session_id": SESSION, "rendition": ""},
        {"session_id": SESSION, "rendition": "x" * 33},
        {"session_id": SESSION, "stall_ms": 3600 * 1000 + 1},
        {"stall_ms": 10},
        {"startup_ms": 10},
    ],
)
def test_a_malformed_heartbeat_is_a_bad_request(body: dict[str, object]) -> None:
    with pytest.raises(BadRequestError):
        parse_stream_body(body, None)


def test_an_unknown_field_is_still_refused() -> None:
    with pytest.raises(BadRequestError):
        parse_grant_body({"session": SESSION})


def test_an_item_without_slots_is_a_viewer_with_no_streams_and_no_item_no_record() -> None:
    assert not state_from_item("u1", None).exists
    state = state_from_item("u1", {"user_id": {"S": "u1"}, "premium": {"BOOL": True}})
    assert state.exists and state.streams == () and state.version == 0
    assert state.entitlement.premium


def test_slots_are_live_until_their_expiry_and_history_is_newest_first() -> None:
    item = {
        "user_id": {"S": "u1"},
        "streams_v": {"N": "4"},
        "streams": {
            "M": {
                "a" * 32: {"M": {"v": {"S": "v1"}, "s": {"N": "100"}, "e": {"N": "200"}}},
                "b" * 32: {"M": {"v": {"S": "v2"}, "s": {"N": "50"}, "e": {"N": "300"}}},
            }
        },
        "watch": {
            "M": {
                "v1": {"M": {"p": {"N": "5.0"}, "a": {"N": "10"}, "d": {"N": "10.0"}}},
                "v2": {"M": {"p": {"N": "1.0"}, "a": {"N": "20"}}},
            }
        },
    }
    state = state_from_item("u1", item)
    at = datetime.fromtimestamp(199, UTC)
    assert [s.session_id for s in state.live(at)] == ["b" * 32, "a" * 32]  # oldest first
    at = datetime.fromtimestamp(200, UTC)  # the expiry itself is already over
    assert [s.session_id for s in state.live(at)] == ["b" * 32]
    assert [s.session_id for s in state.dead(at)] == ["a" * 32]
    assert [e.video_id for e in state.history] == ["v2", "v1"]
    entry = state.position_of("v1")
    assert entry is not None and entry.progress == 0.5


def test_the_history_drops_the_oldest_entries_past_its_cap() -> None:
    history = tuple(
        WatchEntry(f"v{i}", "", 1.0, datetime.fromtimestamp(1000 - i, UTC))
        for i in range(HISTORY_MAX)
    )
    assert [e.video_id for e in _history_overflow(history, "new")] == [f"v{HISTORY_MAX - 1}"]
    assert _history_overflow(history, "v3") == []  # an update of an entry adds none


def _slot_at(position: float, stamp: int) -> Stream:
    at = datetime.fromtimestamp(stamp, UTC)
    return Stream(SESSION, "v", "V", "d", at, at, at, position)


def test_seconds_watched_are_the_position_gained_capped_by_the_wall_time() -> None:
    slot = _slot_at(10.0, 1_000)
    assert slot.watched_until(40.0, 1_030) == 30.0  # played straight through
    assert slot.watched_until(25.5, 1_030) == 15.5  # paused part of the time
    assert slot.watched_until(300.0, 1_030) == 30.0  # a seek forward is not watching
    assert slot.watched_until(30.0, 1_020) == 20.0  # one second inside the cap
    assert slot.watched_until(31.0, 1_020) == 20.0  # one second over it
    assert slot.watched_until(5.0, 1_030) == 0.0  # a seek back watched nothing new


def test_the_entitlement_condition_names_premium_stripe_and_only_an_owned_purchase() -> None:
    condition = active_condition("vid-1", datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC))
    assert condition.values[":cnow"] == {"S": "2026-03-01T12:00:00Z"}
    assert condition.names["#cvid"] == "vid-1"
    assert condition.values[":cown"] == {"S": "own"}  # rentals take the read path
    assert set(condition.names.values()) >= {"premium", "premium_until", "stripe_until", "paid"}

"""Playback sessions and concurrent-stream limits, on both DynamoDB engines.

Grants go through :class:`app.playback.Playback` with the real catalog,
entitlement and stream stores over the engine, and a real ECDSA signer: the
limit must hold when twenty fresh grants for one user race (exactly the
plan's limit open, every other one a ``too_many_streams`` listing the live
streams), and nothing may be left open once they all stop.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth import Principal
from app.catalog import Video, VideoCatalog
from app.dynamo import format_time
from app.entitlements import EntitlementStore
from app.errors import BadRequestError, PremiumRequiredError
from app.playback import Grant, Playback, StreamRequest
from app.signing import UrlSigner
from app.streams import (
    Heartbeat,
    SessionEndedError,
    SessionNotFoundError,
    StreamStore,
    TooManyStreamsError,
    device_label,
)
from app.users import UserDirectory
from app.viewing_events import RecordingSink, ViewingEvents
from tests.integration.conftest import DdbTarget

THREADS = 20
TIMEOUT = 60.0
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEARTBEAT = 30
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


class Clock:
    """An aware UTC clock the test moves by hand (thread-safe reads)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    target: DdbTarget
    clock: Clock
    streams: StreamStore
    playback: Playback
    entitlements: EntitlementStore
    sink: RecordingSink


def _video(video_id: str, tier: str) -> Video:
    return Video(
        video_id=video_id,
        title=f"Video {video_id}",
        description="",
        tier=tier,  # type: ignore[arg-type]
        object_key=f"videos/{video_id}/main.mp4",
        content_type="video/mp4",
        duration_seconds=60.0,
        poster_key=None,
        size_bytes=1000,
        created_at=START,
        published=True,
    )


def _world(
    target: DdbTarget, *, premium: int = 2, free: int = 1, cache_seconds: float = 0
) -> World:
    clock = Clock()
    client = target.client
    users, audit = target.tables["users"], target.tables["audit"]
    directory = UserDirectory(client, users, clock=clock)
    for name in ("bob", "carol"):
        directory.create_on_signup(f"sub-{name}", name, f"{name}@example.com")
    entitlements = EntitlementStore(client, users, audit, clock=clock)
    entitlements.set_premium("sub-carol", True, None, actor="test")
    # A frozen cache clock: with a cache, a renewal always finds the video read at its opening.
    catalog = VideoCatalog(
        client, target.tables["videos"], clock=lambda: 0.0, cache_seconds=cache_seconds
    )
    catalog.put(_video("free1", "free"))
    catalog.put(_video("prem1", "premium"))
    streams = StreamStore(
        client,
        users,
        audit,
        limits={"premium": premium, "free": free},
        heartbeat_seconds=HEARTBEAT,
        clock=clock,
    )
    signer = UrlSigner(
        "KTESTKEY", ec.generate_private_key(ec.SECP256R1()), base_url="https://cdn.example"
    )
    sink = RecordingSink()
    playback = Playback(
        entitlements,
        catalog,
        signer,
        ttl_seconds=300,
        clock=clock,
        streams=streams,
        events=ViewingEvents(sink, b"k" * 32),
    )
    return World(target, clock, streams, playback, entitlements, sink)


def _principal(name: str) -> Principal:
    return Principal(
        user_id=f"sub-{name}",
        username=name,
        email=None,
        groups=(),
        token_use="access",
        expires_at=0,
    )


def _grant(world: World, name: str, video_id: str, **stream: Any) -> Grant:
    request = StreamRequest(device=device_label(CHROME_LINUX), **stream)
    return world.playback.authorize(_principal(name), video_id, stream=request)


@dataclass
class Race:
    grants: list[Grant] = field(default_factory=list)
    refusals: list[TooManyStreamsError] = field(default_factory=list)
    other: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _race(world: World, name: str, video_id: str) -> Race:
    race = Race()
    start = threading.Barrier(THREADS, timeout=TIMEOUT)

    def fresh_grant() -> None:
        start.wait()
        try:
            grant = _grant(world, name, video_id)
        except TooManyStreamsError as exc:
            with race.lock:
                race.refusals.append(exc)
        except BaseException as exc:
            with race.lock:
                race.other.append(exc)
        else:
            with race.lock:
                race.grants.append(grant)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(fresh_grant) for _ in range(THREADS)]:
            future.result(timeout=TIMEOUT)
    return race


@pytest.mark.parametrize(
    ("name", "video_id", "limit"), [("carol", "prem1", 2), ("bob", "free1", 1)]
)
def test_twenty_parallel_fresh_grants_open_exactly_the_plan_limit_and_none_leaks(
    ddb_target: DdbTarget, name: str, video_id: str, limit: int
) -> None:
    world = _world(ddb_target)
    race = _race(world, name, video_id)
    assert race.other == []
    assert len(race.grants) == limit
    assert len(race.refusals) == THREADS - limit
    opened = {grant.session_id for grant in race.grants}
    assert None not in opened and len(opened) == limit
    live = world.streams.active(f"sub-{name}")
    assert {stream.session_id for stream in live} == opened
    for refusal in race.refusals:
        # Each refusal lists live streams, never more than the limit, all among the winners.
        listed = {stream.session_id for stream in refusal.active}
        assert len(refusal.active) == limit and listed == opened
        assert all(stream.device == "Chrome on Linux" for stream in refusal.active)
    for grant in race.grants:
        assert grant.session_id is not None
        world.streams.end(f"sub-{name}", grant.session_id, position=3.0)
    assert world.streams.active(f"sub-{name}") == ()
    item = ddb_target.client.get_item(
        TableName=ddb_target.tables["users"], Key={"user_id": {"S": f"sub-{name}"}}
    )["Item"]
    assert item["streams"]["M"] == {}
    # After they all stopped, the plan's streams are free again.
    assert _grant(world, name, video_id).session_id is not None


def test_a_premium_viewer_gets_the_premium_limit_on_a_free_video(ddb_target: DdbTarget) -> None:
    world = _world(ddb_target)
    _grant(world, "carol", "free1")
    _grant(world, "carol", "free1")
    with pytest.raises(TooManyStreamsError) as refused:
        _grant(world, "carol", "prem1")
    assert refused.value.limit == 2
    assert [s.video_id for s in refused.value.active] == ["free1", "free1"]


def test_renewals_are_heartbeats_that_keep_a_stream_live_and_record_the_position(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target)
    first = _grant(world, "carol", "prem1")
    assert first.heartbeat_seconds == HEARTBEAT
    for step in range(1, 6):
        world.clock.now += timedelta(seconds=HEARTBEAT)  # on time: never silent for two
        renewal = _grant(
            world,
            "carol",
            "prem1",
            session_id=first.session_id,
            beat=Heartbeat(position=step * 10.0, rendition="720p", bitrate=2_500_000),
        )
        assert renewal.session_id == first.session_id
    (live,) = world.streams.active("sub-carol")
    assert live.position == 50.0
    assert live.last_seen_at == world.clock.now
    state = world.streams.get("sub-carol", history=True)
    entry = state.position_of("prem1")
    assert entry is not None and entry.position == 50.0 and entry.title == "Video prem1"


def test_a_stream_silent_for_two_intervals_is_over_and_its_slot_is_reused(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target)
    silent = _grant(world, "bob", "free1")
    world.clock.now += timedelta(seconds=2 * HEARTBEAT - 1)
    with pytest.raises(TooManyStreamsError):
        _grant(world, "bob", "free1")  # one second before it is over: still live
    world.clock.now += timedelta(seconds=1)
    replacement = _grant(world, "bob", "free1")  # drops the dead slot in the same write
    assert [s.session_id for s in world.streams.active("sub-bob")] == [replacement.session_id]
    item = ddb_target.client.get_item(
        TableName=ddb_target.tables["users"], Key={"user_id": {"S": "sub-bob"}}
    )["Item"]
    assert set(item["streams"]["M"]) == {replacement.session_id}
    with pytest.raises(SessionEndedError):
        _grant(world, "bob", "free1", session_id=silent.session_id)


def test_an_ended_session_is_refused_on_renewal_and_cannot_be_ended_twice(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target)
    grant = _grant(world, "bob", "free1")
    assert grant.session_id is not None
    ended = world.streams.end("sub-bob", grant.session_id, position=12.0)
    assert ended.video_id == "free1"
    with pytest.raises(SessionEndedError):
        _grant(world, "bob", "free1", session_id=grant.session_id)
    with pytest.raises(SessionNotFoundError):
        world.streams.end("sub-bob", grant.session_id)
    resume = world.streams.get("sub-bob", history=True).position_of("free1")
    assert resume is not None and resume.position == 12.0
    # Another user cannot end it: the id is looked up among their own streams only.
    other = _grant(world, "bob", "free1")
    assert other.session_id is not None
    with pytest.raises(SessionNotFoundError):
        world.streams.end("sub-carol", other.session_id)


def test_an_admin_ending_a_stream_writes_its_audit_record_in_the_same_transaction(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target)
    grant = _grant(world, "carol", "prem1")
    assert grant.session_id is not None
    world.clock.now += timedelta(seconds=5)
    world.streams.end_by_admin("sub-carol", grant.session_id, actor="alice")
    assert world.streams.active("sub-carol") == ()
    records, _ = world.entitlements.list_audit("sub-carol", 10, None)
    assert records[0].action == "end_stream" and records[0].actor == "alice"
    with pytest.raises(SessionEndedError):
        _grant(world, "carol", "prem1", session_id=grant.session_id)
    with pytest.raises(SessionNotFoundError):
        world.streams.end_by_admin("sub-carol", grant.session_id, actor="alice")
    records_after, _ = world.entitlements.list_audit("sub-carol", 10, None)
    assert len(records_after) == len(records)  # a refused end writes no record


def test_grants_heartbeats_starts_and_refusals_become_viewing_events(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target)
    grant = _grant(world, "bob", "free1")
    world.clock.now += timedelta(seconds=HEARTBEAT)
    _grant(
        world,
        "bob",
        "free1",
        session_id=grant.session_id,
        beat=Heartbeat(
            position=9.5, rendition="360p", bitrate=800_000, stall_ms=120.0, startup_ms=640.0
        ),
    )
    with pytest.raises(TooManyStreamsError):
        _grant(world, "bob", "free1")
    with pytest.raises(PremiumRequiredError):
        _grant(world, "bob", "prem1")
    types = [record["type"] for record in world.sink.records]
    assert types == ["grant", "start", "heartbeat", "refusal", "refusal"]
    grant_event, start, beat, too_many, premium = world.sink.records
    assert grant_event["session_id"] == grant.session_id and grant_event["plan"] == "free"
    assert grant_event["video_tier"] == "free" and grant_event["user_pid"] != "sub-bob"
    assert start["startup_ms"] == 640
    assert (beat["position_s"], beat["rendition"], beat["bitrate"], beat["stall_ms"]) == (
        9.5,
        "360p",
        800_000,
        120,
    )
    assert too_many["reason"] == "too_many_streams"
    assert premium["reason"] == "premium_required" and premium["video_tier"] == "premium"


class Calls:
    """The DynamoDB operations a client sends while counting (botocore's before-call event)."""

    def __init__(self, target: DdbTarget) -> None:
        self.names: list[str] = []
        self._events = target.client.meta.events
        self._events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def stop(self) -> list[str]:
        self._events.unregister("before-call.dynamodb", self._record)
        return self.names


def test_a_renewal_of_a_cached_video_is_one_conditional_write_that_checks_the_entitlement(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target, cache_seconds=1.0)
    opened = _grant(world, "carol", "prem1")
    world.clock.now += timedelta(seconds=HEARTBEAT)
    calls = Calls(ddb_target)
    renewed = _grant(world, "carol", "prem1", session_id=opened.session_id, beat=Heartbeat(20.0))
    assert calls.stop() == ["UpdateItem"]
    assert renewed.session_id == opened.session_id
    (live,) = world.streams.active("sub-carol")
    assert (live.position, live.last_seen_at) == (20.0, world.clock.now)
    entry = world.streams.get("sub-carol", history=True).position_of("prem1")
    assert entry is not None and entry.position == 20.0
    # Premium revoked: the write's condition fails, the read path refuses as the rule says.
    world.entitlements.set_premium("sub-carol", False, None, actor="test")
    world.clock.now += timedelta(seconds=HEARTBEAT)
    with pytest.raises(PremiumRequiredError):
        _grant(world, "carol", "prem1", session_id=opened.session_id, beat=Heartbeat(40.0))
    assert world.streams.active("sub-carol")[0].position == 20.0  # nothing written
    # Another video than the session's: refused, not renewed.
    world.entitlements.set_premium("sub-carol", True, None, actor="test")
    with pytest.raises(BadRequestError):
        _grant(world, "carol", "free1", session_id=opened.session_id)


def test_a_stripe_subscriber_and_an_owner_open_and_renew_premium_streams(
    ddb_target: DdbTarget,
) -> None:
    world = _world(ddb_target, cache_seconds=1.0)
    until = format_time(START + timedelta(days=30))
    ddb_target.client.update_item(
        TableName=ddb_target.tables["users"],
        Key={"user_id": {"S": "sub-bob"}},
        UpdateExpression="SET stripe_until = :u",
        ExpressionAttributeValues={":u": {"S": until}},
    )
    opened = _grant(world, "bob", "prem1")
    world.clock.now += timedelta(seconds=HEARTBEAT)
    calls = Calls(ddb_target)
    _grant(world, "bob", "prem1", session_id=opened.session_id, beat=Heartbeat(5.0))
    assert calls.stop() == ["UpdateItem"]
    # The subscription over, a purchase of the video still plays it.
    ddb_target.client.update_item(
        TableName=ddb_target.tables["users"],
        Key={"user_id": {"S": "sub-bob"}},
        UpdateExpression="SET stripe_until = :u, paid = :p",
        ExpressionAttributeValues={
            ":u": {"S": format_time(START)},
            ":p": {"M": {"prem1": {"M": {"kind": {"S": "own"}, "payment": {"S": "pi_1"}}}}},
        },
    )
    world.clock.now += timedelta(seconds=HEARTBEAT)
    calls = Calls(ddb_target)
    _grant(world, "bob", "prem1", session_id=opened.session_id, beat=Heartbeat(10.0))
    assert calls.stop() == ["UpdateItem"]


@pytest.mark.parametrize("cache_seconds", [0, 1.0])  # the read path, the write-only path
def test_heartbeats_and_the_end_count_the_seconds_watched_capped_by_the_wall_time(
    ddb_target: DdbTarget, cache_seconds: float
) -> None:
    world = _world(ddb_target, cache_seconds=cache_seconds)
    opened = _grant(world, "carol", "prem1")
    assert opened.session_id is not None
    world.sink.records.clear()
    for seconds, position in ((HEARTBEAT, 25.0), (HEARTBEAT, 55.0 + 100), (10, 150.0)):
        world.clock.now += timedelta(seconds=seconds)
        _grant(
            world,
            "carol",
            "prem1",
            session_id=opened.session_id,
            beat=Heartbeat(position=position),
        )
    beats = [r["watched_s"] for r in world.sink.records if r["type"] == "heartbeat"]
    # 25 s played in 30 s; a seek forward counts only the 30 s of wall time; back: none.
    assert beats == [25.0, 30.0, 0.0]
    world.clock.now += timedelta(seconds=7)
    ended = world.streams.end("sub-carol", opened.session_id, position=157.0)
    assert ended.watched_s == 7.0

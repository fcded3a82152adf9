"""The DynamoDB data layer against real engines: the AWS emulator and DynamoDB Local.

Every test taking ``ddb_target`` runs once per engine on fresh tables, so a
behaviour that only one engine gets right shows up as a failing test id.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.config import Config

from app.catalog import MAX_CACHE_SECONDS, Video, VideoCatalog
from app.dynamo import encode_cursor
from app.entitlements import Entitlement, EntitlementStore
from app.errors import (
    AmbiguousUserError,
    BadRequestError,
    ConfigurationError,
    DependencyUnavailableError,
    EmailInUseError,
    UserNotFoundError,
    VersionConflictError,
    VideoNotFoundError,
)
from app.local.ports import free_port
from app.tables import create_tables
from app.users import UserDirectory
from tests.integration.conftest import DdbTarget, make_client

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


class SteppingClock:
    """An aware UTC clock that moves one second forward on every reading."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class ManualClock:
    """A monotonic clock the test moves by hand (for the catalog cache)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stores(target: DdbTarget) -> tuple[EntitlementStore, UserDirectory, SteppingClock]:
    clock = SteppingClock()
    store = EntitlementStore(
        target.client, target.tables["users"], target.tables["audit"], clock=clock
    )
    directory = UserDirectory(target.client, target.tables["users"], clock=clock)
    return store, directory, clock


def _video(video_id: str, minute: int, *, tier: str = "free", published: bool = True) -> Video:
    return Video(
        video_id=video_id,
        title=f"Video {video_id}",
        description=f"About {video_id}",
        tier=tier,  # type: ignore[arg-type]
        object_key=f"videos/{video_id}/main.mp4",
        content_type="video/mp4",
        duration_seconds=12.5,
        poster_key=f"posters/{video_id}.jpg",
        size_bytes=1_234_567,
        created_at=START + timedelta(minutes=minute),
        published=published,
    )


def _all_pages(fetch: Callable[[str | None], tuple[list[Any], str | None]]) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        page, cursor = fetch(cursor)
        pages.append(page)
        assert len(pages) < 50, "pagination does not end"
        if cursor is None:
            return pages


# --- entitlements ------------------------------------------------------------------


def test_a_user_without_a_record_is_not_premium_at_version_0(ddb_target: DdbTarget) -> None:
    store, _, _ = _stores(ddb_target)
    entitlement = store.get("no-such-sub")
    assert entitlement == Entitlement("no-such-sub", False, None, 0)
    assert not entitlement.is_active(START)


def test_granting_premium_until_a_date_is_active_only_before_that_date(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "Alice@Example.com")
    until = START + timedelta(days=30)

    granted = store.set_premium("sub-1", True, until, actor="admin-1")

    assert (granted.premium, granted.premium_until, granted.version) == (True, until, 1)
    read = store.get("sub-1")
    assert read == granted
    assert read.updated_by == "admin-1"
    assert read.is_active(until - timedelta(seconds=1))
    assert not read.is_active(until)


def test_revoking_clears_premium_and_its_end_date(ddb_target: DdbTarget) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    store.set_premium("sub-1", True, START + timedelta(days=3), actor="admin")

    revoked = store.set_premium("sub-1", False, None, actor="admin", expected_version=1)

    assert store.get("sub-1") == revoked
    assert (revoked.premium, revoked.premium_until, revoked.version) == (False, None, 2)
    assert directory.get("sub-1").premium_until is None


@pytest.mark.parametrize(
    ("premium", "until"),
    [
        (True, START - timedelta(days=1)),  # in the past
        (True, START),  # not after "now" (the clock reads START + 1 s)
        (True, datetime(2030, 1, 1)),  # naive: which timezone?
        (False, START + timedelta(days=1)),  # an end date on a revoke
    ],
    ids=["past", "now", "naive", "until-on-revoke"],
)
def test_an_unusable_end_date_is_refused_and_changes_nothing(
    ddb_target: DdbTarget, premium: bool, until: datetime
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    with pytest.raises(BadRequestError):
        store.set_premium("sub-1", premium, until, actor="admin")
    assert store.get("sub-1").version == 0
    assert store.list_audit("sub-1", 10, None) == ([], None)


def test_changing_premium_of_an_unknown_user_raises_user_not_found(ddb_target: DdbTarget) -> None:
    store, _, _ = _stores(ddb_target)
    with pytest.raises(UserNotFoundError):
        store.set_premium("ghost", True, None, actor="admin")
    with pytest.raises(UserNotFoundError):
        store.set_premium("ghost", True, None, actor="admin", expected_version=0)
    assert store.list_audit(None, 10, None) == ([], None)


def test_a_stale_expected_version_is_a_conflict_carrying_the_current_state(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    winner = store.set_premium("sub-1", True, None, actor="admin-a", expected_version=0)

    with pytest.raises(VersionConflictError) as caught:
        store.set_premium("sub-1", False, None, actor="admin-b", expected_version=0)

    assert caught.value.expected == 0
    assert caught.value.current == winner
    assert store.get("sub-1") == winner
    assert [r.actor for r in store.list_audit("sub-1", 10, None)[0]] == ["admin-a"]


class _RacingClient:
    """Passes calls through, but lets a rival write land just before our transaction."""

    def __init__(self, client: Any, rival: Callable[[], object]) -> None:
        self._client = client
        self._rival: Callable[[], object] | None = rival

    def transact_write_items(self, **kwargs: Any) -> Any:
        rival, self._rival = self._rival, None
        if rival is not None:
            rival()
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_rival_write_between_read_and_transaction_is_a_conflict_not_an_overwrite(
    ddb_target: DdbTarget,
) -> None:
    store, directory, clock = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    until = START + timedelta(days=9)
    rival_store = EntitlementStore(
        ddb_target.client, ddb_target.tables["users"], ddb_target.tables["audit"], clock=clock
    )
    racing = EntitlementStore(
        _RacingClient(  # type: ignore[arg-type]
            ddb_target.client,
            lambda: rival_store.set_premium("sub-1", True, until, actor="rival"),
        ),
        ddb_target.tables["users"],
        ddb_target.tables["audit"],
        clock=clock,
    )

    with pytest.raises(VersionConflictError) as caught:
        racing.set_premium("sub-1", True, None, actor="loser")

    assert caught.value.expected == 0
    assert caught.value.current.version == 1
    assert caught.value.current.premium_until == until
    assert [r.actor for r in store.list_audit("sub-1", 10, None)[0]] == ["rival"]


def test_every_change_writes_one_audit_record_listed_newest_first(ddb_target: DdbTarget) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    first_until = START + timedelta(days=10)
    second_until = START + timedelta(days=20)
    store.set_premium("sub-1", True, first_until, actor="admin-a")
    store.set_premium("sub-1", True, second_until, actor="admin-b")
    store.set_premium("sub-1", False, None, actor="admin-c")

    records, cursor = store.list_audit("sub-1", 10, None)

    assert cursor is None
    assert [(r.action, r.actor, r.version) for r in records] == [
        ("revoke", "admin-c", 3),
        ("update", "admin-b", 2),
        ("grant", "admin-a", 1),
    ]
    revoke, update, grant = records
    assert (grant.premium_before, grant.premium_after) == (False, True)
    assert (grant.until_before, grant.until_after) == (None, first_until)
    assert (update.until_before, update.until_after) == (first_until, second_until)
    assert (revoke.premium_before, revoke.premium_after) == (True, False)
    assert (revoke.until_before, revoke.until_after) == (second_until, None)
    assert grant.at < update.at < revoke.at
    assert all(r.user_id == "sub-1" for r in records)
    assert revoke.to_dict()["until_before"] == second_until.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_audit_pages_follow_the_cursor_per_user_and_overall(ddb_target: DdbTarget) -> None:
    store, directory, _ = _stores(ddb_target)
    for user in ("sub-a", "sub-b"):
        directory.create_on_signup(user, user, f"{user}@example.com")
    for _ in range(3):
        for user in ("sub-a", "sub-b"):
            current = store.get(user)
            store.set_premium(user, not current.premium, None, actor=f"admin-{user}")

    per_user = _all_pages(lambda c: store.list_audit("sub-a", 2, c))
    overall = _all_pages(lambda c: store.list_audit(None, 4, c))

    assert [len(p) for p in per_user] == [2, 1]
    assert [r.version for p in per_user for r in p] == [3, 2, 1]
    assert [len(p) for p in overall] == [4, 2]
    everything = [r for p in overall for r in p]
    assert [r.event_id for r in everything] == sorted(
        (r.event_id for r in everything), reverse=True
    )
    assert {(r.user_id, r.version) for r in everything} == {
        (u, v) for u in ("sub-a", "sub-b") for v in (1, 2, 3)
    }


# --- users -------------------------------------------------------------------------


def test_signing_up_twice_returns_the_first_record_and_keeps_premium(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    first = directory.create_on_signup("sub-1", "alice", "Alice@Example.com")
    assert (first.premium, first.version, first.email, first.updated_by) == (
        False,
        0,
        "Alice@Example.com",
        "signup",
    )
    granted = store.set_premium("sub-1", True, None, actor="admin")

    again = directory.create_on_signup("sub-1", "alice-renamed", "other@example.com")

    assert again.username == "alice"
    assert again.created_at == first.created_at
    assert again.entitlement == granted
    assert store.get("sub-1") == granted


def test_users_are_found_by_id_username_or_email_in_any_case(ddb_target: DdbTarget) -> None:
    _, directory, _ = _stores(ddb_target)
    alice = directory.create_on_signup("sub-1", "alice", "Alice@Example.com")
    directory.create_on_signup("sub-2", "bob", "bob@example.com")

    assert directory.find("sub-1") == alice
    assert directory.find("alice") == alice
    assert directory.find("ALICE@example.COM") == alice
    assert directory.find(" alice@example.com ") == alice
    assert directory.get("sub-1") == alice
    for nobody in ("carol", "carol@example.com", "", "sub-3", "x" * 500):
        with pytest.raises(UserNotFoundError):
            directory.find(nobody)
    with pytest.raises(UserNotFoundError):
        directory.get("sub-3")


def test_an_email_in_use_in_any_case_is_refused_and_the_refused_sign_up_writes_nothing(
    ddb_target: DdbTarget,
) -> None:
    _, directory, _ = _stores(ddb_target)
    alice = directory.create_on_signup("sub-1", "alice", "Alice@Example.com")

    with pytest.raises(EmailInUseError):
        directory.create_on_signup("sub-2", "mallory", "ALICE@example.COM")

    with pytest.raises(UserNotFoundError):
        directory.get("sub-2")
    assert directory.find("alice@example.com") == alice
    assert directory.email_in_use("aLiCe@example.com")
    assert not directory.email_in_use("bob@example.com")
    assert directory.create_on_signup("sub-1", "alice", "alice@example.com") == alice
    bob = directory.create_on_signup("sub-3", "bob", "bob@example.com")
    assert directory.find("BOB@example.com") == bob


def test_concurrent_sign_ups_with_one_email_let_exactly_one_user_have_it(
    ddb_target: DdbTarget,
) -> None:
    _, directory, _ = _stores(ddb_target)
    spellings = ["same@example.com", "Same@Example.com", "SAME@EXAMPLE.COM", "same@EXAMPLE.com"]
    outcomes: dict[str, str] = {}
    start = threading.Barrier(8)

    def sign_up(index: int) -> None:
        start.wait()
        try:
            directory.create_on_signup(f"sub-{index}", f"user{index}", spellings[index % 4])
            outcomes[f"sub-{index}"] = "created"
        except EmailInUseError:
            outcomes[f"sub-{index}"] = "refused"

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [sub for sub, outcome in outcomes.items() if outcome == "created"]
    assert len(outcomes) == 8 and len(winners) == 1, outcomes
    users, _ = directory.list(100, None, "same@")
    assert [user.user_id for user in users] == winners
    assert directory.find("same@example.com").user_id == winners[0]


def test_the_email_claim_item_is_never_a_user(ddb_target: DdbTarget) -> None:
    store, directory, _ = _stores(ddb_target)
    alice = directory.create_on_signup("sub-1", "alice", "alice@example.com")
    claim_key = "email#alice@example.com"
    raw = ddb_target.client.get_item(
        TableName=ddb_target.tables["users"], Key={"user_id": {"S": claim_key}}
    )["Item"]
    assert raw["owner"] == {"S": "sub-1"}

    with pytest.raises(UserNotFoundError):
        directory.get(claim_key)
    with pytest.raises(UserNotFoundError):
        directory.find(claim_key)
    with pytest.raises(BadRequestError):
        store.get(claim_key)
    with pytest.raises(BadRequestError):
        store.set_premium(claim_key, True, None, actor="admin")
    assert directory.list(100, None)[0] == [alice]


def _legacy_user(target: DdbTarget, user_id: str, username: str, email: str) -> None:
    """A user item as written before e-mail claims existed (no claim item)."""
    target.client.put_item(
        TableName=target.tables["users"],
        Item={
            "user_id": {"S": user_id},
            "entity": {"S": "user"},
            "username": {"S": username},
            "email": {"S": email},
            "email_lower": {"S": email.lower()},
            "premium": {"BOOL": False},
            "version": {"N": "0"},
        },
    )


def test_a_lookup_matching_two_users_is_an_error_never_a_pick(ddb_target: DdbTarget) -> None:
    _, directory, _ = _stores(ddb_target)
    _legacy_user(ddb_target, "sub-1", "dana", "dup@example.com")
    _legacy_user(ddb_target, "sub-2", "dan", "DUP@example.com")
    _legacy_user(ddb_target, "sub-3", "sam", "sam1@example.com")
    _legacy_user(ddb_target, "sub-4", "sam", "sam2@example.com")

    for identifier in ("dup@example.com", "Dup@Example.com", "sam"):
        with pytest.raises(AmbiguousUserError) as caught:
            directory.find(identifier)
        assert len(caught.value.matches) == 2
    assert {u.user_id for u in caught.value.matches} == {"sub-3", "sub-4"}
    assert directory.find("sub-1").username == "dana"
    assert directory.find("dana").user_id == "sub-1"
    assert directory.email_in_use("dup@example.com")
    with pytest.raises(EmailInUseError):
        directory.create_on_signup("sub-5", "eve", "dup@EXAMPLE.com")
    with pytest.raises(UserNotFoundError):
        directory.get("sub-5")


def test_users_without_an_email_need_no_claim(ddb_target: DdbTarget) -> None:
    _, directory, _ = _stores(ddb_target)
    first = directory.create_on_signup("sub-1", "nomail1", None)
    second = directory.create_on_signup("sub-2", "nomail2", "")
    assert (first.email, second.email) == ("", "")
    assert directory.create_on_signup("sub-1", "nomail1", None) == first


def test_ended_sessions_are_seen_at_once_here_and_within_the_ttl_elsewhere(
    ddb_target: DdbTarget,
) -> None:
    _, directory, clock = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    monotonic = ManualClock()
    elsewhere = UserDirectory(
        ddb_target.client, ddb_target.tables["users"], sessions_ended_ttl=30, monotonic=monotonic
    )
    assert directory.sessions_ended_at("sub-1") is None
    assert elsewhere.sessions_ended_at("sub-1") is None

    ended = directory.end_sessions("sub-1")

    assert ended == clock.now
    assert directory.sessions_ended_at("sub-1") == ended, "this process knows at once"
    monotonic.now += 29.9
    assert elsewhere.sessions_ended_at("sub-1") is None, "another process: cached, < 30 s old"
    monotonic.now += 0.1
    assert elsewhere.sessions_ended_at("sub-1") == ended
    with pytest.raises(UserNotFoundError):
        directory.end_sessions("sub-nobody")
    with pytest.raises(BadRequestError):
        directory.end_sessions("email#alice@example.com")


def test_saving_the_state_a_user_already_has_writes_nothing_and_audits_nothing(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    until = START + timedelta(days=30)
    granted = store.set_premium("sub-1", True, until, actor="admin", expected_version=0)

    again = store.set_premium("sub-1", True, until, actor="admin", expected_version=1)
    same_moment = store.set_premium(
        "sub-1", True, until.astimezone(timezone(timedelta(hours=-5))), actor="admin"
    )

    assert again == granted == same_moment == store.get("sub-1")
    assert again.version == 1
    revoked = store.set_premium("sub-1", False, None, actor="admin")
    assert store.set_premium("sub-1", False, None, actor="admin") == revoked
    assert [r.version for r in store.list_audit("sub-1", 10, None)[0]] == [2, 1]
    with pytest.raises(VersionConflictError):
        store.set_premium("sub-1", False, None, actor="admin", expected_version=1)


def test_users_are_listed_in_email_order_by_page_and_by_prefix(ddb_target: DdbTarget) -> None:
    _, directory, _ = _stores(ddb_target)
    emails = ["dora@x.org", "Anna@x.org", "carl@y.org", "ann.b@x.org", "bert@x.org"]
    for number, email in enumerate(emails):
        directory.create_on_signup(f"sub-{number}", f"user{number}", email)
    directory.create_on_signup("sub-no-mail", "zed", "")

    pages = _all_pages(lambda c: directory.list(2, c))
    by_prefix = _all_pages(lambda c: directory.list(1, c, email_prefix="ANN"))

    assert [len(p) for p in pages] == [2, 2, 2]
    assert [u.email for p in pages for u in p] == [
        "ann.b@x.org",
        "Anna@x.org",
        "bert@x.org",
        "carl@y.org",
        "dora@x.org",
        "",
    ]
    assert [u.email for p in by_prefix for u in p] == ["ann.b@x.org", "Anna@x.org"]
    assert directory.list(10, None, email_prefix="nobody") == ([], None)
    assert directory.find("zed").user_id == "sub-no-mail"


@pytest.mark.parametrize("limit", [0, 101, -1, True, 2.5, "10"])
def test_limits_outside_1_to_100_are_bad_requests(ddb_target: DdbTarget, limit: Any) -> None:
    store, directory, _ = _stores(ddb_target)
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    for listing in (
        lambda: directory.list(limit, None),
        lambda: catalog.list(limit, None),
        lambda: store.list_audit(None, limit, None),
    ):
        with pytest.raises(BadRequestError):
            listing()


# --- catalog -----------------------------------------------------------------------


def test_a_stored_video_reads_back_with_every_field(ddb_target: DdbTarget) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    video = _video("intro_01", 1, tier="premium")

    assert catalog.put(video) == video
    assert catalog.get("intro_01") == video
    assert catalog.get_any("intro_01") == video
    assert video.to_public("https://cdn/p.jpg") == {
        "id": "intro_01",
        "title": "Video intro_01",
        "description": "About intro_01",
        "tier": "premium",
        "duration_seconds": 12.5,
        "poster_url": "https://cdn/p.jpg",
        "categories": [],
    }


def test_hls_keys_round_trip_and_a_playlist_moved_outside_its_folder_reads_as_no_hls(
    ddb_target: DdbTarget,
) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"], cache_seconds=0)
    both = replace(_video("both", 1), hls_key="videos/both/hls/master.m3u8")
    hls_only = replace(
        _video("hlsonly", 2), object_key="", content_type="", hls_key="videos/hlsonly/hls/m.m3u8"
    )

    assert catalog.put(both) == both
    assert catalog.put(hls_only) == hls_only
    assert catalog.get("both").formats == ("hls", "mp4")
    assert catalog.get_any("hlsonly") == hls_only
    assert catalog.get("hlsonly").formats == ("hls",)

    ddb_target.client.update_item(
        TableName=ddb_target.tables["videos"],
        Key={"video_id": {"S": "hlsonly"}},
        UpdateExpression="SET hls_key = :k",
        ExpressionAttributeValues={":k": {"S": "videos/both/hls/master.m3u8"}},
    )
    assert catalog.get("hlsonly").formats == ()
    assert catalog.get("hlsonly").hls_key is None


def test_the_catalog_lists_published_videos_newest_first_by_page(ddb_target: DdbTarget) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    for minute in range(7):
        catalog.put(_video(f"v{minute}", minute, published=minute != 3))

    pages = _all_pages(lambda c: catalog.list(2, c))

    assert [len(p) for p in pages] == [2, 2, 2]
    assert [v.video_id for p in pages for v in p] == ["v6", "v5", "v4", "v2", "v1", "v0"]


def test_unpublishing_hides_a_video_from_viewers_but_not_from_admins(
    ddb_target: DdbTarget,
) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    catalog.put(_video("a", 1))
    catalog.put(_video("b", 2))
    assert catalog.get("b").published

    hidden = catalog.unpublish("b")

    assert not hidden.published
    with pytest.raises(VideoNotFoundError):
        catalog.get("b")
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["a"]
    assert catalog.get_any("b") == hidden
    assert [v.video_id for v in catalog.list_all(10, None)[0]] == ["b", "a"]
    first, cursor = catalog.list_all(1, None)
    assert [v.video_id for v in first] == ["b"]
    assert [v.video_id for v in catalog.list_all(1, cursor)[0]] == ["a"]
    catalog.publish("b")
    assert [v.video_id for v in catalog.list(10, None)[0]] == ["b", "a"]


def test_the_cache_serves_reads_until_it_expires_or_is_invalidated(
    ddb_target: DdbTarget,
) -> None:
    clock = ManualClock()
    table = ddb_target.tables["videos"]
    catalog = VideoCatalog(ddb_target.client, table, clock=clock, cache_seconds=1)
    catalog.put(_video("a", 1))
    assert catalog.get("a").title == "Video a"

    def retitle(title: str) -> None:
        # Another process changes the title behind this catalog's back.
        ddb_target.client.update_item(
            TableName=table,
            Key={"video_id": {"S": "a"}},
            UpdateExpression="SET title = :t",
            ExpressionAttributeValues={":t": {"S": title}},
        )

    retitle("Changed elsewhere")
    clock.now += 0.9
    assert catalog.get("a").title == "Video a"
    assert catalog.recent("a") == catalog.get("a")
    clock.now += 0.1  # a copy is kept for exactly cache_seconds, counted from before its read
    assert catalog.recent("a") is None
    assert catalog.get("a").title == "Changed elsewhere"

    retitle("Changed again")
    assert catalog.get("a").title == "Changed elsewhere"
    catalog.invalidate("a")
    assert catalog.get("a").title == "Changed again"

    assert catalog.update("a", title="Edited by admin", tier="premium").tier == "premium"
    assert catalog.get("a").title == "Edited by admin"
    catalog.unpublish("a")
    with pytest.raises(VideoNotFoundError):
        catalog.get("a")


def test_removing_a_video_deletes_it_and_unknown_ids_are_not_found(ddb_target: DdbTarget) -> None:
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    catalog.put(_video("a", 1))
    catalog.get("a")

    catalog.remove("a")

    for read in (catalog.get, catalog.get_any, catalog.remove, catalog.unpublish):
        with pytest.raises(VideoNotFoundError):
            read("a")
    with pytest.raises(VideoNotFoundError):
        catalog.update("a", title="x")


# --- cursors -----------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = {
    "not-base64": "!!!***",
    "not-json": _b64(b"\xff\xfe not json"),
    "json-list": _b64(b"[1, 2]"),
    "empty-object": _b64(b"{}"),
    "wrong-types": _b64(json.dumps({"user_id": {"N": "1"}, "event_id": {"S": "e"}}).encode()),
    "extra-key": _b64(
        json.dumps({"user_id": {"S": "u"}, "event_id": {"S": "e"}, "x": {"S": "y"}}).encode()
    ),
    "too-long": "A" * 5000,
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
def test_a_malformed_cursor_is_a_bad_request_in_every_listing(
    ddb_target: DdbTarget, cursor: str
) -> None:
    store, directory, _ = _stores(ddb_target)
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    for listing in (
        lambda: directory.list(10, cursor),
        lambda: directory.list(10, cursor, email_prefix="a"),
        lambda: catalog.list(10, cursor),
        lambda: store.list_audit(None, 10, cursor),
        lambda: store.list_audit("sub-1", 10, cursor),
    ):
        with pytest.raises(BadRequestError):
            listing()


def test_a_cursor_from_another_listing_is_a_bad_request(ddb_target: DdbTarget) -> None:
    store, directory, _ = _stores(ddb_target)
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"])
    for number in range(3):
        directory.create_on_signup(f"sub-{number}", f"u{number}", f"u{number}@x.org")
        catalog.put(_video(f"v{number}", number))
    for _ in range(3):
        store.set_premium("sub-0", not store.get("sub-0").premium, None, actor="admin")
    user_cursor = directory.list(1, None)[1]
    video_cursor = catalog.list(1, None)[1]
    audit_cursor = store.list_audit("sub-0", 1, None)[1]
    assert user_cursor and video_cursor and audit_cursor
    forged = encode_cursor(
        {"video_id": {"S": "v1"}, "catalog": {"S": "draft"}, "sort_key": {"S": "x"}}
    )

    for listing in (
        lambda: directory.list(1, video_cursor),
        lambda: directory.list(1, user_cursor, email_prefix="zz"),
        lambda: catalog.list(1, user_cursor),
        lambda: catalog.list(1, forged),
        lambda: store.list_audit("sub-1", 1, audit_cursor),
        lambda: store.list_audit(None, 1, audit_cursor),
    ):
        with pytest.raises(BadRequestError):
            listing()


# --- tables and failures -----------------------------------------------------------


def _describe_all(target: DdbTarget) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for table in target.tables.values():
        description = target.client.describe_table(TableName=table)["Table"]
        ttl = target.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        described[table] = (description, ttl)
    return described


def test_creating_the_tables_twice_changes_nothing(ddb_target: DdbTarget) -> None:
    before = _describe_all(ddb_target)

    create_tables(ddb_target.client, ddb_target.tables)

    assert _describe_all(ddb_target) == before
    sessions, ttl = before[ddb_target.tables["sessions"]]
    assert ttl == {"AttributeName": "expires_at", "TimeToLiveStatus": "ENABLED"}
    users, _ = before[ddb_target.tables["users"]]
    assert users["TableStatus"] == "ACTIVE"
    assert users["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert sorted(i["IndexName"] for i in users["GlobalSecondaryIndexes"]) == [
        "email-index",
        "username-index",
    ]
    assert sessions["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]


def test_an_existing_table_with_other_keys_is_refused(ddb_target: DdbTarget) -> None:
    name = f"{ddb_target.tables['videos']}-other"
    ddb_target.client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(ConfigurationError):
            create_tables(ddb_target.client, {"videos": name})
        with pytest.raises(ConfigurationError):
            create_tables(ddb_target.client, {"thumbnails": name})
    finally:
        ddb_target.client.delete_table(TableName=name)


def test_missing_tables_fail_closed_as_dependency_unavailable(ddb_target: DdbTarget) -> None:
    missing = "t-missing-table"
    store = EntitlementStore(ddb_target.client, missing, missing)
    directory = UserDirectory(ddb_target.client, missing)
    catalog = VideoCatalog(ddb_target.client, missing)
    for call in (
        lambda: store.get("sub-1"),
        lambda: store.set_premium("sub-1", True, None, actor="admin"),
        lambda: store.list_audit(None, 5, None),
        lambda: directory.create_on_signup("sub-1", "alice", "a@x.org"),
        lambda: directory.list(5, None),
        lambda: catalog.get("a"),
        lambda: catalog.list(5, None),
    ):
        with pytest.raises(DependencyUnavailableError):
            call()


def test_an_unreachable_endpoint_fails_closed_as_dependency_unavailable() -> None:
    down = make_client(
        f"http://127.0.0.1:{free_port()}",
        Config(
            retries={"mode": "standard", "max_attempts": 1}, connect_timeout=0.5, read_timeout=0.5
        ),
    )
    store = EntitlementStore(down, "users", "audit")
    directory = UserDirectory(down, "users")
    catalog = VideoCatalog(down, "videos")
    for call in (
        lambda: store.get("sub-1"),
        lambda: store.set_premium("sub-1", True, None, actor="admin"),
        lambda: store.list_audit("sub-1", 5, None),
        lambda: directory.find("alice"),
        lambda: directory.list(5, None, email_prefix="a"),
        lambda: catalog.get("a"),
        lambda: catalog.list(5, None),
        lambda: catalog.put(_video("a", 1)),
    ):
        with pytest.raises(DependencyUnavailableError):
            call()
    # Malformed input is refused before any network call, so it is not a 503.
    with pytest.raises(VideoNotFoundError):
        catalog.get("../etc/passwd")
    with pytest.raises(BadRequestError):
        catalog.put(_video("has space", 1))
    with pytest.raises(BadRequestError):
        directory.list(5, "garbage!")


def test_a_change_may_start_from_any_of_several_versions_and_a_forced_one_is_audited_so(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    store.set_premium("sub-1", True, None, actor="admin-a", expected_version={0, 5})

    with pytest.raises(VersionConflictError) as caught:
        store.set_premium("sub-1", False, None, actor="admin-b", expected_version=[0, 2])
    store.set_premium("sub-1", False, None, actor="admin-c", forced=True)

    assert caught.value.expected == [0, 2]
    records = store.list_audit("sub-1", 10, None)[0]
    assert [(r.actor, r.version, r.forced) for r in records] == [
        ("admin-c", 2, True),
        ("admin-a", 1, False),
    ]
    assert records[0].to_dict()["forced"] is True


@pytest.mark.parametrize("seconds", [1.5, 30, -1])
def test_the_cache_cannot_be_kept_longer_than_a_second(
    ddb_target: DdbTarget, seconds: float
) -> None:
    with pytest.raises(ValueError, match="cache_seconds"):
        VideoCatalog(ddb_target.client, ddb_target.tables["videos"], cache_seconds=seconds)
    assert MAX_CACHE_SECONDS == 1


def test_a_video_and_an_entitlement_are_read_together_fresh_in_one_call(
    ddb_target: DdbTarget,
) -> None:
    store, directory, _ = _stores(ddb_target)
    directory.create_on_signup("sub-1", "alice", "alice@example.com")
    granted = store.set_premium("sub-1", True, START + timedelta(days=3), actor="admin")
    clock = ManualClock()
    catalog = VideoCatalog(ddb_target.client, ddb_target.tables["videos"], clock=clock)
    catalog.put(_video("a", 1, tier="premium"))

    with counting_calls(ddb_target.client) as calls:
        video, entitlement = catalog.get_with("a", store.read_of("sub-1"))
        _, nobody = catalog.get_with("a", store.read_of("sub-unknown"))

    assert (video, entitlement) == (_video("a", 1, tier="premium"), granted)
    assert (nobody.premium, nobody.version) == (False, 0)
    assert calls == ["BatchGetItem", "BatchGetItem"]
    assert catalog.recent("a") == video

    ddb_target.client.update_item(  # another process: the next read sees it, whatever is cached
        TableName=ddb_target.tables["videos"],
        Key={"video_id": {"S": "a"}},
        UpdateExpression="SET tier = :t",
        ExpressionAttributeValues={":t": {"S": "free"}},
    )
    assert catalog.get_with("a", store.read_of("sub-1"))[0].tier == "free"
    catalog.unpublish("a")
    with pytest.raises(VideoNotFoundError):
        catalog.get_with("a", store.read_of("sub-1"))
    assert catalog.recent("a") is None


@contextmanager
def counting_calls(client: Any) -> Iterator[list[str]]:
    """The names of the DynamoDB operations ``client`` makes inside the block."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", count)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", count)

"""Purchases, rentals and paid premium in the playback decision, with in-memory fakes.

Each is read with the entitlement (no extra round trip); a rental's first
play records its start once; a refund or an elapsed window refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.entitlements import Entitlement, PaidAccess
from app.errors import PremiumRequiredError
from app.playback import Playback, PlaybackRule
from tests.unit.test_playback_decision import (
    ALICE,
    CDN,
    KEY_ID,
    NOW,
    TTL,
    CountingSigner,
    FakeCatalog,
    FakeEntitlements,
    video,
)


@dataclass
class FakeRentalClock:
    starts: list[tuple[str, str, str, datetime]] = field(default_factory=list)

    def start(self, user_id: str, video_id: str, payment: str, now: datetime) -> None:
        self.starts.append((user_id, video_id, payment, now))


def _with(paid: dict[str, PaidAccess], stripe_until: datetime | None = None) -> Entitlement:
    return Entitlement("sub-alice", False, None, 0, stripe_until=stripe_until, paid=paid)


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog(
        {
            "premium-aurora": video("premium-aurora", "premium"),
            "premium-other": video("premium-other", "premium"),
        }
    )


@pytest.fixture
def parts(catalog: FakeCatalog) -> tuple[FakeEntitlements, FakeRentalClock, Playback]:
    entitlements = FakeEntitlements()
    clock = FakeRentalClock()
    signer = CountingSigner(
        KEY_ID, ec.generate_private_key(ec.SECP256R1()), base_url=CDN, clock=lambda: NOW.timestamp()
    )
    playback = Playback(
        entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: NOW, rentals=clock
    )
    return entitlements, clock, playback


def test_an_owned_video_plays_in_one_round_trip_and_no_other_premium_video_does(
    parts: tuple[FakeEntitlements, FakeRentalClock, Playback], catalog: FakeCatalog
) -> None:
    entitlements, clock, playback = parts
    entitlements.by_user["sub-alice"] = _with(
        {"premium-aurora": PaidAccess("premium-aurora", "own", "pi_1")}
    )

    playback.authorize(ALICE, "premium-aurora", NOW)

    assert catalog.round_trips == 1 and entitlements.gets == 0
    assert clock.starts == []
    with pytest.raises(PremiumRequiredError):
        playback.authorize(ALICE, "premium-other", NOW)


def test_a_rental_first_play_starts_its_window_and_a_started_one_does_not_restart(
    parts: tuple[FakeEntitlements, FakeRentalClock, Playback],
) -> None:
    entitlements, clock, playback = parts
    rental = PaidAccess(
        "premium-aurora", "rent", "pi_r", 48 * 3600, start_by=NOW + timedelta(days=30)
    )
    entitlements.by_user["sub-alice"] = _with({"premium-aurora": rental})

    playback.authorize(ALICE, "premium-aurora", NOW)
    assert clock.starts == [("sub-alice", "premium-aurora", "pi_r", NOW)]

    started = PaidAccess("premium-aurora", "rent", "pi_r", 48 * 3600, started=NOW)
    entitlements.by_user["sub-alice"] = _with({"premium-aurora": started})
    playback.authorize(ALICE, "premium-aurora", NOW + timedelta(hours=47))
    assert len(clock.starts) == 1


@pytest.mark.parametrize(
    ("access", "at", "allowed"),
    [
        (PaidAccess("v", "rent", "p", 3600, started=NOW), NOW + timedelta(seconds=3599), True),
        (PaidAccess("v", "rent", "p", 3600, started=NOW), NOW + timedelta(seconds=3600), False),
        (PaidAccess("v", "rent", "p", 3600, start_by=NOW), NOW - timedelta(seconds=1), True),
        (PaidAccess("v", "rent", "p", 3600, start_by=NOW), NOW, False),
        (PaidAccess("v", "own", "p", ended=NOW), NOW - timedelta(seconds=1), True),
        (PaidAccess("v", "own", "p", ended=NOW), NOW, False),
        (
            PaidAccess("v", "rent", "p", 3600, started=NOW, ended=NOW + timedelta(minutes=1)),
            NOW + timedelta(minutes=1),
            False,
        ),
    ],
)
def test_paid_access_ends_exactly_at_its_end(
    access: PaidAccess, at: datetime, allowed: bool
) -> None:
    assert access.allows(at) is allowed


def test_paid_premium_plays_every_premium_video_until_its_end(catalog: FakeCatalog) -> None:
    entitlements = FakeEntitlements()
    entitlements.by_user["sub-alice"] = _with({}, stripe_until=NOW + timedelta(seconds=1))
    rule = PlaybackRule(entitlements, catalog)

    assert rule.decide("sub-alice", "premium-other", NOW).basis == "premium"
    assert rule.decide("sub-alice", "premium-other", NOW + timedelta(seconds=1)).refusal is not None


def test_admin_premium_still_plays_beside_purchases(catalog: FakeCatalog) -> None:
    entitlements = FakeEntitlements()
    entitlements.grant("sub-alice", NOW + timedelta(days=1))
    rule = PlaybackRule(entitlements, catalog)

    decision = rule.decide("sub-alice", "premium-aurora", NOW)

    assert decision.allowed and decision.basis == "premium"

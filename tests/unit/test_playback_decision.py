"""The playback decision with in-memory fakes and a real signer: who gets a URL, who does not."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth import Principal
from app.catalog import Video
from app.entitlements import Entitlement
from app.errors import DependencyUnavailableError, PremiumRequiredError, VideoNotFoundError
from app.playback import Grant, Playback, SigningFailedError, iso_utc
from app.signing import SignedCookies, SignedUrl, UrlSigner

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = 300
CDN = "https://d111111abcdef8.cloudfront.net"
KEY_ID = "K2JCJMDEHXQW5F"

ALICE = Principal("sub-alice", "alice", None, (), "access", int(NOW.timestamp()) + 3600)
BOB = Principal("sub-bob", "bob", None, (), "access", int(NOW.timestamp()) + 3600)


def video(
    video_id: str, tier: str, *, key: str | None = None, content_type: str = "video/mp4"
) -> Video:
    return Video(
        video_id=video_id,
        title=video_id.title(),
        description="",
        tier=tier,  # type: ignore[arg-type]
        object_key=key or f"videos/{video_id}/{video_id}.mp4",
        content_type=content_type,
        duration_seconds=12.5,
        poster_key=None,
        size_bytes=1000,
        created_at=NOW,
    )


@dataclass
class FakeEntitlements:
    """Entitlements by user id; counts reads (each is a DynamoDB round trip in the real store)."""

    by_user: dict[str, Entitlement] = field(default_factory=dict)
    down: bool = False
    reads: int = 0

    def get(self, user_id: str) -> Entitlement:
        self.reads += 1
        if self.down:
            raise DependencyUnavailableError("DynamoDB is unavailable (EndpointConnectionError)")
        return self.by_user.get(user_id) or Entitlement(user_id, False, None, 0)

    def grant(self, user_id: str, until: datetime | None = None) -> None:
        self.by_user[user_id] = Entitlement(user_id, True, until, 1)


@dataclass
class FakeCatalog:
    videos: dict[str, Video] = field(default_factory=dict)
    down: bool = False

    def get(self, video_id: str) -> Video:
        if self.down:
            raise DependencyUnavailableError("DynamoDB is unavailable (ThrottlingException)")
        try:
            return self.videos[video_id]
        except KeyError:
            raise VideoNotFoundError(f"no published video {video_id}") from None


class CountingSigner(UrlSigner):
    """The real signer, counting what it signs (to prove refusals sign nothing)."""

    signed = 0

    def url_for_key(self, object_key: str, ttl_seconds: int, *, ip: str | None = None) -> SignedUrl:
        self.signed += 1
        return super().url_for_key(object_key, ttl_seconds, ip=ip)

    def cookies_for_prefix(
        self, prefix: str, ttl_seconds: int, *, ip: str | None = None
    ) -> SignedCookies:
        self.signed += 1
        return super().cookies_for_prefix(prefix, ttl_seconds, ip=ip)


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signer(private_key: ec.EllipticCurvePrivateKey) -> CountingSigner:
    return CountingSigner(KEY_ID, private_key, base_url=CDN, clock=lambda: NOW.timestamp())


@pytest.fixture
def entitlements() -> FakeEntitlements:
    return FakeEntitlements()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog(
        {
            "free-sampler": video("free-sampler", "free"),
            "premium-aurora": video("premium-aurora", "premium"),
            "hls-show": video(
                "hls-show",
                "premium",
                key="videos/hls show/master.m3u8",
                content_type="application/vnd.apple.mpegurl",
            ),
        }
    )


@pytest.fixture
def playback(
    entitlements: FakeEntitlements, catalog: FakeCatalog, signer: CountingSigner
) -> Playback:
    return Playback(entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: NOW)


def test_a_free_video_plays_for_any_signed_in_user_without_reading_entitlements(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    grant = playback.authorize(BOB, "free-sampler", NOW)

    assert grant.url.startswith(f"{CDN}/videos/free-sampler/free-sampler.mp4?")
    assert grant.content_type == "video/mp4"
    assert grant.key_pair_id == KEY_ID
    assert entitlements.reads == 0


def test_a_premium_video_plays_for_an_active_premium_user_with_one_entitlement_read(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id, until=NOW + timedelta(days=30))

    grant = playback.authorize(ALICE, "premium-aurora", NOW)

    assert "/videos/premium-aurora/premium-aurora.mp4?" in grant.url
    assert entitlements.reads == 1


def test_a_premium_grant_without_an_end_date_is_active(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id, until=None)

    assert playback.authorize(ALICE, "premium-aurora", NOW).url


def test_premium_one_second_before_its_end_still_gets_a_url(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    until = NOW + timedelta(hours=1)
    entitlements.grant(ALICE.user_id, until=until)

    assert playback.authorize(ALICE, "premium-aurora", until - timedelta(seconds=1)).url


def test_premium_at_exactly_its_end_is_refused(
    playback: Playback, entitlements: FakeEntitlements, signer: CountingSigner
) -> None:
    until = NOW + timedelta(hours=1)
    entitlements.grant(ALICE.user_id, until=until)

    with pytest.raises(PremiumRequiredError):
        playback.authorize(ALICE, "premium-aurora", until)
    assert signer.signed == 0


def test_a_user_who_is_not_premium_cannot_get_a_premium_url(
    playback: Playback, signer: CountingSigner
) -> None:
    with pytest.raises(PremiumRequiredError):
        playback.authorize(BOB, "premium-aurora", NOW)
    assert signer.signed == 0


def test_a_revoked_entitlement_stops_the_very_next_grant(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)
    playback.authorize(ALICE, "premium-aurora", NOW)

    entitlements.by_user[ALICE.user_id] = Entitlement(ALICE.user_id, False, None, 2)

    with pytest.raises(PremiumRequiredError):
        playback.authorize(ALICE, "premium-aurora", NOW)


def test_a_missing_video_is_not_found_and_reads_no_entitlement(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    with pytest.raises(VideoNotFoundError):
        playback.authorize(ALICE, "no-such-video", NOW)
    assert entitlements.reads == 0


def test_an_unreadable_entitlement_fails_closed_with_no_url(
    playback: Playback, entitlements: FakeEntitlements, signer: CountingSigner
) -> None:
    entitlements.grant(ALICE.user_id)
    entitlements.down = True

    with pytest.raises(DependencyUnavailableError):
        playback.authorize(ALICE, "premium-aurora", NOW)
    assert signer.signed == 0


def test_an_unreadable_catalog_fails_closed_with_no_url(
    playback: Playback, catalog: FakeCatalog, signer: CountingSigner
) -> None:
    catalog.down = True

    with pytest.raises(DependencyUnavailableError):
        playback.authorize(BOB, "free-sampler", NOW)
    assert signer.signed == 0


def test_a_tier_other_than_free_is_treated_as_premium(
    playback: Playback, catalog: FakeCatalog
) -> None:
    catalog.videos["gold"] = video("gold", "gold")

    with pytest.raises(PremiumRequiredError):
        playback.authorize(BOB, "gold", NOW)


def test_the_url_expires_ttl_seconds_after_now_and_the_api_shows_it_in_utc(
    playback: Playback,
) -> None:
    grant = playback.authorize(BOB, "free-sampler", NOW)

    expires = NOW + timedelta(seconds=TTL)
    assert grant.expires_at == expires
    assert parse_qs(urlsplit(grant.url).query)["Expires"] == [str(int(expires.timestamp()))]
    assert grant.to_public() == {
        "url": grant.url,
        "expires_at": "2026-03-01T12:05:00Z",
        "content_type": "video/mp4",
    }


def test_the_clock_is_used_when_no_time_is_given(
    entitlements: FakeEntitlements, catalog: FakeCatalog, signer: CountingSigner
) -> None:
    until = NOW + timedelta(minutes=1)
    entitlements.grant(ALICE.user_id, until=until)
    late = Playback(entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: until)

    with pytest.raises(PremiumRequiredError):
        late.authorize(ALICE, "premium-aurora")


def test_an_hls_grant_adds_signed_cookies_for_the_playlist_folder(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)

    grant = playback.authorize(ALICE, "hls-show", NOW)

    assert grant.url.startswith(f"{CDN}/videos/hls%20show/master.m3u8?")
    assert set(grant.cookies) >= {
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    }
    assert grant.cookie_path == "/videos/hls%20show/"


def test_an_mp4_grant_carries_no_cookies(playback: Playback) -> None:
    assert playback.authorize(BOB, "free-sampler", NOW).cookies == {}


def test_an_object_key_the_signer_refuses_fails_closed_as_unavailable(
    playback: Playback, catalog: FakeCatalog
) -> None:
    catalog.videos["broken"] = video("broken", "free", key="videos/../secret.mp4")

    with pytest.raises(SigningFailedError) as caught:
        playback.authorize(BOB, "broken", NOW)
    assert isinstance(caught.value, DependencyUnavailableError)


@pytest.mark.parametrize("ttl", [0, -5, True, 1.5])
def test_a_non_positive_or_non_integer_ttl_is_refused_at_construction(
    entitlements: FakeEntitlements, catalog: FakeCatalog, signer: CountingSigner, ttl: object
) -> None:
    with pytest.raises(ValueError):
        Playback(entitlements, catalog, signer, ttl_seconds=ttl)  # type: ignore[arg-type]


def _records(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "vidgate.playback"]


def test_every_grant_is_logged_as_one_json_line(
    playback: Playback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vidgate.playback")

    grant: Grant = playback.authorize(BOB, "free-sampler", NOW)

    assert _records(caplog) == [
        {
            "event": "playback",
            "user": BOB.user_id,
            "video": "free-sampler",
            "decision": "grant",
            "key_pair_id": KEY_ID,
            "expires_at": iso_utc(grant.expires_at),
        }
    ]


def test_every_refusal_is_logged_with_its_reason(
    playback: Playback, entitlements: FakeEntitlements, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vidgate.playback")
    with pytest.raises(PremiumRequiredError):
        playback.authorize(BOB, "premium-aurora", NOW)
    with pytest.raises(VideoNotFoundError):
        playback.authorize(BOB, "gone", NOW)
    entitlements.down = True
    with pytest.raises(DependencyUnavailableError):
        playback.authorize(BOB, "premium-aurora", NOW)

    decisions = [(r["decision"], r["video"], r["key_pair_id"]) for r in _records(caplog)]
    assert decisions == [
        ("premium_required", "premium-aurora", None),
        ("not_found", "gone", None),
        ("unavailable", "premium-aurora", None),
    ]


# --- the rule without signing: what the watch page asks ------------------------------


def test_the_rule_lets_a_free_video_play_without_reading_entitlements_or_signing(
    playback: Playback, entitlements: FakeEntitlements, signer: CountingSigner
) -> None:
    decision = playback.rule.decide(BOB.user_id, "free-sampler", NOW)

    assert decision.allowed
    assert decision.video.video_id == "free-sampler"
    assert decision.entitlement is None
    assert (entitlements.reads, signer.signed) == (0, 0)


def test_the_rule_refuses_premium_to_a_lapsed_user_with_what_it_read_and_signs_nothing(
    playback: Playback, entitlements: FakeEntitlements, signer: CountingSigner
) -> None:
    until = NOW - timedelta(days=1)
    entitlements.grant(ALICE.user_id, until=until)

    decision = playback.rule.decide(ALICE.user_id, "premium-aurora", NOW)

    assert not decision.allowed
    assert isinstance(decision.refusal, PremiumRequiredError)
    assert decision.entitlement is not None and decision.entitlement.premium_until == until
    assert (entitlements.reads, signer.signed) == (1, 0)


def test_the_rule_fails_closed_like_a_grant(
    playback: Playback, entitlements: FakeEntitlements, catalog: FakeCatalog
) -> None:
    with pytest.raises(VideoNotFoundError):
        playback.rule.decide(ALICE.user_id, "no-such-video", NOW)
    entitlements.down = True
    with pytest.raises(DependencyUnavailableError):
        playback.rule.decide(ALICE.user_id, "premium-aurora", NOW)
    entitlements.down, catalog.down = False, True
    with pytest.raises(DependencyUnavailableError):
        playback.rule.decide(ALICE.user_id, "free-sampler", NOW)


ENDS = NOW + timedelta(hours=1)
ACTIVE = Entitlement(ALICE.user_id, True, ENDS, 1)
CASES = {
    # name: (video, ALICE's entitlement (None: no record), moment, may she play it)
    "free video, no record": ("free-sampler", None, NOW, True),
    "free video, lapsed premium": (
        "free-sampler",
        Entitlement(ALICE.user_id, True, NOW, 3),
        NOW,
        True,
    ),
    "premium video, no record": ("premium-aurora", None, NOW, False),
    "premium video, premium without end": (
        "premium-aurora",
        Entitlement(ALICE.user_id, True, None, 1),
        NOW,
        True,
    ),
    "premium video, premium until later": ("premium-aurora", ACTIVE, NOW, True),
    "premium video, a second before the end": (
        "premium-aurora",
        ACTIVE,
        ENDS - timedelta(seconds=1),
        True,
    ),
    "premium video, at exactly the end": ("premium-aurora", ACTIVE, ENDS, False),
    "premium video, expired": ("premium-aurora", ACTIVE, ENDS + timedelta(days=1), False),
    "premium video, revoked": (
        "premium-aurora",
        Entitlement(ALICE.user_id, False, None, 2),
        NOW,
        False,
    ),
    "hls video, premium": ("hls-show", ACTIVE, NOW, True),
    "hls video, revoked": ("hls-show", Entitlement(ALICE.user_id, False, None, 2), NOW, False),
    "unknown tier, premium": ("gold", ACTIVE, NOW, True),
    "unknown tier, no record": ("gold", None, NOW, False),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_the_rule_and_the_grant_give_the_same_answer(
    playback: Playback, entitlements: FakeEntitlements, catalog: FakeCatalog, case: str
) -> None:
    """The watch page (``rule.decide``) and the API (``authorize``) cannot disagree."""
    video_id, entitlement, moment, may_play = CASES[case]
    catalog.videos["gold"] = video("gold", "gold")
    if entitlement is not None:
        entitlements.by_user[ALICE.user_id] = entitlement

    decision = playback.rule.decide(ALICE.user_id, video_id, moment)
    try:
        playback.authorize(ALICE, video_id, moment)
    except PremiumRequiredError:
        granted = False
    else:
        granted = True

    assert (decision.allowed, granted) == (may_play, may_play)
    assert isinstance(decision.refusal, PremiumRequiredError) is not may_play


def test_a_premium_grant_still_costs_one_entitlement_read(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)

    playback.authorize(ALICE, "premium-aurora", NOW)
    playback.authorize(ALICE, "hls-show", NOW)

    assert entitlements.reads == 2

"""The playback decision with in-memory fakes and a real signer: who gets a URL, who does not.

HLS grants are checked down to their cookies: the custom policy's ``Resource``
is exactly the video's own ``videos/<id>/hls/`` folder, whatever the catalog
entry says, and the edge's own matcher confirms it opens no other video.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from app.auth import Principal
from app.catalog import Format, Video
from app.dynamo import KeyRead
from app.entitlements import Entitlement
from app.errors import (
    DependencyUnavailableError,
    NotFoundError,
    PremiumRequiredError,
    VideoNotFoundError,
)
from app.local.edge import resource_matches
from app.playback import (
    FormatUnavailableError,
    Grant,
    Playback,
    SigningFailedError,
    UnplayableVideoError,
    iso_utc,
)
from app.signing import SignedFolder, SignedUrl, UrlSigner, cloudfront_b64decode

T = TypeVar("T")
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = 300
CDN = "https://d111111abcdef8.cloudfront.net"
KEY_ID = "K2JCJMDEHXQW5F"

ALICE = Principal("sub-alice", "alice", None, (), "access", int(NOW.timestamp()) + 3600)
BOB = Principal("sub-bob", "bob", None, (), "access", int(NOW.timestamp()) + 3600)


def video(
    video_id: str,
    tier: str,
    *,
    key: str | None = None,
    content_type: str = "video/mp4",
    hls_key: str | None = None,
) -> Video:
    return Video(
        video_id=video_id,
        title=video_id.title(),
        description="",
        tier=tier,  # type: ignore[arg-type]
        object_key=key if key is not None else f"videos/{video_id}/{video_id}.mp4",
        content_type=content_type,
        duration_seconds=12.5,
        poster_key=None,
        size_bytes=1000,
        created_at=NOW,
        hls_key=hls_key,
    )


@dataclass
class FakeEntitlements:
    """Entitlements by user id; ``reads`` counts the entitlements read, ``gets`` the reads
    that were a round trip of their own.

    A read for a batch looks the user up itself: the fake catalog "batches" it
    by calling ``parse`` in its own round trip, as the real catalog does with
    the item DynamoDB returns.
    """

    by_user: dict[str, Entitlement] = field(default_factory=dict)
    down: bool = False
    reads: int = 0
    gets: int = 0

    def get(self, user_id: str) -> Entitlement:
        self.gets += 1
        return self._read(user_id)

    def read_of(self, user_id: str) -> KeyRead[Entitlement]:
        return KeyRead("users", {"user_id": {"S": user_id}}, lambda _: self._read(user_id))

    def _read(self, user_id: str) -> Entitlement:
        self.reads += 1
        if self.down:
            raise DependencyUnavailableError("DynamoDB is unavailable (EndpointConnectionError)")
        return self.by_user.get(user_id) or Entitlement(user_id, False, None, 0)

    def grant(self, user_id: str, until: datetime | None = None) -> None:
        self.by_user[user_id] = Entitlement(user_id, True, until, 1)


@dataclass
class FakeCatalog:
    """Videos by id. Like the real catalog, it remembers the videos it read (the real one
    for a second); ``round_trips`` counts its reads."""

    videos: dict[str, Video] = field(default_factory=dict)
    down: bool = False
    round_trips: int = 0
    remembered: dict[str, Video] = field(default_factory=dict)

    def put(self, changed: Video) -> None:
        """A change made through this catalog: it forgets its own copy at once."""
        self.videos[changed.video_id] = changed
        self.remembered.pop(changed.video_id, None)

    def recent(self, video_id: str) -> Video | None:
        return self.remembered.get(video_id)

    def get_with(self, video_id: str, other: KeyRead[T]) -> tuple[Video, T]:
        self.round_trips += 1
        if self.down:
            raise DependencyUnavailableError("DynamoDB is unavailable (ThrottlingException)")
        found = other.parse(None)
        try:
            video = self.videos[video_id]
        except KeyError:
            raise VideoNotFoundError(f"no published video {video_id}") from None
        self.remembered[video_id] = video
        return video, found


class CountingSigner(UrlSigner):
    """The real signer, counting what it signs (to prove refusals sign nothing)."""

    signed = 0

    def url_for_key(self, object_key: str, ttl_seconds: int, *, ip: str | None = None) -> SignedUrl:
        self.signed += 1
        return super().url_for_key(object_key, ttl_seconds, ip=ip)

    def sign_folder(self, folder: str, entry_key: str, ttl_seconds: int) -> SignedFolder:
        self.signed += 1
        return super().sign_folder(folder, entry_key, ttl_seconds)


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
            "hls-show": video("hls-show", "premium", hls_key="videos/hls-show/hls/master.m3u8"),
            "hls-only": video(
                "hls-only", "free", key="", content_type="", hls_key="videos/hls-only/hls/m.m3u8"
            ),
        }
    )


@pytest.fixture
def playback(
    entitlements: FakeEntitlements, catalog: FakeCatalog, signer: CountingSigner
) -> Playback:
    return Playback(entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: NOW)


def test_a_free_video_plays_for_any_signed_in_user_in_at_most_one_round_trip(
    playback: Playback, catalog: FakeCatalog
) -> None:
    grant = playback.authorize(BOB, "free-sampler", NOW)

    assert grant.url.startswith(f"{CDN}/videos/free-sampler/free-sampler.mp4?")
    assert grant.content_type == "video/mp4"
    assert grant.key_pair_id == KEY_ID
    assert catalog.round_trips == 1


def test_a_free_video_remembered_by_the_catalog_plays_with_no_read_at_all(
    playback: Playback, catalog: FakeCatalog, entitlements: FakeEntitlements
) -> None:
    catalog.remembered["free-sampler"] = catalog.videos["free-sampler"]

    for _ in range(3):
        playback.authorize(BOB, "free-sampler", NOW)

    assert (catalog.round_trips, entitlements.reads) == (0, 0)


def test_every_premium_grant_reads_the_entitlement_fresh_in_one_round_trip(
    playback: Playback, catalog: FakeCatalog, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id, until=NOW + timedelta(days=30))

    grant = playback.authorize(ALICE, "premium-aurora", NOW)  # the video and the entitlement
    playback.authorize(ALICE, "premium-aurora", NOW)  # the entitlement; the video is remembered

    assert "/videos/premium-aurora/premium-aurora.mp4?" in grant.url
    assert (catalog.round_trips, entitlements.gets, entitlements.reads) == (1, 1, 2)


def test_a_video_unpublished_or_made_premium_elsewhere_is_refused_once_the_copy_is_gone(
    playback: Playback, catalog: FakeCatalog, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)
    playback.authorize(ALICE, "premium-aurora", NOW)
    playback.authorize(BOB, "free-sampler", NOW)

    # Another process unpublishes one and makes the other premium; the real catalog
    # forgets its copies within a second (tests/integration/test_playback_handler.py).
    del catalog.videos["premium-aurora"]
    catalog.videos["free-sampler"] = video("free-sampler", "premium")
    catalog.remembered.clear()

    with pytest.raises(VideoNotFoundError):
        playback.authorize(ALICE, "premium-aurora", NOW)
    with pytest.raises(PremiumRequiredError):
        playback.authorize(BOB, "free-sampler", NOW)


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


def test_a_missing_video_is_not_found_after_one_round_trip(
    playback: Playback, catalog: FakeCatalog, signer: CountingSigner
) -> None:
    with pytest.raises(VideoNotFoundError):
        playback.authorize(ALICE, "no-such-video", NOW)
    assert (catalog.round_trips, signer.signed) == (1, 0)


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
        "format": "mp4",
    }


def test_the_clock_is_used_when_no_time_is_given(
    entitlements: FakeEntitlements, catalog: FakeCatalog, signer: CountingSigner
) -> None:
    until = NOW + timedelta(minutes=1)
    entitlements.grant(ALICE.user_id, until=until)
    late = Playback(entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: until)

    with pytest.raises(PremiumRequiredError):
        late.authorize(ALICE, "premium-aurora")


def _policy(grant: Grant) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        cloudfront_b64decode(grant.cookies["CloudFront-Policy"])
    )
    return document


def _statement(grant: Grant) -> dict[str, object]:
    statements = _policy(grant)["Statement"]
    assert isinstance(statements, list) and len(statements) == 1
    statement: dict[str, object] = statements[0]
    return statement


def test_an_hls_video_is_granted_as_hls_with_cookies_for_exactly_its_own_folder(
    playback: Playback, entitlements: FakeEntitlements, private_key: ec.EllipticCurvePrivateKey
) -> None:
    entitlements.grant(ALICE.user_id)

    grant = playback.authorize(ALICE, "hls-show", NOW)

    assert grant.format == "hls"
    assert grant.content_type == "application/vnd.apple.mpegurl"
    assert grant.url == f"{CDN}/videos/hls-show/hls/master.m3u8"  # cookies, not a signed URL
    assert list(grant.cookies) == [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
        "CloudFront-Hash-Algorithm",
    ]
    expires = int((NOW + timedelta(seconds=TTL)).timestamp())
    assert _statement(grant) == {
        "Resource": f"{CDN}/videos/hls-show/hls/*",
        "Condition": {"DateLessThan": {"AWS:EpochTime": expires}},
    }
    document = cloudfront_b64decode(grant.cookies["CloudFront-Policy"])
    signature = cloudfront_b64decode(grant.cookies["CloudFront-Signature"])
    private_key.public_key().verify(signature, document, ec.ECDSA(hashes.SHA256()))
    assert grant.cookies["CloudFront-Key-Pair-Id"] == KEY_ID
    assert grant.cookie_path == "/videos/hls-show/"
    assert grant.expires_at == NOW + timedelta(seconds=TTL)
    assert grant.lifetime_seconds == TTL


def test_the_cookie_policy_opens_the_videos_renditions_and_nothing_else(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)
    resource = str(_statement(playback.authorize(ALICE, "hls-show", NOW))["Resource"])

    def opens(path: str) -> bool:
        return resource_matches(
            resource, scheme="https", host="d111111abcdef8.cloudfront.net", path=path, query=""
        )

    assert opens("/videos/hls-show/hls/master.m3u8")
    assert opens("/videos/hls-show/hls/720p/seg_00001.m4s")
    assert not opens("/videos/hls-show/show.mp4")
    assert not opens("/videos/hls-show/hlsx/master.m3u8")
    assert not opens("/videos/hls-show2/hls/master.m3u8")
    assert not opens("/videos/other/hls/master.m3u8")


def test_an_hls_grant_shows_its_cookies_and_their_path_in_the_body(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)

    grant = playback.authorize(ALICE, "hls-show", NOW)

    assert grant.to_public() == {
        "url": grant.url,
        "expires_at": "2026-03-01T12:05:00Z",
        "content_type": "application/vnd.apple.mpegurl",
        "format": "hls",
        "cookies": grant.cookies,
        "cookie_path": "/videos/hls-show/",
    }


def test_asking_for_mp4_gives_the_progressive_fallback_without_cookies(
    playback: Playback, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)

    grant = playback.authorize(ALICE, "hls-show", NOW, requested="mp4")

    assert grant.format == "mp4"
    assert grant.content_type == "video/mp4"
    assert grant.url.startswith(f"{CDN}/videos/hls-show/hls-show.mp4?Expires=")
    assert grant.cookies == {}
    assert "cookies" not in grant.to_public()


def test_an_mp4_only_video_is_granted_as_mp4_and_asking_for_hls_is_not_found(
    playback: Playback, signer: CountingSigner
) -> None:
    grant = playback.authorize(BOB, "free-sampler", NOW)
    assert (grant.format, grant.cookies) == ("mp4", {})
    assert playback.authorize(BOB, "free-sampler", NOW, requested="mp4").format == "mp4"
    signed = signer.signed

    with pytest.raises(FormatUnavailableError) as caught:
        playback.authorize(BOB, "free-sampler", NOW, requested="hls")
    assert isinstance(caught.value, NotFoundError)
    assert signer.signed == signed


def test_an_hls_only_video_has_no_mp4_fallback(playback: Playback, signer: CountingSigner) -> None:
    assert playback.authorize(BOB, "hls-only", NOW).format == "hls"
    signed = signer.signed

    with pytest.raises(FormatUnavailableError):
        playback.authorize(BOB, "hls-only", NOW, requested="mp4")
    assert signer.signed == signed


def test_a_user_who_is_not_premium_gets_no_cookies_for_a_premium_hls_video(
    playback: Playback, signer: CountingSigner
) -> None:
    requests: tuple[Format | None, ...] = (None, "hls", "mp4")
    for requested in requests:
        with pytest.raises(PremiumRequiredError):
            playback.authorize(BOB, "hls-show", NOW, requested=requested)
    assert signer.signed == 0


MISPLACED_PLAYLISTS = [
    "videos/other/hls/master.m3u8",  # another video's folder
    "videos/stray/master.m3u8",  # its own folder, but not hls/
    "videos/stray/hls/../../other/hls/master.m3u8",
    "videos/stray/hlsx/master.m3u8",
    "videos/shared/hls/master.m3u8",
    "videos/stray/hls/",
    "videos/stray/hls/master.mp4",
]


@pytest.mark.parametrize("hls_key", MISPLACED_PLAYLISTS)
def test_a_playlist_outside_the_videos_own_folder_is_never_granted_as_hls(
    playback: Playback, catalog: FakeCatalog, signer: CountingSigner, hls_key: str
) -> None:
    catalog.videos["stray"] = video("stray", "free", hls_key=hls_key)

    fallback = playback.authorize(BOB, "stray", NOW)
    assert (fallback.format, fallback.cookies) == ("mp4", {})
    with pytest.raises(FormatUnavailableError):
        playback.authorize(BOB, "stray", NOW, requested="hls")

    catalog.put(video("stray", "free", key="", content_type="", hls_key=hls_key))
    signed = signer.signed
    with pytest.raises(UnplayableVideoError) as caught:
        playback.authorize(BOB, "stray", NOW)
    assert isinstance(caught.value, DependencyUnavailableError)
    assert signer.signed == signed


def test_a_renewal_reissues_the_cookies_with_a_later_expiry(
    entitlements: FakeEntitlements, catalog: FakeCatalog, private_key: ec.EllipticCurvePrivateKey
) -> None:
    entitlements.grant(ALICE.user_id)
    renewal_time = NOW + timedelta(seconds=TTL * 3 // 4)
    grants = []
    for moment in (NOW, renewal_time):
        signer = UrlSigner(KEY_ID, private_key, base_url=CDN, clock=moment.timestamp)
        decider = Playback(entitlements, catalog, signer, ttl_seconds=TTL)
        grants.append(decider.authorize(ALICE, "hls-show", moment))

    first, renewed = grants
    assert renewed.expires_at == renewal_time + timedelta(seconds=TTL)
    assert renewed.expires_at > first.expires_at > renewal_time
    assert _statement(renewed)["Resource"] == _statement(first)["Resource"]
    assert renewed.cookies["CloudFront-Policy"] != first.cookies["CloudFront-Policy"]
    assert renewed.cookie_path == first.cookie_path


def test_the_cookie_path_keeps_the_sites_own_path_prefix(
    entitlements: FakeEntitlements, catalog: FakeCatalog, private_key: ec.EllipticCurvePrivateKey
) -> None:
    signer = UrlSigner(KEY_ID, private_key, base_url=f"{CDN}/media", clock=NOW.timestamp)
    decider = Playback(entitlements, catalog, signer, ttl_seconds=TTL, clock=lambda: NOW)

    grant = decider.authorize(BOB, "hls-only")

    assert grant.cookie_path == "/media/videos/hls-only/"
    assert _statement(grant)["Resource"] == f"{CDN}/media/videos/hls-only/hls/*"


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
            "format": "mp4",
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


def test_the_rule_lets_a_free_video_play_whatever_the_entitlement_and_signs_nothing(
    playback: Playback, catalog: FakeCatalog, signer: CountingSigner
) -> None:
    decision = playback.rule.decide(BOB.user_id, "free-sampler", NOW)

    assert decision.allowed
    assert decision.video.video_id == "free-sampler"
    assert decision.entitlement is None
    assert (catalog.round_trips, signer.signed) == (1, 0)


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


def test_a_premium_grant_still_costs_one_round_trip(
    playback: Playback, catalog: FakeCatalog, entitlements: FakeEntitlements
) -> None:
    entitlements.grant(ALICE.user_id)

    playback.authorize(ALICE, "premium-aurora", NOW)
    playback.authorize(ALICE, "hls-show", NOW)

    assert (catalog.round_trips, entitlements.reads) == (2, 2)

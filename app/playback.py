"""The playback decision: may this signed-in viewer play this video, and with which URL.

:class:`PlaybackRule` is the one place the rule lives: free videos play for
any signed-in user; premium videos only while the user's entitlement is
active (premium, and ``now`` before ``premium_until``). It signs nothing, so
the watch page asks it whether to show the player or the upsell page, and
:meth:`Playback.authorize` asks it before signing a grant. The video comes
from the catalog (whose short cache makes it free in the steady state); the
entitlement is read fresh, and only for premium videos, so a grant costs at
most one DynamoDB round trip. Every failure to read a dependency propagates
as :class:`~app.errors.DependencyUnavailableError`: the decision fails
closed and never signs by default. Each grant and refusal is logged as one
JSON line (user, video, decision, key id, expiry): the audit trail of who got
which URL. Collaborators come in through the constructor; no boto3, no
Flask, no environment here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from app.errors import DependencyUnavailableError, PremiumRequiredError, VidgateError
from app.signing import object_key_to_path

if TYPE_CHECKING:
    from app.auth import Principal
    from app.catalog import Video
    from app.entitlements import Entitlement
    from app.signing import SignedCookies, SignedUrl

log = logging.getLogger("vidgate.playback")

HLS_CONTENT_TYPES = frozenset({"application/vnd.apple.mpegurl", "application/x-mpegurl"})
"""An HLS playlist names its segments by relative URLs, which carry no signature:
the grant adds signed cookies for the playlist's folder."""


class EntitlementReader(Protocol):
    def get(self, user_id: str) -> Entitlement: ...


class VideoReader(Protocol):
    def get(self, video_id: str) -> Video: ...


class Signer(Protocol):
    """What :class:`app.signing.UrlSigner` offers the decision."""

    key_pair_id: str
    base_url: str | None

    def url_for_key(self, object_key: str, ttl_seconds: int) -> SignedUrl: ...

    def cookies_for_prefix(self, prefix: str, ttl_seconds: int) -> SignedCookies: ...


class SigningFailedError(DependencyUnavailableError):
    """The signer refused the video's object key: the catalog entry cannot be served (no grant)."""


@dataclass(frozen=True)
class Grant:
    """Permission to fetch one video's bytes from the CDN until ``expires_at``.

    ``cookies`` (CloudFront-* name → value, for ``cookie_path`` on the CDN) is
    filled only for HLS, whose segment requests cannot carry the URL's signature.
    """

    url: str
    expires_at: datetime
    content_type: str
    key_pair_id: str
    video_id: str
    cookies: dict[str, str] = field(default_factory=dict)
    cookie_path: str = "/"

    def to_public(self) -> dict[str, str]:
        """The body of ``POST /api/videos/{id}/playback`` (docs/openapi.yaml)."""
        return {
            "url": self.url,
            "expires_at": iso_utc(self.expires_at),
            "content_type": self.content_type,
        }


def iso_utc(moment: datetime) -> str:
    """``moment`` as ISO-8601 UTC to the second: ``2026-12-01T00:05:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Decision:
    """The rule's answer for one viewer and one video, before anything is signed.

    ``entitlement`` is the one read for the answer (None for a free video,
    which needs none); ``refusal`` is the error a grant would raise, None
    when the viewer may play the video.
    """

    video: Video
    entitlement: Entitlement | None
    refusal: PremiumRequiredError | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


class PlaybackRule:
    """May this viewer play this video: the rule, without signing; one per process."""

    def __init__(
        self,
        entitlements: EntitlementReader,
        catalog: VideoReader,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._entitlements = entitlements
        self._catalog = catalog
        self._clock = clock

    def decide(self, user_id: str, video_id: str, now: datetime | None = None) -> Decision:
        """Whether ``user_id`` may play ``video_id`` at ``now`` (default: the clock).

        A refusal for want of premium is an answer (``Decision.refusal``), not
        an exception: the watch page shows the upsell page for it.

        :raises VideoNotFoundError: no published video has this id.
        :raises DependencyUnavailableError: DynamoDB could not be read (fail closed).
        """
        moment = now if now is not None else self._clock()
        video = self._catalog.get(video_id)
        if video.tier == "free":
            return Decision(video, None)
        # Anything but "free" needs an active entitlement: an unknown tier fails closed.
        entitlement = self._entitlements.get(user_id)
        if entitlement.is_active(moment):
            return Decision(video, entitlement)
        refusal = PremiumRequiredError(f"video {video_id} needs active premium")
        return Decision(video, entitlement, refusal)


class Playback:
    """Grants: the rule's yes, signed; one per process (it holds no per-request state)."""

    def __init__(
        self,
        entitlements: EntitlementReader,
        catalog: VideoReader,
        signer: Signer,
        *,
        ttl_seconds: int,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be a positive whole number, got {ttl_seconds!r}")
        self.rule = PlaybackRule(entitlements, catalog, clock=clock)
        self._signer = signer
        self._ttl = ttl_seconds

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def authorize(self, principal: Principal, video_id: str, now: datetime | None = None) -> Grant:
        """A grant for ``principal`` to play ``video_id``, judged at ``now`` (default: the clock).

        :raises VideoNotFoundError: no published video has this id.
        :raises PremiumRequiredError: the video is premium and the entitlement is not active.
        :raises DependencyUnavailableError: DynamoDB or the signer could not be used (no grant).
        """
        try:
            decision = self.rule.decide(principal.user_id, video_id, now)
            if decision.refusal is not None:
                raise decision.refusal
            grant = self._sign(decision.video)
        except VidgateError as exc:
            self._log(principal, video_id, decision=exc.code, reason=type(exc).__name__)
            raise
        self._log(
            principal,
            video_id,
            decision="grant",
            key_pair_id=grant.key_pair_id,
            expires_at=iso_utc(grant.expires_at),
        )
        return grant

    def _sign(self, video: Video) -> Grant:
        try:
            signed = self._signer.url_for_key(video.object_key, self._ttl)
            cookies: dict[str, str] = {}
            cookie_path = "/"
            if video.content_type.lower() in HLS_CONTENT_TYPES:
                folder = video.object_key.rpartition("/")[0]
                prefix = f"{folder}/" if folder else video.object_key
                cookies = self._signer.cookies_for_prefix(prefix, self._ttl).cookies
                cookie_path = _cookie_path(self._signer.base_url, folder)
        except ValueError as exc:  # includes InvalidObjectKeyError: a catalog entry we cannot sign
            raise SigningFailedError(f"cannot sign video {video.video_id}: {exc}") from exc
        return Grant(
            url=signed.url,
            expires_at=datetime.fromtimestamp(signed.expires_at, tz=UTC),
            content_type=video.content_type,
            key_pair_id=self._signer.key_pair_id,
            video_id=video.video_id,
            cookies=cookies,
            cookie_path=cookie_path,
        )

    @staticmethod
    def _log(principal: Principal, video_id: str, **fields: str | None) -> None:
        record = {
            "event": "playback",
            "user": principal.user_id,
            "video": video_id,
            "decision": fields.pop("decision"),
            "key_pair_id": fields.pop("key_pair_id", None),
            "expires_at": fields.pop("expires_at", None),
            **fields,
        }
        log.info(json.dumps(record, separators=(",", ":")))


def _cookie_path(base_url: str | None, folder: str) -> str:
    base_path = urlsplit(base_url or "").path.rstrip("/")
    return base_path + (object_key_to_path(folder) + "/" if folder else "/")

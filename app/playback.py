"""The playback decision: may this signed-in viewer play this video, and with which URL.

:class:`PlaybackRule` is the one place the rule lives: free videos play for
any signed-in user; premium videos only while the user's entitlement is
active (premium, and ``now`` before ``premium_until``). It signs nothing, so
the watch page asks it whether to show the player or the upsell page, and
:meth:`Playback.authorize` asks it before signing a grant. A grant costs at
most one DynamoDB round trip: the video comes from the catalog's copy of the
last second (so a catalog change made in any process counts within a second)
or, without one, is read together with the entitlement in one BatchGetItem;
a premium video's entitlement is always read fresh, a free video needs none.
Every failure to read a dependency propagates as
:class:`~app.errors.DependencyUnavailableError`: the decision fails closed
and never signs by default. Each grant and refusal is logged as one
JSON line (user, video, decision, key id, expiry, format): the audit trail
of who got which URL. Collaborators come in through the constructor; no
boto3, no Flask, no environment here.

A video with an HLS rendition is granted as HLS unless the caller asks for
the MP4: a signed URL of the master playlist plus signed cookies whose custom
policy opens exactly ``<site>/videos/<id>/hls/*`` (the folder comes from the
video id, never from where a playlist happens to sit), for cookie path
``/videos/<id>/``. An MP4 grant is one signed URL and no cookies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from app.catalog import HLS_CONTENT_TYPE, Format, hls_folder, video_folder
from app.errors import (
    DependencyUnavailableError,
    NotFoundError,
    PremiumRequiredError,
    VidgateError,
)
from app.signing import object_key_to_path
from app.streams import Heartbeat, Plan, Stream, ViewerState

if TYPE_CHECKING:
    from app.auth import Principal
    from app.catalog import Video
    from app.dynamo import KeyRead
    from app.entitlements import Condition, Entitlement
    from app.signing import SignedFolder, SignedUrl

log = logging.getLogger("vidgate.playback")
_T = TypeVar("_T")


class EntitlementReader(Protocol):
    """What :class:`app.entitlements.EntitlementStore` offers the decision."""

    def get(self, user_id: str) -> Entitlement: ...

    def read_of(self, user_id: str) -> KeyRead[Entitlement]: ...


class VideoReader(Protocol):
    """What :class:`app.catalog.VideoCatalog` offers the decision."""

    def recent(self, video_id: str) -> Video | None: ...

    def get_with(self, video_id: str, other: KeyRead[_T]) -> tuple[Video, _T]: ...


class RentalStarter(Protocol):
    """What :class:`app.purchases.RentalClock` offers: start a rental's window at its first play."""

    def start(self, user_id: str, video_id: str, payment: str, now: datetime) -> None: ...


class Signer(Protocol):
    """What :class:`app.signing.UrlSigner` offers the decision."""

    key_pair_id: str
    base_url: str | None

    def url_for_key(self, object_key: str, ttl_seconds: int) -> SignedUrl: ...

    def sign_folder(self, folder: str, entry_key: str, ttl_seconds: int) -> SignedFolder: ...


class EventEmitter(Protocol):
    """What :class:`app.viewing_events.ViewingEvents` offers: ``emit`` never raises or blocks."""

    def emit(
        self,
        event_type: str,
        *,
        sub: str,
        plan: str,
        video_id: str | None = None,
        video_tier: str | None = None,
        session_id: str | None = None,
        **measures: object,
    ) -> bool: ...


class StreamKeeper(Protocol):
    """What :class:`app.streams.StreamStore` offers the grant."""

    heartbeat_seconds: int

    def read_of(self, user_id: str, *, history: bool = False) -> KeyRead[ViewerState]: ...

    def get(self, user_id: str, *, history: bool = False) -> ViewerState: ...

    def open(
        self,
        state: ViewerState,
        *,
        video_id: str,
        title: str,
        device: str,
        plan: Plan,
        position: float = 0.0,
        duration: float = 0.0,
        now: datetime | None = None,
    ) -> Stream: ...

    def renew(
        self,
        state: ViewerState,
        session_id: str,
        *,
        video_id: str,
        title: str,
        beat: Heartbeat,
        now: datetime | None = None,
    ) -> Stream: ...

    def heartbeat(
        self,
        user_id: str,
        session_id: str,
        *,
        video_id: str,
        title: str,
        duration: float,
        beat: Heartbeat,
        entitled: Condition | None,
        now: datetime | None = None,
    ) -> tuple[Stream, Entitlement] | None: ...


@dataclass(frozen=True)
class StreamRequest:
    """What a playback request says about its stream: new (no ``session_id``) or a renewal."""

    session_id: str | None = None
    beat: Heartbeat = field(default_factory=Heartbeat)
    device: str = "Unknown device"


class SigningFailedError(DependencyUnavailableError):
    """The signer refused the video's object key: the catalog entry cannot be served (no grant)."""


class UnplayableVideoError(DependencyUnavailableError):
    """The catalog entry names no media a grant may sign (no MP4, no HLS in its own folder)."""


class FormatUnavailableError(NotFoundError):
    """The caller asked for a format (``hls`` or ``mp4``) this video does not have."""


@dataclass(frozen=True)
class Grant:
    """Permission to fetch one video's bytes from the CDN until ``expires_at``.

    ``cookies`` (CloudFront-* name → value, for ``cookie_path`` on the CDN) is
    filled only for HLS, whose playlist and segment requests cannot carry the
    URL's signature; they live ``lifetime_seconds``, as long as their policy.
    """

    url: str
    expires_at: datetime
    content_type: str
    key_pair_id: str
    video_id: str
    format: Format = "mp4"
    cookies: dict[str, str] = field(default_factory=dict)
    cookie_path: str = "/"
    lifetime_seconds: int = 0
    session_id: str | None = None
    heartbeat_seconds: int | None = None

    def to_public(self) -> dict[str, Any]:
        """The body of ``POST /api/videos/{id}/playback`` (docs/openapi.yaml ``Grant``)."""
        body: dict[str, Any] = {
            "url": self.url,
            "expires_at": iso_utc(self.expires_at),
            "content_type": self.content_type,
            "format": self.format,
        }
        if self.cookies:
            body["cookies"] = dict(self.cookies)
            body["cookie_path"] = self.cookie_path
        if self.session_id is not None:
            body["session_id"] = self.session_id
            body["heartbeat_seconds"] = self.heartbeat_seconds
        return body


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
    basis: Literal["free", "premium", "owned", "rental", None] = None
    starts_rental: bool = False

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
        video = self._catalog.recent(video_id)
        if video is not None and _is_free(video):
            return Decision(video, None, basis="free")
        if video is None:
            # One round trip: the video, and the entitlement it may need.
            video, entitlement = self._catalog.get_with(
                video_id, self._entitlements.read_of(user_id)
            )
            if _is_free(video):
                return Decision(video, None, basis="free")
        else:
            entitlement = self._entitlements.get(user_id)
        return self.judge(video, entitlement, moment)

    @staticmethod
    def judge(video: Video, entitlement: Entitlement, moment: datetime) -> Decision:
        """The rule itself, on a video and an entitlement already read."""
        if _is_free(video):
            return Decision(video, None, basis="free")
        if entitlement.premium_active(moment):
            return Decision(video, entitlement, basis="premium")
        # Bought or rented through Stripe: read with the entitlement, no further trip.
        paid = entitlement.paid.get(video.video_id)
        if paid is not None and paid.allows(moment):
            if paid.kind == "own":
                return Decision(video, entitlement, basis="owned")
            return Decision(
                video, entitlement, basis="rental", starts_rental=paid.needs_start(moment)
            )
        refusal = PremiumRequiredError(f"video {video.video_id} needs active premium")
        return Decision(video, entitlement, refusal)

    def now(self) -> datetime:
        return self._clock()


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
        rentals: RentalStarter | None = None,
        streams: StreamKeeper | None = None,
        events: EventEmitter | None = None,
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be a positive whole number, got {ttl_seconds!r}")
        self.rule = PlaybackRule(entitlements, catalog, clock=clock)
        self._signer = signer
        self._ttl = ttl_seconds
        self._rentals = rentals
        self._clock = clock
        self._catalog = catalog
        self.streams = streams
        self.events = events

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def authorize(
        self,
        principal: Principal,
        video_id: str,
        now: datetime | None = None,
        *,
        requested: Format | None = None,
        stream: StreamRequest | None = None,
    ) -> Grant:
        """A grant for ``principal`` to play ``video_id``, judged at ``now`` (default: the clock).

        ``requested`` picks the format; None means HLS when the video has it, else MP4.
        With a stream store, ``stream`` opens a playback session (no ``session_id``)
        or renews one (a heartbeat), and the grant carries the ``session_id``.

        :raises VideoNotFoundError: no published video has this id.
        :raises PremiumRequiredError: the video is premium and the entitlement is not active.
        :raises FormatUnavailableError: the video has no rendition in ``requested``.
        :raises TooManyStreamsError: opening one more stream would pass the plan's limit.
        :raises SessionEndedError: the renewed session is over.
        :raises DependencyUnavailableError: DynamoDB or the signer could not be used, or
            the catalog entry has nothing playable (no grant).
        """
        try:
            if self.streams is None:
                decision = self.rule.decide(principal.user_id, video_id, now)
                if decision.refusal is not None:
                    raise decision.refusal
                if decision.starts_rental and decision.entitlement is not None:
                    self._start_rental(decision, now)
                grant = self._sign(decision.video, _pick_format(decision.video, requested))
            else:
                grant = self._authorize_stream(
                    self.streams, principal, video_id, now, requested, stream or StreamRequest()
                )
        except VidgateError as exc:
            self._log(principal, video_id, decision=exc.code, reason=type(exc).__name__)
            raise
        self._log(
            principal,
            video_id,
            decision="grant",
            key_pair_id=grant.key_pair_id,
            expires_at=iso_utc(grant.expires_at),
            format=grant.format,
            **({"session": grant.session_id} if grant.session_id else {}),
        )
        return grant

    def _start_rental(self, decision: Decision, now: datetime | None) -> None:
        """The first play of a rental starts its window (refused when nothing can record it)."""
        assert decision.entitlement is not None
        video_id = decision.video.video_id
        paid = decision.entitlement.paid[video_id]
        if self._rentals is None:
            raise DependencyUnavailableError("no rental clock: a rental cannot start")
        moment = now if now is not None else self._clock()
        self._rentals.start(decision.entitlement.user_id, video_id, paid.payment, moment)

    def preview(
        self, principal: Principal, video: Video, *, requested: Format | None = None
    ) -> Grant:
        """A grant for an admin to preview ``video``, published or not, whatever their plan.

        The caller has checked that ``principal`` is an admin now; the signing is the
        grants' own, and the grant is logged with ``decision="admin_preview"``.

        :raises FormatUnavailableError: the video has no rendition in ``requested``.
        :raises DependencyUnavailableError: the signer could not be used, or the
            catalog entry has nothing playable.
        """
        try:
            grant = self._sign(video, _pick_format(video, requested))
        except VidgateError as exc:
            self._log(principal, video.video_id, decision=exc.code, reason=type(exc).__name__)
            raise
        self._log(
            principal,
            video.video_id,
            decision="admin_preview",
            key_pair_id=grant.key_pair_id,
            expires_at=iso_utc(grant.expires_at),
            format=grant.format,
        )
        return grant

    def _authorize_stream(
        self,
        streams: StreamKeeper,
        principal: Principal,
        video_id: str,
        now: datetime | None,
        requested: Format | None,
        stream: StreamRequest,
    ) -> Grant:
        """The grant with its playback session: the read the rule needs also brings the
        viewer's stream slots, then one conditional write opens or renews the session."""
        moment = now if now is not None else self.rule.now()
        renewing = stream.session_id is not None
        video = self._catalog.recent(video_id)
        if renewing and video is not None:
            fast = self._renew_without_read(streams, principal, video, moment, requested, stream)
            if fast is not None:
                return fast
        read = streams.read_of(principal.user_id, history=renewing)
        if video is None:
            video, state = self._catalog.get_with(video_id, read)
        else:
            state = streams.get(principal.user_id, history=renewing)
        plan: Plan = "premium" if state.entitlement.premium_active(moment) else "free"
        about = {
            "sub": principal.user_id,
            "plan": plan,
            "video_id": video.video_id,
            "video_tier": video.tier,
        }
        try:
            decision = self.rule.judge(video, state.entitlement, moment)
            if decision.refusal is not None:
                raise decision.refusal
            if decision.starts_rental and decision.entitlement is not None:
                self._start_rental(decision, moment)
            # Signed before the write: a signature that fails leaves no slot behind.
            grant = self._sign(video, _pick_format(video, requested))
            beat = stream.beat
            if stream.session_id is not None:
                opened = streams.renew(
                    state,
                    stream.session_id,
                    video_id=video.video_id,
                    title=video.title,
                    beat=beat,
                    now=moment,
                )
            else:
                opened = streams.open(
                    state,
                    video_id=video.video_id,
                    title=video.title,
                    device=stream.device,
                    plan=plan,
                    position=beat.position,
                    duration=video.duration_seconds,
                    now=moment,
                )
        except VidgateError as exc:
            if self.events is not None and exc.status < 500:
                self.events.emit("refusal", **about, session_id=stream.session_id, reason=exc.code)
            raise
        if self.events is not None:
            if stream.session_id is None:
                self.events.emit(
                    "grant", **about, session_id=opened.session_id, format=grant.format
                )
            else:
                self._emit_heartbeat(about, opened, grant, beat)
        return replace(
            grant, session_id=opened.session_id, heartbeat_seconds=streams.heartbeat_seconds
        )

    def _renew_without_read(
        self,
        streams: StreamKeeper,
        principal: Principal,
        video: Video,
        moment: datetime,
        requested: Format | None,
        stream: StreamRequest,
    ) -> Grant | None:
        """The hot path of a heartbeat: sign, then ONE conditional write that checks the slot
        and the entitlement (no read); None when the condition fails, to read and decide."""
        from app.entitlements import active_condition

        assert stream.session_id is not None
        grant = self._sign(video, _pick_format(video, requested))
        done = streams.heartbeat(
            principal.user_id,
            stream.session_id,
            video_id=video.video_id,
            title=video.title,
            duration=video.duration_seconds,
            beat=stream.beat,
            entitled=None if _is_free(video) else active_condition(video.video_id, moment),
            now=moment,
        )
        if done is None:
            return None
        renewed, entitlement = done
        if self.events is not None:
            about = {
                "sub": principal.user_id,
                "plan": "premium" if entitlement.premium_active(moment) else "free",
                "video_id": video.video_id,
                "video_tier": video.tier,
            }
            self._emit_heartbeat(about, renewed, grant, stream.beat)
        return replace(
            grant, session_id=renewed.session_id, heartbeat_seconds=streams.heartbeat_seconds
        )

    def _emit_heartbeat(
        self, about: dict[str, str], renewed: Stream, grant: Grant, beat: Heartbeat
    ) -> None:
        assert self.events is not None
        if beat.startup_ms is not None:
            self.events.emit(
                "start", **about, session_id=renewed.session_id, startup_ms=beat.startup_ms
            )
        self.events.emit(
            "heartbeat",
            **about,
            session_id=renewed.session_id,
            format=grant.format,
            position_s=beat.position,
            watched_s=renewed.watched_s,
            rendition=beat.rendition,
            bitrate=beat.bitrate,
            stall_ms=beat.stall_ms,
        )

    def _sign(self, video: Video, media: Format) -> Grant:
        try:
            if media == "hls":
                return self._sign_hls(video)
            signed = self._signer.url_for_key(video.object_key, self._ttl)
        except ValueError as exc:  # includes InvalidObjectKeyError: a catalog entry we cannot sign
            raise SigningFailedError(f"cannot sign video {video.video_id}: {exc}") from exc
        return Grant(
            url=signed.url,
            expires_at=datetime.fromtimestamp(signed.expires_at, tz=UTC),
            content_type=video.content_type,
            key_pair_id=self._signer.key_pair_id,
            video_id=video.video_id,
            format="mp4",
        )

    def _sign_hls(self, video: Video) -> Grant:
        if video.hls_key is None:
            raise UnplayableVideoError(f"video {video.video_id} has no HLS playlist")
        folder = self._signer.sign_folder(hls_folder(video.video_id), video.hls_key, self._ttl)
        return Grant(
            url=folder.url,
            expires_at=datetime.fromtimestamp(folder.expires_at, tz=UTC),
            content_type=HLS_CONTENT_TYPE,
            key_pair_id=self._signer.key_pair_id,
            video_id=video.video_id,
            format="hls",
            cookies=folder.cookies,
            cookie_path=_cookie_path(self._signer.base_url, video_folder(video.video_id)),
            lifetime_seconds=folder.lifetime_seconds,
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


def _is_free(video: Video) -> bool:
    """Free plays for anyone signed in; anything else, an unknown tier too, needs premium."""
    return video.tier == "free"


def _pick_format(video: Video, requested: Format | None) -> Format:
    formats = video.formats  # never HLS whose playlist lies outside videos/<id>/hls/
    if requested is None:
        if not formats:
            raise UnplayableVideoError(f"video {video.video_id} has no playable media")
        return formats[0]
    if requested not in formats:
        raise FormatUnavailableError(f"this video has no {requested} rendition")
    return requested


def _cookie_path(base_url: str | None, folder: str) -> str:
    """The URL path of key ``folder`` (ending with ``/``) on the CDN, after its own path."""
    return urlsplit(base_url or "").path.rstrip("/") + object_key_to_path(folder)

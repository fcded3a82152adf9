"""The viewer API: playback grants, the catalog and ``/api/me``.

One handler answers API Gateway HTTP API events (payload format 2.0) for
the viewer routes of the HTTP API (docs/openapi.yaml)::

    POST /api/videos/{id}/playback   Bearer access token, body {} or {"format": "hls"|"mp4"}
                                     opens a stream; {"session_id", "position", …} renews it
                                     (the heartbeat) → {url, expires_at, content_type, format,
                                     session_id, heartbeat_seconds[, cookies, cookie_path]}
                                     (+ Set-Cookie CloudFront-* for HLS) · 409 too_many_streams
                                     (with active) / session_ended
    DELETE /api/playback-sessions/{session_id}   Bearer → 204: ends one of the viewer's streams
    GET  /api/me/streams             Bearer → {items}: the viewer's live streams
    GET  /api/videos?limit&cursor[&q&category&sort]
                                     anyone → {items, next_cursor} (app.search)
    GET  /api/videos/{id}            anyone → item
    GET  /api/me                     Bearer access token → the viewer and their premium state

It verifies the bearer token itself (access tokens only; an id token is a
401), so it works behind any integration, with or without an API Gateway
authorizer. Parsing, routing and the error → HTTP mapping live in
:mod:`app.http.router`; the decision lives in :mod:`app.playback`. Settings and
:class:`~app.services.Services` are built once per process, on the first
event; the CloudFront private key is loaded then too, so no request pays for
it. Without its key the process keeps running and every grant answers 503
``unavailable`` (the key is retried at most every few seconds): never a URL
signed with anything else. No Flask here: the viewer Lambda function and the
web app (through ``app.web.apigw``) call it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from app.auth import Principal, extract_bearer
from app.catalog import FORMATS, Format, poster_url
from app.config import Need, load_settings
from app.dynamo import parse_limit
from app.errors import (
    BadRequestError,
    DependencyUnavailableError,
    UserNotFoundError,
    VidgateError,
)
from app.http.router import Request, Response, Router, json_response
from app.metrics import PROCESS as PROCESS_METRICS
from app.metrics import PlaybackMetrics
from app.playback import Grant, Playback, StreamRequest, iso_utc
from app.search import parse_query
from app.services import Services
from app.streams import Heartbeat, Stream, check_session_id, device_label

log = logging.getLogger("vidgate.http.viewer")
logging.getLogger("vidgate").setLevel(logging.INFO)  # grants and refusals are the audit trail

NEEDS = frozenset({Need.COGNITO, Need.TABLES, Need.SIGNING, Need.EVENTS})
"""What this function needs from the environment (app.config)."""

DEFAULT_PAGE_SIZE = 20
SIGNER_RETRY_SECONDS = 10.0
"""After the signing key failed to load, how long grants answer 503 before it is tried again."""


GRANT_FIELDS = frozenset(
    {"format", "session_id", "position", "rendition", "bitrate", "stall_ms", "startup_ms"}
)
"""The fields a playback request body may have; any other is a 400."""
HEARTBEAT_FIELDS = GRANT_FIELDS - {"format", "session_id"}
_MAX_SECONDS = 7 * 24 * 3600.0
_MAX_MS = 3600 * 1000.0


class SignerUnavailableError(DependencyUnavailableError):
    """The signing key failed to load recently; no URL until it loads."""


def parse_grant_body(body: Mapping[str, Any]) -> Format | None:
    """The format a playback request asks for (None: the video's best).

    :raises BadRequestError: an unknown field, or a format other than ``hls`` / ``mp4``.
    """
    unknown = sorted(set(body) - GRANT_FIELDS)
    if unknown:
        raise BadRequestError(
            f"unknown field(s) {', '.join(unknown)[:200]}; "
            f"allowed: {', '.join(sorted(GRANT_FIELDS))}"
        )
    if "format" not in body:
        return None
    wanted = body["format"]
    if not isinstance(wanted, str) or wanted not in FORMATS:
        raise BadRequestError('format must be "hls" or "mp4"')
    return "hls" if wanted == "hls" else "mp4"


def _number(body: Mapping[str, Any], name: str, top: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
        raise BadRequestError(f"{name} must be a number from 0 to {top:g}")
    return float(value)


def parse_stream_body(body: Mapping[str, Any], user_agent: str | None) -> StreamRequest:
    """The stream part of a playback request: a new stream, or a renewal's heartbeat.

    :raises BadRequestError: a malformed session id or measure, or a heartbeat
        field without a ``session_id``.
    """
    session_id = body.get("session_id")
    if session_id is None:
        if HEARTBEAT_FIELDS & set(body) - {"position"}:
            raise BadRequestError("heartbeat fields need the session_id of the stream")
    else:
        session_id = check_session_id(session_id)
    rendition = body.get("rendition")
    if rendition is not None and not (
        isinstance(rendition, str) and 0 < len(rendition) <= 32 and rendition.isprintable()
    ):
        raise BadRequestError("rendition must be a short label such as 720p")
    bitrate = _number(body, "bitrate", 1e9)
    beat = Heartbeat(
        position=_number(body, "position", _MAX_SECONDS) or 0.0,
        rendition=rendition,
        bitrate=int(bitrate) if bitrate is not None else None,
        stall_ms=_number(body, "stall_ms", _MAX_MS),
        startup_ms=_number(body, "startup_ms", _MAX_MS),
    )
    return StreamRequest(session_id=session_id, beat=beat, device=device_label(user_agent))


def end_stream_of(
    services: Services,
    user_id: str,
    session_id: str,
    *,
    position: float | None = None,
    error: object = None,
    reason: object = None,
) -> Stream:
    """End ``user_id``'s own live stream, keep its position, report stop (and error) events.

    ``reason`` is why the player stopped (:data:`STOP_REASONS`; None: ended from elsewhere,
    e.g. the account page); the stop event carries it and the seconds watched since the
    last heartbeat.

    :raises SessionNotFoundError: the viewer has no live stream with this id.
    :raises BadRequestError: a malformed session id, error code or reason.
    """
    check_session_id(session_id)
    if error is not None and not (
        isinstance(error, str) and 0 < len(error) <= 64 and error.isprintable()
    ):
        raise BadRequestError("error must be a short code such as media_error")
    if reason is not None and reason not in STOP_REASONS:
        raise BadRequestError("reason must be one of " + ", ".join(STOP_REASONS))
    stream = services.streams.end(user_id, session_id, position=position)
    log.info(json.dumps({"event": "stream_ended", "user": user_id, "session": session_id}))
    events = services.viewing_events
    if events is not None:
        about = {
            "sub": user_id,
            "plan": stream.plan,
            "video_id": stream.video_id,
            "session_id": stream.session_id,
        }
        if error is not None:
            events.emit("error", **about, reason=str(error), position_s=position)
        events.emit("stop", **about, position_s=position, watched_s=stream.watched_s, reason=reason)
    return stream


STOP_REASONS = ("ended", "closed", "stopped")
"""Why a player ends its stream: the video's end, the page closed, the viewer or an error."""


def grant_cookie_headers(grant: Grant, *, secure: bool) -> list[str]:
    """One ``Set-Cookie`` value per CloudFront cookie of ``grant`` (docs/cloudfront-signing.md#k-2).

    The cookies live exactly as long as their policy (``Max-Age`` and
    ``Expires``), on ``grant.cookie_path``, ``HttpOnly; SameSite=Lax``, and
    ``Secure`` when the site is served over HTTPS; no ``Domain`` (host-only).
    """
    expires = email.utils.formatdate(grant.expires_at.timestamp(), usegmt=True)
    flags = "; Secure; HttpOnly; SameSite=Lax" if secure else "; HttpOnly; SameSite=Lax"
    return [
        f"{name}={value}; Path={grant.cookie_path}; Max-Age={grant.lifetime_seconds}; "
        f"Expires={expires}{flags}"
        for name, value in grant.cookies.items()
    ]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ViewerApi:
    """The route table of the viewer API over one :class:`Services`; call it with an event."""

    def __init__(
        self,
        services: Services,
        *,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: PlaybackMetrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.services = services
        self._clock = clock
        self._monotonic = monotonic
        self._metrics = metrics if metrics is not None else PROCESS_METRICS
        self._timer = timer
        self._playback: Playback | None = None
        self._signer_failed_at: float | None = None
        self._lock = threading.Lock()
        self.router = Router()
        self.router.add("POST", "/api/videos/{id}/playback", self.playback)
        self.router.add("GET", "/api/videos", self.list_videos)
        self.router.add("GET", "/api/videos/{id}", self.get_video)
        self.router.add("GET", "/api/me", self.me)
        self.router.add("GET", "/api/me/streams", self.my_streams)
        self.router.add("DELETE", "/api/playback-sessions/{session_id}", self.end_stream)

    def __call__(self, event: object, context: object = None) -> dict[str, Any]:
        return self.router.handle(event)

    # --- start-up ------------------------------------------------------------------

    def warm(self) -> None:
        """Build what requests need now (clients, the signing key), logging what failed."""
        try:
            self._decider()
        except DependencyUnavailableError:
            pass  # logged by _decider; grants answer 503 until the key loads
        except Exception:
            log.exception(json.dumps({"event": "warm_failed"}))

    def _decider(self) -> Playback:
        """The :class:`Playback`, built once; without its key, 503 (retried now and then)."""
        if self._playback is not None:
            return self._playback
        with self._lock:
            if self._playback is not None:
                return self._playback
            now = self._monotonic()
            failed_at = self._signer_failed_at
            if failed_at is not None and now - failed_at < SIGNER_RETRY_SECONDS:
                raise SignerUnavailableError("the CloudFront signing key is unavailable")
            try:
                self._playback = self.services.playback
            except DependencyUnavailableError as exc:
                self._signer_failed_at = now
                log.error(json.dumps({"event": "signing_key_unavailable", "detail": str(exc)}))
                raise
            self._signer_failed_at = None
            return self._playback

    # --- helpers -------------------------------------------------------------------

    def _principal(self, request: Request) -> Principal:
        token = extract_bearer(request.header("authorization"))
        return self.services.access_verifier.verify(token)

    # --- views ---------------------------------------------------------------------

    def playback(self, request: Request) -> Response:
        started = self._timer()
        try:
            response, renewal = self._playback_response(request)
        except VidgateError as exc:
            self._metrics.refused(exc.code, (self._timer() - started) * 1000)
            raise
        except Exception:
            self._metrics.refused("internal", (self._timer() - started) * 1000)
            raise
        self._metrics.granted((self._timer() - started) * 1000, renewal=renewal)
        return response

    def _playback_response(self, request: Request) -> tuple[Response, bool]:
        principal = self._principal(request)
        body = request.json_object()
        # A renewal names the stream it continues (playback sessions); anything else opens one.
        renewal = body.get("session_id") is not None
        requested = parse_grant_body(body)
        stream = parse_stream_body(body, request.header("user-agent"))
        grant = self._decider().authorize(
            principal, request.path_params["id"], self._clock(), requested=requested, stream=stream
        )
        response = json_response(grant.to_public())
        secure = self.services.settings.cdn_url.startswith("https://")
        response.cookies = grant_cookie_headers(grant, secure=secure)
        return response, renewal

    def my_streams(self, request: Request) -> Response:
        principal = self._principal(request)
        streams = self.services.streams.active(principal.user_id)
        return json_response({"items": [stream.to_public() for stream in streams]})

    def end_stream(self, request: Request) -> Response:
        """Ends one of the viewer's own streams (a stopped player, or "end that stream")."""
        principal = self._principal(request)
        session_id = check_session_id(request.path_params["session_id"])
        body = request.json_object()
        end_stream_of(
            self.services,
            principal.user_id,
            session_id,
            position=_number(body, "position", _MAX_SECONDS),
            error=body.get("error"),
            reason=body.get("reason"),
        )
        return Response(status=204)

    def list_videos(self, request: Request) -> Response:
        limit = parse_limit(request.query.get("limit"), DEFAULT_PAGE_SIZE)
        cursor = request.query.get("cursor") or None
        query = parse_query(
            request.query.get("q"), request.query.get("category"), request.query.get("sort")
        )
        videos, next_cursor = self.services.search.browse(query, limit, cursor)
        cdn_url = self.services.settings.cdn_url
        items = [video.to_public(poster_url(video, cdn_url)) for video in videos]
        return json_response({"items": items, "next_cursor": next_cursor})

    def get_video(self, request: Request) -> Response:
        video = self.services.catalog.get(request.path_params["id"])
        return json_response(video.to_public(poster_url(video, self.services.settings.cdn_url)))

    def me(self, request: Request) -> Response:
        principal = self._principal(request)
        now = self._clock()
        try:
            record = self.services.users.get(principal.user_id)
        except UserNotFoundError:
            # Signed in, but no record yet (the sign-up trigger has not run): not premium.
            email, premium, until = principal.email, False, None
        else:
            email = principal.email or record.email or None
            # Premium from an admin grant or a paid subscription (docs/selling.md#decision).
            entitlement = self.services.entitlements.get(principal.user_id)
            premium = entitlement.premium_active(now)
            until = entitlement.premium_until
            if premium and not entitlement.is_active(now):
                until = entitlement.stripe_until
        return json_response(
            {
                "user_id": principal.user_id,
                "username": principal.username,
                "email": email,
                "premium": premium,
                "premium_until": iso_utc(until) if until is not None else None,
                "groups": list(principal.groups),
            }
        )


def make_handler(services: Services, *, warm: bool = True) -> ViewerApi:
    """A handler over ``services`` (tests and the web app pass theirs); ``warm`` loads the key."""
    api = ViewerApi(services)
    if warm:
        api.warm()
    return api


def from_environment() -> ViewerApi:
    """The process-wide API of the Lambda function: settings from the environment, once."""
    return make_handler(Services(load_settings(os.environ, NEEDS)))

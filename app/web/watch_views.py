"""The viewer's pages: the catalog (``/``), the watch page, the upsell page, and the grant route.

The catalog lists published videos a page at a time (``?limit=&cursor=``,
the cursor being the catalog's own opaque one). The watch page is for
signed-in users; whether it shows the player or the upsell page is the answer
of the playback rule (:class:`app.playback.PlaybackRule`, which grants obey
too), asked on the server before anything is rendered: a premium video for a
user whose entitlement is not active gets a normal page explaining premium, never
a player that would fail. The player (``static/player.js``) gets its signed
URLs from ``POST /watch/<id>/grant``, a same-origin route protected by the
session cookie and the ``X-CSRF-Token`` header (checked by
:mod:`app.web.csrf` before any view runs): it calls the very playback Lambda
handler the HTTP API uses, through :func:`app.web.apigw.invoke_as`, with the
session's Cognito access token, and returns the handler's answer unchanged.
The token stays on the server; page JavaScript only ever sees
``{url, expires_at, content_type}`` or ``{error, message}``.

One viewer API handler is built per app (it loads the CloudFront key once,
at start) and kept on ``app.extensions[VIEWER_API_EXTENSION]``; a module that
mounts ``/api`` may build it first, and this one then reuses it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from app.catalog import CATEGORIES, Video, poster_url
from app.dynamo import MAX_PAGE_SIZE, parse_limit
from app.errors import BadRequestError, DependencyUnavailableError, UserNotFoundError
from app.http.viewer import grant_cookie_headers, make_handler, parse_grant_body
from app.search import MAX_QUERY_LENGTH, parse_query
from app.services import Services
from app.web.apigw import Handler, invoke_as
from app.web.context import current_services, web
from app.web.dates import format_duration
from app.web.signin import admin_required, current_user, login_required, session_access_token

log = logging.getLogger("vidgate.web.watch")

blueprint = Blueprint("watch", __name__)

VIEWER_API_EXTENSION = "vidgate.viewer_api"
"""``app.extensions`` key of the viewer API handler (``app.http.viewer``)."""
SERVICES_EXTENSION = "vidgate.services"
DEFAULT_PAGE_SIZE = 12


class BadSearchError(BadRequestError):
    """A search, category or order the catalog does not know: a friendly 400 page."""

    friendly = (
        "We could not run that search: use at most six words and 100 characters, "
        "and pick a category from the list."
    )


class BadPageLinkError(BadRequestError):
    """The catalog's ``limit`` or ``cursor`` is not one we issued: a friendly 400 page."""

    friendly = (
        "That page link is not valid (it may be out of date). "
        "Start again from the first page of videos."
    )


# --------------------------------------------------------------------------- setup


@blueprint.record_once
def _build_viewer_api(state: BlueprintSetupState) -> None:
    """One viewer API handler per app, warmed now (the signing key is read at start)."""
    app = state.app
    if VIEWER_API_EXTENSION not in app.extensions:
        services: Services = app.extensions[SERVICES_EXTENSION]
        app.extensions[VIEWER_API_EXTENSION] = make_handler(services)


def viewer_api() -> Handler:
    """This app's viewer API handler (the same code that runs in Lambda)."""
    handler: Handler = current_app.extensions[VIEWER_API_EXTENSION]
    return handler


# --------------------------------------------------------------------------- helpers


def _card(video: Video, cdn_url: str) -> dict[str, Any]:
    return {
        **video.to_public(poster_url(video, cdn_url)),
        "duration": format_duration(video.duration_seconds),
    }


def _now() -> datetime:
    return datetime.fromtimestamp(web().clock(), UTC)


def _next_video(services: Services, video_id: str) -> dict[str, str] | None:
    """The video after ``video_id`` in the catalog's first page (wrapping), offered at the end."""
    try:
        videos, _ = services.catalog.list(MAX_PAGE_SIZE, None)
    except DependencyUnavailableError:
        return None  # an offer, not the page: the video still plays without it
    ids = [video.video_id for video in videos]
    if not ids:
        return None
    following = videos[(ids.index(video_id) + 1) % len(ids) if video_id in ids else 0]
    if following.video_id == video_id:
        return None
    return {"id": following.video_id, "title": following.title}


RESUME_MIN_SECONDS = 3.0
"""A position this close to either end starts the video from the beginning."""
CONTINUE_WATCHING_MAX = 6


def _resume_at(services: Services, user_id: str, video: Video) -> float | None:
    """Where the viewer left ``video`` on any device, if that is worth resuming from."""
    try:
        entry = services.streams.get(user_id, history=True).position_of(video.video_id)
    except DependencyUnavailableError:
        return None  # an offer, not the page: the video still plays from the start
    if entry is None or entry.position < RESUME_MIN_SECONDS:
        return None
    if video.duration_seconds and entry.position > video.duration_seconds - RESUME_MIN_SECONDS:
        return None
    return entry.position


def _continue_watching(services: Services) -> list[dict[str, Any]]:
    """The signed-in viewer's unfinished videos, most recent first, with their progress."""
    user = current_user()
    if user is None:
        return []
    try:
        history = services.streams.get(user.user_id, history=True).history
    except DependencyUnavailableError:
        return []
    return [
        {
            "id": entry.video_id,
            "title": entry.title or entry.video_id,
            "progress": entry.progress,
            "left_at": format_duration(entry.position),
        }
        for entry in history
        if entry.position >= RESUME_MIN_SECONDS and entry.progress < 0.95
    ][:CONTINUE_WATCHING_MAX]


# --------------------------------------------------------------------------- pages


def _plays_premium(services: Services) -> bool:
    """Whether the visitor's premium membership is active now (signed out: no)."""
    user = current_user()
    if user is None:
        return False
    try:
        return services.users.get(user.user_id).entitlement.premium_active(_now())
    except UserNotFoundError:
        return False  # signed in, no record yet: the free plan


@blueprint.get("/")
def catalog() -> str:
    """Published videos, ``limit`` per page, following ``cursor``: searched by title
    (``q``), in a category, newest first or A-Z (``sort``); premium ones marked locked
    for visitors who cannot play them."""
    cursor = request.args.get("cursor") or None
    services = current_services()
    try:
        query = parse_query(
            request.args.get("q", "")[: MAX_QUERY_LENGTH + 1],
            request.args.get("category"),
            request.args.get("sort"),
        )
    except BadRequestError as exc:
        raise BadSearchError(str(exc)) from exc
    try:
        limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE)
        videos, next_cursor = services.search.browse(query, limit, cursor)
    except BadRequestError as exc:
        raise BadPageLinkError(str(exc)) from exc
    cdn_url = services.settings.cdn_url
    premium = _plays_premium(services)
    q = request.args.get("q", "").strip()[:MAX_QUERY_LENGTH]
    kept = {
        "q": q or None,
        "category": query.category,
        "sort": query.sort if query.sort != "newest" else None,
        "limit": limit if limit != DEFAULT_PAGE_SIZE else None,
    }
    return render_template(
        "catalog.html",
        continue_watching=_continue_watching(services) if cursor is None else [],
        videos=[
            {**_card(video, cdn_url), "locked": video.tier == "premium" and not premium}
            for video in videos
        ],
        cursor=cursor,
        next_cursor=next_cursor,
        limit=limit,
        custom_limit=limit != DEFAULT_PAGE_SIZE,
        q=q,
        query=query,
        kept=kept,
        categories=CATEGORIES,
        searching=not query.is_plain,
    )


# Under /watch/: the front door sends /videos/* to the bucket (docs/local-edge.md#front-door).
@blueprint.get("/watch/<video_id>")
def watch(video_id: str) -> str:
    """The player; the upsell page when the video is premium and the user is not; for a
    signed-out visitor, the video's public title page with "sign in to watch".

    :raises VideoNotFoundError: no published video has this id (a 404 page).
    :raises DependencyUnavailableError: DynamoDB cannot be read (a 503 page; fail closed).
    """
    user = current_user()
    services = current_services()
    if user is None:
        video = services.catalog.get(video_id)
        return render_template(
            "title.html",
            video={**_card(video, services.settings.cdn_url), "added": video.created_at},
            categories=CATEGORIES,
            here=url_for("watch.watch", video_id=video_id),
        )
    decision = services.playback_rule.decide(user.user_id, video_id, _now())
    card = _card(decision.video, services.settings.cdn_url)
    if not decision.allowed:
        entitlement = decision.entitlement
        lapsed = entitlement.premium_until if entitlement and entitlement.premium else None
        # Refused here means not premium now: the viewer is on the free plan.
        services.viewing_events.emit(
            "upsell_view",
            sub=user.user_id,
            plan="free",
            video_id=video_id,
            video_tier=decision.video.tier,
        )
        return render_template("upsell.html", video=card, lapsed_on=lapsed)
    return render_template(
        "watch.html",
        video=card,
        next_video=_next_video(services, video_id),
        resume_at=_resume_at(services, user.user_id, decision.video),
    )


@blueprint.post("/watch/<video_id>/grant")
@login_required
def grant(video_id: str) -> Response:
    """A fresh grant for the player, from the playback handler, answered unchanged.

    The JSON body (``{}`` or ``{"format": "mp4"}``) goes to the handler as sent,
    and the handler's ``Set-Cookie`` headers (the CloudFront cookies of an HLS
    grant, ``Path=/videos/<id>/``) come back to the browser, which sends them
    with the player's playlist and segment requests to the same host.
    CSRF (``X-CSRF-Token``) and the same-origin check ran before this view.
    The cookie values are left out of the JSON the page sees: the browser
    holds them as ``HttpOnly`` cookies, so page script never needs them.
    """
    token = session_access_token()
    response = invoke_as(
        viewer_api(), request, path=f"/api/videos/{video_id}/playback", access_token=token
    )
    body = response.get_json(silent=True)
    if isinstance(body, dict) and "cookies" in body:
        del body["cookies"]
        response.set_data(json.dumps(body, separators=(",", ":")))
    return response


# --------------------------------------------------------------------------- admin preview


@blueprint.get("/watch/<video_id>/preview")
@admin_required
def preview(video_id: str) -> str:
    """Any video, published or not, in the player, for an admin whatever their plan.

    The preview is recorded (who, what, when) before the page is shown; the
    player's grants come from :func:`preview_grant`.

    :raises VideoNotFoundError: no video has this id (a 404 page).
    """
    user = current_user()
    assert user is not None  # admin_required
    services = current_services()
    video = services.catalog.get_any(video_id)
    services.previews.record(video_id, actor_id=user.user_id, actor=user.username)
    log.info(
        json.dumps({"event": "admin_preview_opened", "video": video_id, "actor": user.username})
    )
    return render_template(
        "watch.html",
        video=_card(video, services.settings.cdn_url),
        next_video=None,
        preview={"published": video.published},
        grant_url=url_for("watch.preview_grant", video_id=video_id),
    )


@blueprint.post("/watch/<video_id>/preview/grant")
@admin_required
def preview_grant(video_id: str) -> Response:
    """A grant for the admin's preview, signed like every grant (CSRF checked already).

    :raises VideoNotFoundError: no video has this id.
    :raises DependencyUnavailableError: the signing key or DynamoDB is unavailable.
    """
    user = current_user()
    assert user is not None  # admin_required
    services = current_services()
    body = request.get_json(silent=True)
    requested = parse_grant_body(body if isinstance(body, dict) else {})
    video = services.catalog.get_any(video_id)
    grant = services.playback.preview(user, video, requested=requested)
    body = grant.to_public()
    body.pop("cookies", None)  # the browser holds them as HttpOnly cookies (as in grant())
    response = current_app.response_class(
        json.dumps(body, separators=(",", ":")), mimetype="application/json"
    )
    secure = services.settings.cdn_url.startswith("https://")
    for cookie in grant_cookie_headers(grant, secure=secure):
        response.headers.add("Set-Cookie", cookie)
    return response

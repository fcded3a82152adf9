"""The admin pages under ``/admin``: premium memberships, their audit trail, and the catalog.

Every route is :func:`~app.web.signin.admin_required` (members of the
Cognito group ``admin``; anyone else gets 403, also by direct URL) and every
form is CSRF-protected by :mod:`app.web.csrf`. A premium change goes through
:meth:`app.entitlements.EntitlementStore.set_premium` with the version the
form was made from: if someone changed the user in between, nothing is
written and the page comes back (409) with a conflict message and the
current state, so the admin decides again on what is actually there.
Revoking takes a confirmation step. The audit names the admin by username.
(The admin JSON API, :mod:`app.http.admin`, is mounted at ``/api/admin``
by :func:`app.web.create_app`.)
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from app.catalog import CATEGORIES, MAX_CATEGORIES, READY, TIERS, Video
from app.dynamo import parse_limit
from app.entitlements import (
    MAX_UNTIL_LENGTH,
    MAX_UNTIL_YEAR,
    MIN_UNTIL_YEAR,
    Entitlement,
    last_day_included,
    parse_until,
    until_text,
)
from app.errors import (
    BadRequestError,
    DependencyUnavailableError,
    UserNotFoundError,
    VersionConflictError,
)
from app.search import fold
from app.streams import SessionNotFoundError
from app.users import UserRecord
from app.web.auth_views import safe_next
from app.web.context import current_services
from app.web.dates import format_duration, utc_text
from app.web.signin import admin_required, current_user

log = logging.getLogger("vidgate.web.admin")

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
RECENT_AUDIT = 10
RECENT_PREVIEWS = 10
MAX_FIELD = 4096
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- helpers


@blueprint.app_template_filter("premium_end")
def _premium_end(until: datetime | None) -> str:
    """``through 31 Dec 2030 UTC``: the end date as the admin entered it (or an em dash)."""
    return end_words(until) if until is not None else "—"


def end_words(until: datetime) -> str:
    """A premium end in the admin's date style: the last day included, or the moment."""
    day = last_day_included(until)
    if day is not None:
        return f"through {day.day} {day:%b %Y} UTC"
    return "until " + utc_text(until)


@blueprint.app_template_filter("duration")
def _duration(seconds: float) -> str:
    return format_duration(seconds)


@blueprint.app_template_filter("category_label")
def _category_label(slug: str) -> str:
    return CATEGORIES.get(slug, slug)


STATE_LABELS: dict[str, str] = {
    "published": "Published",
    "unpublished": "Ready, not published",
    "uploading": "Uploading",
    "processing": "Processing",
    "failed": "Failed",
}
"""The states the video list shows and filters on, with their labels."""


def video_state_of(video: Video) -> str:
    """The one word the admin list shows: the pipeline's state until ready, then published or
    not."""
    if video.state != READY:
        return video.state
    return "published" if video.published else "unpublished"


def preview_url(video_id: str) -> str:
    """The admin preview (served by the viewer pages, which hold the signing key)."""
    try:
        return url_for("watch.preview", video_id=video_id)
    except BuildError:
        return f"/watch/{video_id}/preview"


def add_video_url() -> str:
    """The Add video page (``/admin/videos/new``)."""
    try:
        return url_for("admin.uploads.new")
    except BuildError:
        return url_for("admin.index") + "videos/new"


@blueprint.context_processor
def admin_template_context() -> dict[str, Any]:
    """What the admin templates (the nav, the video page) use; other admin blueprints add it."""
    return {
        "add_video_url": add_video_url(),
        "video_state_of": video_state_of,
        "state_labels": STATE_LABELS,
        "preview_url": preview_url,
        "categories": CATEGORIES,
        "max_categories": MAX_CATEGORIES,
    }


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> str:
    user = current_user()
    assert user is not None  # admin_required ran
    return user.username


def _page_args() -> tuple[int, str | None]:
    limit = parse_limit(request.args.get("limit"), DEFAULT_PAGE_SIZE)
    return limit, request.args.get("cursor") or None


@dataclass(frozen=True)
class Pages:
    """Links of a paged listing: first page, next page, and the page-size form."""

    limit: int
    first_url: str | None
    next_url: str | None
    action: str
    hidden: dict[str, str]
    sizes: tuple[int, ...] = PAGE_SIZES


def _pages(
    endpoint: str,
    limit: int,
    cursor: str | None,
    next_cursor: str | None,
    *,
    path_args: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Pages:
    kept = {name: value for name, value in (query or {}).items() if value}
    where: dict[str, Any] = dict(path_args or {})
    values: dict[str, Any] = {**where, **kept, "limit": limit}
    return Pages(
        limit=limit,
        first_url=None if cursor is None else url_for(endpoint, **values),
        next_url=url_for(endpoint, **values, cursor=next_cursor) if next_cursor else None,
        action=url_for(endpoint, **where),
        hidden=kept,
    )


def _form_version() -> int:
    raw = request.form.get("version", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequestError("the form carries no valid version; reload the page")
    return int(raw)


def _back(default: str) -> str:
    """Where to go after a form: its ``next`` field if it is a local admin page."""
    target = safe_next(request.form.get("next"))
    return target if target.startswith("/admin") else default


def status_of(state: Entitlement | UserRecord, now: datetime) -> str:
    """``active`` / ``expired`` / ``free``: what the premium fields mean right now."""
    entitlement = state.entitlement if isinstance(state, UserRecord) else state
    if not entitlement.premium:
        return "free"
    return "active" if entitlement.is_active(now) else "expired"


def _user_page(
    record: UserRecord,
    *,
    status: int = 200,
    error: str | None = None,
    until_value: str = "",
) -> tuple[str, int]:
    services = current_services()
    audit, _ = services.entitlements.list_audit(record.user_id, RECENT_AUDIT, None)
    now = _now()
    state = status_of(record, now)
    if not until_value and state == "active":
        # What parse_until reads back as exactly the stored end: saving it unchanged is no change.
        until_value = until_text(record.premium_until)
    return (
        render_template(
            "admin/user.html",
            user=record,
            status=state,
            audit=audit,
            error=error,
            until_value=until_value,
            # A date picker holds whole days only; an end with a time of day (set through
            # the API) is shown as that moment, in a text field.
            until_is_date=not until_value or _is_whole_day(until_value),
            http_status=status,
            now=now,
            streams=services.streams.active(record.user_id),
        ),
        status,
    )


def _is_whole_day(text: str) -> bool:
    return _DAY.fullmatch(text) is not None


def _conflict_message(record: UserRecord) -> str:
    changed = (
        f" ({record.updated_by})" if record.updated_by and record.updated_by != "bootstrap" else ""
    )
    return (
        f"Someone else changed {record.username}'s membership{changed} while you were looking. "
        "Nothing was changed. Here is the current state; decide again."
    )


def _change_premium(user_id: str, premium: bool, until_field: str) -> Response | tuple[str, int]:
    """Apply a grant or revoke from a form; a stale form gets the conflict page."""
    services = current_services()
    record = services.users.get(user_id)
    expected = _form_version()
    try:
        until = parse_until(until_field, naive_is_utc=True) if premium else None
        state = services.entitlements.set_premium(
            user_id, premium, until, actor=_actor(), expected_version=expected
        )
    except VersionConflictError:
        current = services.users.get(user_id)
        log.info(
            json.dumps(
                {
                    "event": "admin_conflict",
                    "user_id": user_id,
                    "expected": expected,
                    "current": current.version,
                }
            )
        )
        return _user_page(
            current,
            status=409,
            error=_conflict_message(current),
        )
    except BadRequestError as exc:
        log.info(json.dumps({"event": "admin_grant_refused", "user_id": user_id}))
        return _user_page(
            record,
            status=400,
            error=until_problem(str(exc)),
            until_value=until_field[:MAX_UNTIL_LENGTH],
        )
    log.info(
        json.dumps(
            {
                "event": "premium_changed" if state.version != expected else "premium_unchanged",
                "user_id": user_id,
                "premium": premium,
                "version": state.version,
                "actor": _actor(),
                "via": "web",
            }
        )
    )
    ends = f" {end_words(state.premium_until)}" if state.premium_until else " (no end date)"
    if state.version == expected:
        flash(f"Nothing changed: {record.username} is already {_state_words(state)}.", "info")
    elif premium:
        flash(f"{record.username} is now premium{ends}.", "success")
    else:
        flash(f"{record.username} is no longer premium.", "success")
    return redirect(_back(url_for("admin.user", user_id=user_id)))


def until_problem(detail: str) -> str:
    """The sentence an admin reads for a refused end date (the domain's detail goes to no one)."""
    if "future" in detail and "far" not in detail:
        return "The end date has already passed: pick a day from today on."
    if "far" in detail or "supported" in detail or "from " in detail:
        return f"Pick an end date between {MIN_UNTIL_YEAR} and {MAX_UNTIL_YEAR}."
    if "too long" in detail:
        return "That end date is too long: pick a day in the calendar."
    return (
        "That end date is not a date we can read: pick a day in the calendar, or write a "
        "moment with its time zone, like 2026-12-31T18:00Z."
    )


def _state_words(state: Entitlement) -> str:
    if not state.premium:
        return "free"
    if state.premium_until is None:
        return "premium (no end date)"
    return f"premium {end_words(state.premium_until)}"


# --------------------------------------------------------------------------- users


@blueprint.get("/")
@admin_required
def index() -> Response:
    return redirect(url_for("admin.users"))


@blueprint.get("/users")
@admin_required
def users() -> str:
    limit, cursor = _page_args()
    prefix = request.args.get("email_prefix", "").strip()[:254]
    records, next_cursor = current_services().users.list(limit, cursor, prefix or None)
    now = _now()
    return render_template(
        "admin/users.html",
        users=[(record, status_of(record, now)) for record in records],
        pages=_pages("admin.users", limit, cursor, next_cursor, query={"email_prefix": prefix}),
        limit=limit,
        email_prefix=prefix,
        here=request.full_path.rstrip("?"),
    )


@blueprint.get("/users/<user_id>")
@admin_required
def user(user_id: str) -> tuple[str, int]:
    return _user_page(current_services().users.get(user_id))


@blueprint.post("/users/<user_id>/streams/<session_id>/end")
@admin_required
def end_stream(user_id: str, session_id: str) -> Response:
    """End one of the user's streams; the audit record is written in the same transaction."""
    services = current_services()
    record = services.users.get(user_id)
    try:
        stream = services.streams.end_by_admin(record.user_id, session_id, actor=_actor())
    except SessionNotFoundError:
        flash("That stream had already ended.", "info")
    else:
        flash(f"Ended {record.username}'s stream on {stream.device} ({stream.title}).", "success")
    return redirect(url_for("admin.user", user_id=record.user_id))


@blueprint.post("/users/<user_id>/grant")
@admin_required
def grant(user_id: str) -> Response | tuple[str, int]:
    return _change_premium(user_id, True, request.form.get("until", ""))


@blueprint.route("/users/<user_id>/revoke", methods=["GET", "POST"])
@admin_required
def revoke(user_id: str) -> Response | tuple[str, int]:
    """GET: the confirmation page. POST with ``confirm=yes``: revoke; without: confirm first."""
    record = current_services().users.get(user_id)
    if request.method == "POST" and request.form.get("confirm") == "yes":
        return _change_premium(user_id, False, "")
    source = request.form if request.method == "POST" else request.args
    raw = source.get("version", "")
    version = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else record.version
    next_page = safe_next(source.get("next"))
    return (
        render_template(
            "admin/revoke.html",
            user=record,
            version=version,
            stale=version != record.version,
            next=next_page if next_page.startswith("/admin") else "",
            status=status_of(record, _now()),
        ),
        200,
    )


# --------------------------------------------------------------------------- audit


def _audit_page(user_id: str | None) -> str:
    services = current_services()
    limit, cursor = _page_args()
    subject = services.users.get(user_id) if user_id is not None else None
    records, next_cursor = services.entitlements.list_audit(user_id, limit, cursor)
    names: dict[str, str] = {subject.user_id: subject.username} if subject else {}
    for record in records:
        if record.user_id not in names:
            try:
                names[record.user_id] = services.users.get(record.user_id).username
            except UserNotFoundError:  # a deleted user keeps their audit trail
                names[record.user_id] = record.user_id
    return render_template(
        "admin/audit.html",
        subject=subject,
        records=records,
        names=names,
        pages=(
            _pages("admin.user_audit", limit, cursor, next_cursor, path_args={"user_id": user_id})
            if user_id is not None
            else _pages("admin.audit", limit, cursor, next_cursor)
        ),
    )


@blueprint.get("/audit")
@admin_required
def audit() -> str:
    return _audit_page(None)


@blueprint.get("/users/<user_id>/audit")
@admin_required
def user_audit(user_id: str) -> str:
    return _audit_page(user_id)


# --------------------------------------------------------------------------- videos


VIDEO_FILTER_READS = 5
"""Pages of the admin listing one filtered page reads at most (the rest: "Next page")."""
TITLE_MAX = 200


@dataclass(frozen=True)
class VideoFilters:
    """The admin video list's filters (all optional)."""

    q: str = ""
    state: str = ""
    tier: str = ""

    @property
    def active(self) -> bool:
        return bool(self.q or self.state or self.tier)

    def matches(self, video: Video) -> bool:
        if self.state and video_state_of(video) != self.state:
            return False
        if self.tier and video.tier != self.tier:
            return False
        return not self.q or all(term in fold(video.title) for term in fold(self.q).split())


def _video_filters() -> VideoFilters:
    state = request.args.get("state", "")
    tier = request.args.get("tier", "")
    return VideoFilters(
        q=request.args.get("q", "").strip()[:100],
        state=state if state in STATE_LABELS else "",
        tier=tier if tier in TIERS else "",
    )


@blueprint.get("/videos")
@admin_required
def videos() -> str:
    """Every video, published or not, newest first; filtered by title, state and tier.

    Filtering reads the admin listing (the all-index) a few pages at a time and keeps
    the matches: an admin path, never a viewer's (docs/catalog.md).
    """
    limit, cursor = _page_args()
    filters = _video_filters()
    catalog = current_services().catalog
    start = cursor
    items, next_cursor = catalog.list_all(limit, cursor)
    scanned = len(items)
    if filters.active:
        found = [video for video in items if filters.matches(video)]
        reads = 1
        while len(found) < limit and next_cursor is not None and reads < VIDEO_FILTER_READS:
            more, next_cursor = catalog.list_all(limit, next_cursor)
            scanned += len(more)
            found += [video for video in more if filters.matches(video)]
            reads += 1
        items = found
    query = {"q": filters.q, "state": filters.state, "tier": filters.tier}
    return render_template(
        "admin/videos.html",
        videos=items,
        filters=filters,
        filtering=filters.active,
        scanned=scanned,
        pages=_pages("admin.videos", limit, start, next_cursor, query=query),
        here=request.full_path.rstrip("?"),
    )


def _video_form(
    video_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> tuple[str, int]:
    # The poster picker draws a local image (a blob: URL) on a canvas.
    g.csp_extra = {"img-src": ["blob:"]}
    services = current_services()
    video = services.catalog.get_any(video_id)
    form = values or {
        "title": video.title,
        "description": video.description,
        "tier": video.tier,
        "categories": list(video.categories),
    }
    try:
        previews = services.previews.recent(video_id, RECENT_PREVIEWS)
    except DependencyUnavailableError:
        previews = []  # the page still edits the video without its preview log
    return (
        render_template("admin/video.html", video=video, form=form, error=error, previews=previews),
        status,
    )


@blueprint.get("/videos/<video_id>")
@admin_required
def video(video_id: str) -> tuple[str, int]:
    return _video_form(video_id)


def video_page(video_id: str, *, status: int = 200) -> tuple[str, int]:
    """The video page as stored (other admin forms on it re-show it with their error)."""
    return _video_form(video_id, status=status)


def _video_problem(values: dict[str, Any]) -> str | None:
    """What is wrong with the edit form, in words for people (None: nothing)."""
    title = values["title"].strip()
    if not title:
        return "Give the video a title."
    if len(title) > TITLE_MAX:
        return f"The title is too long: keep it to {TITLE_MAX} characters."
    if len(values["description"]) > MAX_FIELD:
        return f"The description is too long: keep it to {MAX_FIELD} characters."
    if values["tier"] not in TIERS:
        return "Choose who may watch: Free or Premium."
    if any(slug not in CATEGORIES for slug in values["categories"]):
        return "Pick the categories from the list."
    if len(set(values["categories"])) > MAX_CATEGORIES:
        return f"Pick at most {MAX_CATEGORIES} categories."
    return None


@blueprint.post("/videos/<video_id>")
@admin_required
def update_video(video_id: str) -> Response | tuple[str, int]:
    values: dict[str, Any] = {
        "title": request.form.get("title", "")[: MAX_FIELD + 1],
        "description": request.form.get("description", "")[: MAX_FIELD + 1].replace("\r\n", "\n"),
        "tier": request.form.get("tier", ""),
        "categories": request.form.getlist("categories")[:20],
    }
    problem = _video_problem(values)
    if problem is not None:
        return _video_form(video_id, error=problem, status=400, values=values)
    try:
        updated = current_services().catalog.update(
            video_id,
            title=values["title"].strip(),
            description=values["description"],
            tier=values["tier"],
            categories=values["categories"],
        )
    except BadRequestError:
        log.info(json.dumps({"event": "video_update_refused", "video_id": video_id}))
        return _video_form(
            video_id,
            error="That could not be saved: check the fields and try again.",
            status=400,
            values=values,
        )
    log.info(json.dumps({"event": "video_updated", "video_id": video_id, "actor": _actor()}))
    flash(f"Saved “{updated.title}”.", "success")
    return redirect(url_for("admin.videos"))


@blueprint.route("/videos/<video_id>/unpublish", methods=["GET", "POST"])
@admin_required
def unpublish(video_id: str) -> Response | tuple[str, int]:
    """GET (or POST without ``confirm=yes``): the confirmation page. POST confirmed: unpublish."""
    catalog = current_services().catalog
    video = catalog.get_any(video_id)
    source = request.form if request.method == "POST" else request.args
    next_page = safe_next(source.get("next"))
    back = (
        next_page if next_page.startswith("/admin") else url_for("admin.video", video_id=video_id)
    )
    if request.method == "POST" and request.form.get("confirm") == "yes":
        if not video.published:
            flash(f"“{video.title}” was already unpublished.", "info")
            return redirect(_back(url_for("admin.videos")))
        video = catalog.unpublish(video_id)
        log.info(
            json.dumps({"event": "video_unpublished", "video_id": video_id, "actor": _actor()})
        )
        flash(f"“{video.title}” is unpublished: hidden from the catalog, not playable.", "success")
        return redirect(_back(url_for("admin.videos")))
    return (
        render_template(
            "admin/confirm.html",
            active="videos",
            heading=f"Unpublish “{video.title}”?",
            facts=[
                ("Tier", "Premium" if video.tier == "premium" else "Free"),
                ("Added", utc_text(video.created_at)),
            ],
            consequence=(
                "Viewers stop seeing it in the catalog and no new playback starts; a video"
                " already playing stops within minutes. Nothing is deleted: you can publish"
                " it again."
            ),
            action=url_for("admin.unpublish", video_id=video_id),
            confirm_label="Yes, unpublish",
            cancel_url=back,
            next=next_page if next_page.startswith("/admin") else "",
        ),
        200,
    )


@blueprint.post("/videos/<video_id>/publish")
@admin_required
def publish(video_id: str) -> Response:
    video = current_services().catalog.publish(video_id)
    log.info(json.dumps({"event": "video_published", "video_id": video_id, "actor": _actor()}))
    flash(f"“{video.title}” is published again.", "success")
    return redirect(_back(url_for("admin.videos")))


from app.web.admin_uploads import blueprint as _uploads  # noqa: E402  # after the admin routes

# Adding videos, captions and posters: /admin/videos/new, /admin/uploads/..., /admin/videos/<id>/...
blueprint.register_blueprint(_uploads)

from app.web.admin_state import blueprint as _state  # noqa: E402  # after the admin routes

# The publishing state as JSON for the pages that follow it live: /admin/videos/<id>/state
blueprint.register_blueprint(_state)

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

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.dynamo import parse_limit
from app.entitlements import (
    MAX_UNTIL_LENGTH,
    Entitlement,
    describe_end,
    parse_until,
    until_text,
)
from app.errors import BadRequestError, UserNotFoundError, VersionConflictError
from app.streams import SessionNotFoundError
from app.users import UserRecord
from app.web.auth_views import safe_next
from app.web.context import current_services
from app.web.signin import admin_required, current_user

log = logging.getLogger("vidgate.web.admin")

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
RECENT_AUDIT = 10
MAX_FIELD = 4096
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- helpers


@blueprint.app_template_filter("admin_utc")
def _utc(moment: datetime | None) -> str:
    """``2026-12-01 18:00 UTC`` (or an em dash)."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@blueprint.app_template_filter("premium_end")
def _premium_end(until: datetime | None) -> str:
    """``through 2030-12-31 UTC``: the end date as the admin entered it (or an em dash)."""
    return describe_end(until) if until is not None else "—"


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
    changed = f" by {record.updated_by}" if record.updated_by else ""
    return (
        f"Someone else changed {record.username}'s membership{changed} while you were looking "
        f"(it is now at version {record.version}). Nothing was changed. "
        "Here is the current state; decide again."
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
        return _user_page(
            record, status=400, error=str(exc), until_value=until_field[:MAX_UNTIL_LENGTH]
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
    ends = f" {describe_end(state.premium_until)}" if state.premium_until else " (no end date)"
    if state.version == expected:
        flash(f"Nothing changed: {record.username} is already {_state_words(state)}.", "info")
    elif premium:
        flash(f"{record.username} is now premium{ends}.", "success")
    else:
        flash(f"{record.username} is no longer premium.", "success")
    return redirect(_back(url_for("admin.user", user_id=user_id)))


def _state_words(state: Entitlement) -> str:
    if not state.premium:
        return "free"
    if state.premium_until is None:
        return "premium (no end date)"
    return f"premium {describe_end(state.premium_until)}"


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


@blueprint.get("/videos")
@admin_required
def videos() -> str:
    limit, cursor = _page_args()
    items, next_cursor = current_services().catalog.list_all(limit, cursor)
    return render_template(
        "admin/videos.html",
        videos=items,
        pages=_pages("admin.videos", limit, cursor, next_cursor),
    )


def _video_form(
    video_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> tuple[str, int]:
    video = current_services().catalog.get_any(video_id)
    form = values or {"title": video.title, "description": video.description, "tier": video.tier}
    return render_template("admin/video.html", video=video, form=form, error=error), status


@blueprint.get("/videos/<video_id>")
@admin_required
def video(video_id: str) -> tuple[str, int]:
    return _video_form(video_id)


@blueprint.post("/videos/<video_id>")
@admin_required
def update_video(video_id: str) -> Response | tuple[str, int]:
    values = {
        "title": request.form.get("title", "")[: MAX_FIELD + 1],
        "description": request.form.get("description", "")[: MAX_FIELD + 1].replace("\r\n", "\n"),
        "tier": request.form.get("tier", ""),
    }
    try:
        updated = current_services().catalog.update(
            video_id,
            title=values["title"].strip(),
            description=values["description"],
            tier=values["tier"],
        )
    except BadRequestError as exc:
        return _video_form(video_id, error=str(exc), status=400, values=values)
    log.info(json.dumps({"event": "video_updated", "video_id": video_id, "actor": _actor()}))
    flash(f"Saved “{updated.title}”.", "success")
    return redirect(url_for("admin.videos"))


@blueprint.post("/videos/<video_id>/unpublish")
@admin_required
def unpublish(video_id: str) -> Response:
    video = current_services().catalog.unpublish(video_id)
    log.info(json.dumps({"event": "video_unpublished", "video_id": video_id, "actor": _actor()}))
    flash(f"“{video.title}” is unpublished: hidden from the catalog, not playable.", "success")
    return redirect(url_for("admin.videos"))


@blueprint.post("/videos/<video_id>/publish")
@admin_required
def publish(video_id: str) -> Response:
    video = current_services().catalog.publish(video_id)
    log.info(json.dumps({"event": "video_published", "video_id": video_id, "actor": _actor()}))
    flash(f"“{video.title}” is published again.", "success")
    return redirect(url_for("admin.videos"))

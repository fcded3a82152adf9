"""The admin JSON endpoint for a video's publishing state: ``GET /admin/videos/<id>/state``.

The upload page and the admin videos list poll it to show processing and ready
without a reload. One fresh read of the catalog item (the admin read, never the
viewers' cache); unknown ids are a JSON 404 whatever the ``Accept`` header says.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from werkzeug.wrappers import Response

from app.catalog import FAILED, PROCESSING, UPLOADING, Video
from app.errors import VideoNotFoundError
from app.web.context import current_services
from app.web.signin import admin_required

blueprint = Blueprint("state", __name__)

PENDING_STATES = frozenset({UPLOADING, PROCESSING})
"""States that still change on their own: pages keep polling while a video is in one."""

FAILED_WITHOUT_REASON = "Processing stopped without saying why. Try a re-transcode."


def state_of(video: Video, *, page_url: str, preview_url: str) -> dict[str, Any]:
    """What the pages show about ``video``'s publishing state, as JSON-ready values."""
    from app.web.admin_views import STATE_LABELS, video_state_of

    shown = video_state_of(video)
    failure = None
    if video.state == FAILED:
        failure = (video.failure_reason or "").strip() or FAILED_WITHOUT_REASON
    return {
        "video_id": video.video_id,
        "title": video.title,
        "state": video.state,
        "shown_state": shown,
        "label": STATE_LABELS.get(shown, shown.capitalize()),
        "progress": video.progress if video.state == PROCESSING else None,
        "failure_reason": failure,
        "published": video.published,
        "pending": video.state in PENDING_STATES,
        "links": {"page": page_url, "preview": preview_url},
    }


@blueprint.get("/videos/<video_id>/state")
@admin_required
def video_state(video_id: str) -> tuple[Response, int]:
    """The publishing state of one video (admins only; 404 JSON for an unknown id)."""
    from app.web.admin_views import preview_url

    try:
        video = current_services().catalog.get_any(video_id)
    except VideoNotFoundError:
        return jsonify(error="not_found", message="There is no video with this id."), 404
    return jsonify(
        state_of(
            video,
            page_url=url_for("admin.video", video_id=video.video_id),
            preview_url=preview_url(video.video_id),
        )
    ), 200

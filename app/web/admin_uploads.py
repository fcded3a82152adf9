"""Admin pages and JSON endpoints for adding videos from the browser, captions and posters.

Mounted inside the admin blueprint (``/admin``), so every route is admin-only and
CSRF-protected like the rest (JSON calls send ``X-CSRF-Token``). "Add a video"
creates the draft (state ``uploading``) and the S3 multipart upload of its
original, then hands the browser presigned part URLs; completion starts the
ingest, cancel aborts the multipart upload and removes the draft. The key of an
upload is always the draft's ``source_key``: nothing the browser says about keys
is used. Captions (WebVTT, per language) and posters (JPEG) are forms on the
video's page. The flow and its limits: docs/uploads.md.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import json_input
from app.browser_uploads import (
    MIN_PART_BYTES,
    InvalidUploadError,
    UploadNotFoundError,
    check_part_numbers,
    check_size,
    describe_size,
    safe_file_name,
)
from app.captions import MAX_CAPTION_BYTES, InvalidLanguageError, NoHlsError, check_language
from app.catalog import TIERS, UPLOADING, Video
from app.errors import BadRequestError, VideoNotFoundError
from app.posters import MAX_POSTER_BYTES, store_poster
from app.web.context import current_services
from app.web.signin import admin_required, current_user

log = logging.getLogger("vidgate.web.uploads")

blueprint = Blueprint("uploads", __name__)

PART_SIZE = 8 * 1024 * 1024
"""What the browser cuts files into (bigger files get bigger parts: at most 10,000)."""
MAX_JSON_BYTES = 512 * 1024
MAX_ID_TRIES = 5
_FORM_OVERHEAD = 64 * 1024


# --------------------------------------------------------------------------- helpers


def _actor() -> str:
    user = current_user()
    assert user is not None  # admin_required ran
    return user.username


def _body() -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise BadRequestError("request body too large")
    try:
        data = json_input.loads(request.get_data(as_text=True) or "{}")
    except ValueError as exc:
        raise BadRequestError("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, limit: int = 4096) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidUploadError(f"The {name.replace('_', ' ')} is limited to {limit} characters.")
    return value


def _allow_s3_connections() -> None:
    """The page's script PUTs parts to the bucket's endpoint: let the CSP allow exactly it."""
    g.csp_extra = {"connect-src": [current_services().browser_uploads.endpoint_origin()]}


def _draft(video_id: str) -> tuple[Video, str]:
    """The video whose upload this is (in ``uploading``) and its source key.

    :raises UploadNotFoundError: no such video, or its upload is over.
    """
    try:
        video = current_services().catalog.get_any(video_id)
    except VideoNotFoundError as exc:
        raise UploadNotFoundError(f"no video {video_id}") from exc
    if video.state != UPLOADING or not video.source_key:
        raise UploadNotFoundError(f"video {video_id} is not waiting for its upload")
    return video, video.source_key


def _upload_id(data: dict[str, Any] | Any) -> str:
    upload_id = data.get("upload_id")
    if not isinstance(upload_id, str) or not upload_id:
        raise BadRequestError("upload_id is missing")
    return upload_id


def _new_video_id() -> str:
    """11 random URL-safe characters (64 bits), never starting with ``-`` (a CLI option)."""
    while True:
        video_id = secrets.token_urlsafe(8)
        if not video_id.startswith("-"):
            return video_id


# --------------------------------------------------------------------------- add a video


@blueprint.get("/videos/new")
@admin_required
def new() -> str:
    _allow_s3_connections()
    limit = current_services().browser_uploads.max_bytes
    return render_template(
        "admin/upload.html",
        part_size=PART_SIZE,
        max_bytes=limit,
        max_size=describe_size(limit),
    )


@blueprint.post("/uploads")
@admin_required
def create() -> tuple[Response, int]:
    """Draft + multipart upload: ``{title, tier, description, file_name, size}`` → ids and key."""
    data = _body()
    services = current_services()
    uploads = services.browser_uploads
    size = check_size(data.get("size"), uploads.max_bytes)
    title = _text(data, "title").strip()
    if not title:
        raise InvalidUploadError("Give the video a title.")
    tier = _text(data, "tier", limit=16)
    if tier not in TIERS:
        raise InvalidUploadError("Choose who may watch it: free or premium.")
    description = _text(data, "description").replace("\r\n", "\n")
    file_name = safe_file_name(_text(data, "file_name", limit=1024))
    draft, key = _create_draft(title=title, tier=tier, description=description, file_name=file_name)
    try:
        upload_id = uploads.start(key)
    except BaseException:
        _discard(draft.video_id)
        raise
    log.info(
        json.dumps(
            {
                "event": "upload_started",
                "video_id": draft.video_id,
                "key": key,
                "size": size,
                "actor": _actor(),
            }
        )
    )
    return (
        jsonify(
            video_id=draft.video_id,
            upload_id=upload_id,
            key=key,
            part_size=max(PART_SIZE, MIN_PART_BYTES),
        ),
        201,
    )


@blueprint.post("/uploads/<video_id>/parts")
@admin_required
def sign_parts(video_id: str) -> Response:
    """Presigned ``UploadPart`` URLs: ``{upload_id, part_numbers}`` → ``{urls: {n: url}}``."""
    data = _body()
    _, key = _draft(video_id)
    uploads = current_services().browser_uploads
    numbers = check_part_numbers(data.get("part_numbers"))
    urls = uploads.sign_parts(key, _upload_id(data), numbers)
    return jsonify(
        urls={str(n): url for n, url in urls.items()}, expires_in=uploads.part_url_seconds
    )


@blueprint.get("/uploads/<video_id>/parts")
@admin_required
def list_parts(video_id: str) -> Response:
    """The parts S3 already holds (a resumed upload skips them)."""
    _, key = _draft(video_id)
    parts = current_services().browser_uploads.list_parts(key, _upload_id(request.args))
    return jsonify(parts=[part.to_json() for part in parts])


@blueprint.post("/uploads/<video_id>/complete")
@admin_required
def complete(video_id: str) -> Response:
    """Assemble the original, then hand it to the pipeline (state stays ``uploading`` until
    the ingest takes it to ``processing``)."""
    data = _body()
    draft, key = _draft(video_id)
    uploads = current_services().browser_uploads
    size = uploads.complete(key, _upload_id(data), data.get("parts"))
    _uploaded(draft, key, size)
    log.info(
        json.dumps(
            {"event": "upload_completed", "video_id": video_id, "size": size, "actor": _actor()}
        )
    )
    return jsonify(
        video_id=video_id,
        size=size,
        page_url=url_for("admin.video", video_id=video_id),
    )


@blueprint.post("/uploads/<video_id>/abort")
@admin_required
def abort(video_id: str) -> Response:
    """Abort the multipart upload and remove the draft: nothing is kept."""
    data = _body()
    _, key = _draft(video_id)
    uploads = current_services().browser_uploads
    uploads.abort(key, _upload_id(data))
    _discard(video_id)
    log.info(json.dumps({"event": "upload_aborted", "video_id": video_id, "actor": _actor()}))
    return jsonify(video_id=video_id, aborted=True)


# --------------------------------------------------------------------------- the pipeline


def _create_draft(*, title: str, tier: str, description: str, file_name: str) -> tuple[Video, str]:
    from app.errors import VideoExistsError
    from app.publishing import source_key_for

    publishing = current_services().publishing
    for _ in range(MAX_ID_TRIES):
        video_id = _new_video_id()
        key = source_key_for(video_id, file_name)
        try:
            draft = publishing.create_draft(
                video_id, title=title, tier=tier, description=description, source_key=key
            )
        except VideoExistsError:
            continue
        return draft, key
    raise BadRequestError("could not find a free video id; try again")


def _uploaded(draft: Video, key: str, size: int) -> None:
    """The original is complete in S3: the ingest takes it from here.

    The bucket's ObjectCreated notification on ``uploads/`` starts the ingest (S3 →
    SQS); the draft stays ``uploading`` until the ingest moves it to ``processing``.
    """
    log.info(
        json.dumps(
            {
                "event": "upload_ready_for_ingest",
                "video_id": draft.video_id,
                "key": key,
                "size": size,
            }
        )
    )


def _discard(video_id: str) -> None:
    try:
        current_services().catalog.remove(video_id)
    except VideoNotFoundError:
        return


# --------------------------------------------------------------------------- captions


def _video_page(video_id: str, *, error: str, status: int) -> tuple[str, int]:
    from app.web.admin_views import _video_form

    return _video_form(video_id, error=error, status=status)


def _master_key(video: Video) -> str:
    if not video.hls_key:
        raise NoHlsError(f"video {video.video_id} has no HLS")
    return video.hls_key


@blueprint.post("/videos/<video_id>/captions")
@admin_required
def add_captions(video_id: str) -> Response | tuple[str, int]:
    """A WebVTT file for one language: refused with the wrong line, else a subtitle rendition."""
    request.max_content_length = MAX_CAPTION_BYTES + _FORM_OVERHEAD
    services = current_services()
    video = services.catalog.get_any(video_id)
    upload = request.files.get("captions")
    try:
        track = check_language(request.form.get("language", ""), request.form.get("label", ""))
        if upload is None or not upload.filename:
            raise InvalidUploadError("Choose a WebVTT (.vtt) file.")
        data = upload.read(MAX_CAPTION_BYTES + 1)
        services.captions.add(video_id, _master_key(video), track, data)
    except (BadRequestError, InvalidLanguageError, NoHlsError) as exc:
        message = getattr(exc, "friendly", None) or str(exc)
        return _video_page(video_id, error=str(message), status=exc.status)
    log.info(
        json.dumps(
            {
                "event": "captions_added",
                "video_id": video_id,
                "language": track.language,
                "actor": _actor(),
            }
        )
    )
    flash(f"Captions “{track.label}” ({track.language}) added.", "success")
    return redirect(url_for("admin.video", video_id=video_id))


@blueprint.post("/videos/<video_id>/captions/<language>/delete")
@admin_required
def remove_captions(video_id: str, language: str) -> Response:
    services = current_services()
    video = services.catalog.get_any(video_id)
    services.captions.remove(video_id, _master_key(video), language)
    log.info(
        json.dumps(
            {
                "event": "captions_removed",
                "video_id": video_id,
                "language": language,
                "actor": _actor(),
            }
        )
    )
    flash(f"Captions ({language}) removed.", "success")
    return redirect(url_for("admin.video", video_id=video_id))


# --------------------------------------------------------------------------- posters


@blueprint.post("/videos/<video_id>/poster")
@admin_required
def set_poster(video_id: str) -> Response | tuple[str, int] | tuple[Response, int]:
    """A JPEG (a frame the page drew, or an image it converted) becomes the public poster."""
    request.max_content_length = MAX_POSTER_BYTES + _FORM_OVERHEAD
    services = current_services()
    services.catalog.get_any(video_id)
    upload = request.files.get("poster")
    data = upload.read(MAX_POSTER_BYTES + 1) if upload is not None else b""
    try:
        key = store_poster(services.s3, services.settings.bucket, video_id, data)
    except BadRequestError as exc:
        message = str(getattr(exc, "friendly", None) or exc)
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error=exc.code, message=message), exc.status
        return _video_page(video_id, error=message, status=exc.status)
    video = services.catalog.set_poster(video_id, key)
    log.info(json.dumps({"event": "poster_set", "video_id": video_id, "actor": _actor()}))
    if request.accept_mimetypes.best == "application/json":
        return jsonify(video_id=video_id, poster_key=video.poster_key), 200
    flash("Poster saved. It shows everywhere within a minute.", "success")
    return redirect(url_for("admin.video", video_id=video_id))


# --------------------------------------------------------------------------- templates


@blueprint.app_context_processor
def _media_helpers() -> dict[str, Any]:
    def video_captions(video: Video) -> list[Any]:
        """The video's subtitle renditions (read from its master playlist), or none."""
        if not video.hls_key:
            return []
        try:
            return current_services().captions.tracks(video.video_id, video.hls_key)
        except NoHlsError:
            return []

    return {"video_captions": video_captions}

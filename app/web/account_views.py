"""The viewer's streams and account actions: end a stream, the player's end beacon,
sign out everywhere and the password change.

``POST /watch/<id>/end`` is what the player's ``navigator.sendBeacon`` calls on
stop or page close: a beacon cannot set headers, so the CSRF token travels in
the form body (``csrf_token``) and the session cookie says who it is. ``POST
/account/streams/<session_id>/end`` ends one of the viewer's other streams,
from the account page (a form: back to the page) or from the player's "too
many streams" panel (``fetch``: 204). Both go through
:func:`app.http.viewer.end_stream_of`, as the API's DELETE does.
"""

from __future__ import annotations

import contextlib
import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.errors import BadRequestError
from app.http.viewer import end_stream_of
from app.streams import SessionNotFoundError
from app.web.cognito_client import CognitoError
from app.web.context import wants_json, web
from app.web.signin import current_user, end_session, login_required, session_access_token

log = logging.getLogger("vidgate.web.account")

blueprint = Blueprint("account", __name__)

MAX_POSITION_SECONDS = 7 * 24 * 3600.0


def _position(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequestError("position must be a number of seconds") from None
    if not 0 <= value <= MAX_POSITION_SECONDS:
        raise BadRequestError("position is out of range")
    return value


@blueprint.post("/watch/<video_id>/end")
@login_required
def end_beacon(video_id: str) -> Response:
    """The player stopped (or its page closed): its stream ends now, at its position."""
    user = current_user()
    assert user is not None  # login_required
    # Already over (ended elsewhere, or silent too long): nothing left to end.
    with contextlib.suppress(SessionNotFoundError):
        end_stream_of(
            web().services,
            user.user_id,
            request.form.get("session_id", ""),
            position=_position(request.form.get("position")),
            error=request.form.get("error") or None,
            reason=request.form.get("reason") or None,
        )
    return Response(status=204)


@blueprint.post("/account/streams/<session_id>/end")
@login_required
def end_stream(session_id: str) -> Response:
    """End one of the viewer's own streams (another screen's)."""
    user = current_user()
    assert user is not None
    try:
        stream = end_stream_of(web().services, user.user_id, session_id)
    except SessionNotFoundError:
        if wants_json():
            raise
        flash("That stream had already ended.", "info")
        return redirect(url_for("auth.account"))
    if wants_json():
        return Response(status=204)
    flash(f"The stream on {stream.device} ({stream.title}) was ended.", "success")
    return redirect(url_for("auth.account"))


@blueprint.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> Response:
    """Cognito global sign-out and the end of every web session, this one included."""
    from app.web.auth_views import _sign_out_everywhere  # the reset's sign-out, reused

    user = current_user()
    assert user is not None
    _sign_out_everywhere(user.username)
    end_session()
    flash("You are signed out on every device.", "success")
    return redirect(url_for("auth.sign_in"))


@blueprint.post("/account/password")
@login_required
def change_password() -> Response | tuple[str, int]:
    """Cognito ``ChangePassword`` with the viewer's access token."""
    current = request.form.get("current_password", "")
    proposed = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    problem = None
    if not current or not proposed:
        problem = "Enter your current password and a new one."
    elif proposed != confirm:
        problem = "The new password and its confirmation differ. Nothing was changed."
    elif proposed == current:
        problem = "The new password must differ from the current one."
    if problem is None:
        try:
            web().cognito.change_password(session_access_token(), current, proposed)
        except CognitoError as exc:
            problem = exc.friendly
    if problem is not None:
        from app.web.auth_views import account_page

        return render_template(**account_page(password_error=problem)), 400
    flash("Your password is changed.", "success")
    return redirect(url_for("auth.account"))

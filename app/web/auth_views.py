"""Sign in, sign up, confirm, forgotten password, sign out and the account page.

Password flows call Cognito's user-pool API through
:class:`~app.web.cognito_client.CognitoClient`; when ``VIDGATE_COGNITO_DOMAIN``
is set, sign-in (and sign-up, forgotten password) go through the Cognito
hosted UI instead (:class:`~app.web.cognito_client.HostedUi`, callback at
``/auth/callback``). Every token is verified with the app's verifiers before
anyone counts as signed in. Errors a person can fix are shown on the form
they came from; the rest go to the app's one error handler.

Confirm, resend, forgot and reset answer an unknown account exactly as a known
one (same status, same page, the same calls made): whatever Cognito says about
the user becomes one neutral answer per form. A password reset signs the user
out everywhere (Cognito's refresh tokens, and every web session opened before it).
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app.auth import AuthError
from app.cognito_triggers import post_confirmation
from app.errors import (
    AmbiguousUserError,
    DependencyUnavailableError,
    EmailInUseError,
    UserNotFoundError,
)
from app.web.cognito_client import (
    Challenge,
    ChallengeExpiredError,
    CognitoError,
    HostedUiRefusedError,
    NonceMismatchError,
    StateMismatchError,
    Tokens,
    TooManyRequestsError,
    UnknownUserError,
    UnsupportedChallengeError,
    UnverifiableTokensError,
    UserNotConfirmedError,
    payload_claim,
)
from app.web.context import web
from app.web.session_store import current_session
from app.web.signin import (
    AuthMethod,
    SignedIn,
    current_user,
    end_session,
    login_required,
    signed_in,
    signed_in_from,
    start_signed_in_session,
)

log = logging.getLogger("vidgate.web.auth")

blueprint = Blueprint("auth", __name__)

MAX_IDENTIFIER = 254
MAX_PASSWORD = 256
MAX_CODE = 64
NEW_PASSWORD_CHALLENGE = "NEW_PASSWORD_REQUIRED"  # noqa: S105 - a challenge name

# One answer per form, whatever Cognito said about the account (it must not tell whether
# the account exists, is confirmed, or has asked for a code).
CONFIRM_REFUSED = (
    "That did not confirm an account. Check the username and the code we e-mailed you "
    "(codes expire; ask for a new one below), or sign in if the account is already confirmed."
)
CODE_SENT = "If that account is waiting for confirmation, we e-mailed it a new code."
RESET_CODE_SENT = "If that account exists, we e-mailed it a code to reset the password."
RESET_REFUSED = (
    "That did not change the password. Check the code we e-mailed you, ask for a new one if "
    "it has expired, and choose a password of at least 12 characters with upper- and "
    "lower-case letters, a number and a symbol."
)
AMBIGUOUS_EMAIL = (
    "More than one account uses that e-mail address, so it cannot say which one you mean. "
    "Enter your username instead."
)
SHARED_EMAIL = (
    "The e-mail address of this account already belongs to another account here, so it "
    "cannot sign in. Please contact support."
)


class SharedEmailError(CognitoError):
    """A signing-in user has no record, and their e-mail belongs to another user's: refused."""

    status = 409
    code = "email_in_use"
    friendly = SHARED_EMAIL


# --------------------------------------------------------------------------- helpers


def safe_next(value: str | None) -> str:
    """A local path to go back to after signing in; anything else becomes ``/``."""
    if not value or len(value) > 512 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith("/auth/"):
        return "/"
    return value


def _kept(next_url: str) -> str | None:
    """``next_url`` for a link's query, or None (no parameter) when it is the home page."""
    return None if next_url == "/" else next_url


def _field(name: str, limit: int, *, strip: bool = True) -> str:
    value = request.form.get(name, "")
    value = value.strip() if strip else value
    return value[: limit + 1]


def _form_error(template: str, exc: CognitoError | str, **context: Any) -> tuple[str, int]:
    """Re-render ``template`` with a friendly error (400; 429 when throttled)."""
    message = exc if isinstance(exc, str) else exc.friendly
    status = 429 if isinstance(exc, TooManyRequestsError) else 400
    return render_template(template, error=message, **context), status


def _form_conflict(template: str, message: str, **context: Any) -> tuple[str, int]:
    """Re-render ``template`` with ``message``: 409, the account data conflicts."""
    return render_template(template, error=message, **context), 409


def _too_long(*pairs: tuple[str, int]) -> bool:
    return any(len(value) > limit for value, limit in pairs)


def _resolve_username(identifier: str) -> str:
    """The Cognito username behind an e-mail, from the user directory (else as typed).

    Cognito resolves e-mail aliases itself; the local emulator does not.

    :raises AmbiguousUserError: the e-mail belongs to more than one record (never a pick).
    """
    if "@" not in identifier:
        return identifier
    try:
        return web().services.users.find(identifier).username
    except UserNotFoundError:
        return identifier


def _log(event: str, **fields: Any) -> None:
    log.info(json.dumps({"event": event, **fields}))


def _run_local_trigger(source: str, username: str) -> None:
    """Locally, run the PostConfirmation handler Cognito would run in AWS.

    The emulator fires no triggers; this calls the very same handler with an
    event shaped like Cognito's. In AWS (``local_triggers`` off) Cognito does it.
    """
    ctx = web()
    if not ctx.local_triggers:
        return
    real_username, attributes = ctx.cognito.user_attributes(username)
    cognito = ctx.settings.cognito
    event = {
        "version": "1",
        "triggerSource": source,
        "region": ctx.settings.region,
        "userPoolId": cognito.user_pool_id if cognito else "",
        "userName": real_username,
        "callerContext": {
            "awsSdkVersion": "vidgate-local",
            "clientId": cognito.client_id if cognito else "",
        },
        "request": {"userAttributes": attributes},
        "response": {},
    }
    post_confirmation(event, ctx.services.users)


def _ensure_user_record(auth: SignedIn) -> SignedIn:
    """Make sure the user has a directory record; fill in the e-mail from it.

    Users created by an administrator (AdminCreateUser, then the
    NEW_PASSWORD_REQUIRED challenge) never pass ConfirmSignUp, so Cognito fires
    no PostConfirmation trigger for them; ``create_on_signup`` is idempotent.
    """
    ctx = web()
    try:
        record = ctx.services.users.get(auth.user_id)
    except UserNotFoundError:
        email = auth.email
        if not email and auth.method == "password":
            # The id token lists only the attributes the app client may read.
            email = ctx.cognito.own_attributes(auth.access_token).get("email", "")
        try:
            record = ctx.services.users.create_on_signup(auth.user_id, auth.username, email or None)
        except EmailInUseError as exc:
            _log("sign_in_refused", code="email_in_use", user_id=auth.user_id)
            raise SharedEmailError(str(exc)) from exc
    return replace(auth, email=auth.email or record.email)


def _sign_out_everywhere(username: str) -> None:
    """After a password reset: Cognito signs the user out everywhere (every refresh
    token), and every web session opened before now ends (:func:`_end_sessions_reset_closed`).

    Both are tried; if either fails the request fails (503): the person is told,
    never left believing the other sessions are gone.
    """
    ctx = web()
    real_username, attributes = ctx.cognito.user_attributes(username)
    failure: DependencyUnavailableError | None = None
    try:
        ctx.services.user_pool.sign_out_everywhere(real_username)
    except DependencyUnavailableError as exc:
        failure = exc
    user_id = attributes.get("sub", "")
    try:
        if user_id:
            ctx.services.users.end_sessions(user_id)
    except UserNotFoundError:
        pass  # no record: the user never signed in to the web app
    except DependencyUnavailableError as exc:
        failure = failure or exc
    if failure is not None:
        _log("password_reset_sign_out_failed", user_id=user_id)
        raise failure
    _log("password_reset_signed_out_everywhere", user_id=user_id)


@blueprint.before_app_request
def _end_sessions_reset_closed() -> None:
    """A web session opened before the user's last password reset is over.

    The reset's moment is read from the user record (cached per process for at
    most 30 s), so the sessions end within 30 s everywhere, at once here.
    """
    user = current_user()
    opened = current_session()
    if user is None or opened is None or opened.stored is None:
        return
    ended = web().services.users.sessions_ended_at(user.user_id)
    if ended is not None and opened.stored.created_at < ended.timestamp():
        _log("session_ended_by_password_reset", user_id=user.user_id)
        end_session()


def _finish_sign_in(
    tokens: Tokens, method: AuthMethod, next_url: str, *, nonce: str | None = None
) -> Response:
    try:
        auth = signed_in_from(tokens, method)
    except AuthError as exc:
        _log("sign_in_tokens_refused", reason=type(exc).__name__)
        raise UnverifiableTokensError(f"token refused: {type(exc).__name__}") from exc
    if nonce is not None:
        # The id token verified, so reading its nonce claim is safe now.
        found = payload_claim(tokens.id_token, "nonce")
        if not isinstance(found, str) or not hmac.compare_digest(found.encode(), nonce.encode()):
            _log("sign_in_nonce_mismatch", user_id=auth.user_id)
            raise NonceMismatchError("id token nonce does not match")
    auth = _ensure_user_record(auth)
    start_signed_in_session(auth)
    _log("signed_in", user_id=auth.user_id, method=method)
    return redirect(next_url)


def _password_sign_in(identifier: str, password: str) -> Tokens | Challenge:
    cognito = web().cognito
    try:
        return cognito.sign_in(identifier, password)
    except UnknownUserError:
        # Cognito resolves e-mail aliases; the emulator does not: look the
        # username up in our directory and try once more.
        username = _resolve_username(identifier)
        if username == identifier:
            raise
        return cognito.sign_in(username, password)


# --------------------------------------------------------------------------- hosted UI


def _redirect_uri() -> str:
    base = web().base_url
    if base:
        return f"{base}{url_for('auth.callback')}"
    return url_for("auth.callback", _external=True)


def _hosted_redirect(screen: str, next_url: str) -> Response:
    hosted = web().hosted
    assert hosted is not None
    redirect_uri = _redirect_uri()
    pending = hosted.begin(redirect_uri, screen=screen)
    session["oauth"] = {**pending.to_dict(), "next": next_url, "redirect_uri": redirect_uri}
    return redirect(pending.url)


@blueprint.get("/auth/callback")
def callback() -> Response:
    """The hosted UI comes back here with ``code`` and ``state`` (or ``error``)."""
    hosted = web().hosted
    if hosted is None:
        abort(404)
    pending = session.pop("oauth", None)
    if request.args.get("error"):
        _log("hosted_ui_error", error=request.args.get("error", "")[:64])
        raise HostedUiRefusedError("the hosted UI returned an error")
    if not isinstance(pending, dict):
        raise StateMismatchError("no sign-in is pending in this browser")
    tokens = hosted.finish(
        pending,
        str(pending.get("redirect_uri") or _redirect_uri()),
        request.url,
        request.args.get("state"),
    )
    return _finish_sign_in(
        tokens, "hosted", safe_next(pending.get("next")), nonce=str(pending.get("nonce", ""))
    )


# --------------------------------------------------------------------------- sign in


@blueprint.route("/auth/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str | tuple[str, int]:
    next_url = safe_next(request.values.get("next"))
    if web().hosted is not None:
        return _hosted_redirect("login", next_url)
    if request.method == "GET":
        if current_user() is not None:
            return redirect(next_url)
        return render_template(
            "auth/sign_in.html", next=next_url, identifier=request.args.get("username", "")[:254]
        )
    identifier = _field("identifier", MAX_IDENTIFIER)
    password = _field("password", MAX_PASSWORD, strip=False)
    context = {"next": next_url, "identifier": identifier[:MAX_IDENTIFIER]}
    if not identifier or not password:
        return _form_error(
            "auth/sign_in.html", "Enter your username or e-mail and your password.", **context
        )
    if _too_long((identifier, MAX_IDENTIFIER), (password, MAX_PASSWORD)):
        return _form_error("auth/sign_in.html", "That username or password is too long.", **context)
    try:
        result = _password_sign_in(identifier, password)
    except UserNotConfirmedError as exc:
        return _form_error("auth/sign_in.html", exc, unconfirmed=True, **context)
    except CognitoError as exc:
        _log("sign_in_refused", code=exc.code)
        return _form_error("auth/sign_in.html", exc, **context)
    except AmbiguousUserError:
        _log("sign_in_refused", code="ambiguous_email")
        return _form_conflict("auth/sign_in.html", AMBIGUOUS_EMAIL, **context)
    if isinstance(result, Challenge):
        if result.name != NEW_PASSWORD_CHALLENGE:
            return _form_error(
                "auth/sign_in.html", UnsupportedChallengeError(result.name), **context
            )
        session["challenge"] = {
            "name": result.name,
            "session": result.session,
            "username": result.username,
            "next": next_url,
        }
        return redirect(url_for("auth.new_password"))
    try:
        return _finish_sign_in(result, "password", next_url)
    except SharedEmailError as exc:
        return _form_conflict("auth/sign_in.html", exc.friendly, **context)


@blueprint.route("/auth/new-password", methods=["GET", "POST"])
def new_password() -> Response | str | tuple[str, int]:
    """The NEW_PASSWORD_REQUIRED challenge: a user created with a temporary password."""
    pending = session.get("challenge")
    if not isinstance(pending, dict):
        flash("Please sign in first.", "info")
        return redirect(url_for("auth.sign_in"))
    context = {"username": pending.get("username", "")}
    if request.method == "GET":
        return render_template("auth/new_password.html", **context)
    password = _field("password", MAX_PASSWORD, strip=False)
    repeat = _field("password_repeat", MAX_PASSWORD, strip=False)
    if not password or password != repeat:
        return _form_error("auth/new_password.html", "The two passwords do not match.", **context)
    if _too_long((password, MAX_PASSWORD)):
        return _form_error("auth/new_password.html", "That password is too long.", **context)
    challenge = Challenge(
        name=str(pending["name"]),
        session=str(pending["session"]),
        username=str(pending["username"]),
    )
    try:
        result = web().cognito.respond_new_password(challenge, password)
    except ChallengeExpiredError as exc:
        session.pop("challenge", None)
        flash(exc.friendly, "error")
        return redirect(url_for("auth.sign_in"))
    except CognitoError as exc:
        return _form_error("auth/new_password.html", exc, **context)
    if isinstance(result, Challenge):
        session.pop("challenge", None)
        return _form_error(
            "auth/sign_in.html", UnsupportedChallengeError(result.name), next="/", identifier=""
        )
    return _finish_sign_in(result, "password", safe_next(str(pending.get("next", "/"))))


# --------------------------------------------------------------------------- sign up


@blueprint.route("/auth/sign-up", methods=["GET", "POST"])
def sign_up() -> Response | str | tuple[str, int]:
    # ``next``: where to go after the first sign-in (kept through confirm and sign-in).
    next_url = safe_next(request.values.get("next"))
    if web().hosted is not None:
        return _hosted_redirect("signup", next_url)
    if request.method == "GET":
        return render_template("auth/sign_up.html", username="", email="", next=next_url)
    username = _field("username", 128)
    email = _field("email", MAX_IDENTIFIER)
    password = _field("password", MAX_PASSWORD, strip=False)
    repeat = _field("password_repeat", MAX_PASSWORD, strip=False)
    context = {"username": username[:128], "email": email[:MAX_IDENTIFIER], "next": next_url}
    problem = None
    if not username or not email or not password:
        problem = "Please fill in every field."
    elif _too_long((username, 128), (email, MAX_IDENTIFIER), (password, MAX_PASSWORD)):
        problem = "One of the fields is too long."
    elif "@" in username or any(ch.isspace() for ch in username):
        problem = "Choose a username without spaces or @ (your e-mail goes in its own field)."
    elif "@" not in email or any(ch.isspace() for ch in email):
        problem = "Enter a valid e-mail address."
    elif password != repeat:
        problem = "The two passwords do not match."
    if problem:
        return _form_error("auth/sign_up.html", problem, **context)
    if web().services.users.email_in_use(email):
        _log("sign_up_refused", code="email_in_use")
        return _form_conflict("auth/sign_up.html", EmailInUseError.friendly, **context)
    try:
        web().cognito.sign_up(username, email, password)
    except CognitoError as exc:
        _log("sign_up_refused", code=exc.code)
        return _form_error("auth/sign_up.html", exc, **context)
    _log("signed_up", username=username)
    flash("We e-mailed you a confirmation code. Enter it below.", "success")
    return redirect(url_for("auth.confirm", username=username, next=_kept(next_url)))


@blueprint.route("/auth/confirm", methods=["GET", "POST"])
def confirm() -> Response | str | tuple[str, int]:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template(
            "auth/confirm.html", username=request.args.get("username", "")[:128], next=next_url
        )
    username = _field("username", 128)
    code = _field("code", MAX_CODE)
    context = {"username": username[:128], "next": next_url}
    if not username or not code:
        return _form_error("auth/confirm.html", "Enter your username and the code.", **context)
    if _too_long((username, 128), (code, MAX_CODE)):
        return _form_error("auth/confirm.html", "That code is not right.", **context)
    try:
        web().cognito.confirm_sign_up(username, code)
    except TooManyRequestsError as exc:
        return _form_error("auth/confirm.html", exc, **context)
    except CognitoError as exc:
        # Unknown user, wrong or stale code, already confirmed: one answer for all.
        _log("confirm_refused", code=exc.code)
        return _form_error("auth/confirm.html", CONFIRM_REFUSED, **context)
    try:
        _run_local_trigger("PostConfirmation_ConfirmSignUp", username)
    except EmailInUseError as exc:
        _log("confirm_refused", code=exc.code)
        return _form_conflict("auth/confirm.html", exc.friendly, **context)
    _log("confirmed", username=username)
    flash("Your account is confirmed. You can sign in now.", "success")
    return redirect(url_for("auth.sign_in", username=username, next=_kept(next_url)))


@blueprint.post("/auth/confirm/resend")
def resend_code() -> Response:
    username = _field("username", 128)
    next_url = safe_next(request.form.get("next"))
    if not username or len(username) > 128:
        flash("Enter your username first.", "error")
        return redirect(url_for("auth.confirm"))
    try:
        web().cognito.resend_code(username)
    except TooManyRequestsError as exc:
        flash(exc.friendly, "error")
        return redirect(url_for("auth.confirm", username=username, next=_kept(next_url)))
    except CognitoError as exc:
        _log("resend_code_refused", code=exc.code)  # answered like a sent code
    flash(CODE_SENT, "info")
    return redirect(url_for("auth.confirm", username=username, next=_kept(next_url)))


# --------------------------------------------------------------------------- forgotten password


@blueprint.route("/auth/forgot", methods=["GET", "POST"])
def forgot() -> Response | str | tuple[str, int]:
    if web().hosted is not None:
        return _hosted_redirect("forgotPassword", "/")
    if request.method == "GET":
        return render_template("auth/forgot.html", identifier="")
    identifier = _field("identifier", MAX_IDENTIFIER)
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        return _form_error("auth/forgot.html", "Enter your username or e-mail.", identifier="")
    try:
        web().cognito.forgot_password(_resolve_username(identifier))
    except AmbiguousUserError:
        return _form_conflict("auth/forgot.html", AMBIGUOUS_EMAIL, identifier=identifier)
    except TooManyRequestsError as exc:
        return _form_error("auth/forgot.html", exc, identifier=identifier)
    except CognitoError as exc:
        # No verified e-mail, disabled, unknown...: answered like a sent code.
        _log("forgot_password_refused", code=exc.code)
    flash(RESET_CODE_SENT, "info")
    return redirect(url_for("auth.reset", identifier=identifier))


@blueprint.route("/auth/reset", methods=["GET", "POST"])
def reset() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template(
            "auth/reset.html", identifier=request.args.get("identifier", "")[:MAX_IDENTIFIER]
        )
    identifier = _field("identifier", MAX_IDENTIFIER)
    code = _field("code", MAX_CODE)
    password = _field("password", MAX_PASSWORD, strip=False)
    repeat = _field("password_repeat", MAX_PASSWORD, strip=False)
    context = {"identifier": identifier[:MAX_IDENTIFIER]}
    if not identifier or not code or not password:
        return _form_error("auth/reset.html", "Please fill in every field.", **context)
    if _too_long((identifier, MAX_IDENTIFIER), (code, MAX_CODE), (password, MAX_PASSWORD)):
        return _form_error("auth/reset.html", "One of the fields is too long.", **context)
    if password != repeat:
        return _form_error("auth/reset.html", "The two passwords do not match.", **context)
    try:
        username = _resolve_username(identifier)
    except AmbiguousUserError:
        return _form_conflict("auth/reset.html", AMBIGUOUS_EMAIL, **context)
    try:
        web().cognito.confirm_forgot_password(username, code, password)
    except TooManyRequestsError as exc:
        return _form_error("auth/reset.html", exc, **context)
    except CognitoError as exc:
        # Unknown user, wrong or stale code, weak password: one answer for all.
        _log("password_reset_refused", code=exc.code)
        return _form_error("auth/reset.html", RESET_REFUSED, **context)
    _sign_out_everywhere(username)
    _run_local_trigger("PostConfirmation_ConfirmForgotPassword", username)
    _log("password_reset", username=username)
    flash("Your password is changed. Sign in with the new one.", "success")
    return redirect(url_for("auth.sign_in", username=identifier))


# --------------------------------------------------------------------------- sign out, account


@blueprint.route("/auth/sign-out", methods=["GET", "POST"])
def sign_out() -> Response | str:
    if request.method == "GET":
        if current_user() is None:
            return redirect("/")
        return render_template("auth/sign_out.html")
    ctx = web()
    auth = signed_in()
    logout_url = None
    if auth is not None:
        try:
            if auth.method == "hosted" and ctx.hosted is not None:
                if auth.refresh_token:
                    ctx.hosted.revoke(auth.refresh_token)
                how = "oauth2_revoke"
            else:
                how = ctx.cognito.sign_out(auth.refresh_token, auth.access_token)
        except DependencyUnavailableError:
            # Signing out locally still happens; the tokens are forgotten here.
            how = "revocation_failed"
            log.warning("could not revoke tokens at sign-out (Cognito unavailable)")
        _log("signed_out", user_id=auth.user_id, how=how)
        if ctx.hosted is not None:
            base = ctx.base_url or request.host_url.rstrip("/")
            logout_url = ctx.hosted.logout_url(f"{base}/")
    end_session()
    flash("You are signed out.", "info")
    return redirect(logout_url or "/")


@blueprint.get("/account")
@login_required
def account() -> str:
    return render_template(**account_page())


def account_page(password_error: str | None = None) -> dict[str, Any]:
    """The account page's template and values: plan, streams, history, password form."""
    user = current_user()
    assert user is not None
    services = web().services
    state = services.streams.get(user.user_id, history=True)
    entitlement = state.entitlement
    now = datetime.now(UTC)
    premium = entitlement.premium_active(now)
    return {
        "template_name_or_list": "account.html",
        "user": user,
        "entitlement": entitlement,
        "premium_active": premium,
        "premium_until": (
            entitlement.premium_until.strftime("%d %B %Y, %H:%M UTC")
            if entitlement.premium_until
            else None
        ),
        # The UTC text above is what shows without script; static/localtime.js shows this.
        "premium_until_at": entitlement.premium_until,
        "streams": state.live(now),
        "stream_limit": services.streams.limit_for("premium" if premium else "free"),
        "history": state.history[:10],
        "password_error": password_error,
    }

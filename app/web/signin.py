"""Who is signed in: a Cognito sign-in kept in the server-side session.

The session holds, under :data:`~app.web.session_store.SIGNED_IN`, the user
and their Cognito tokens (they never reach the browser, and the sessions
table keeps them sealed with a KMS data key). The server-side session starts
here, at sign-in: before it a visitor has no item in the table. On each
request of a signed-in session the id token is verified again (the verifier caches
verified tokens until ``exp``) and, when the access token is within
:data:`REFRESH_MARGIN_SECONDS` of expiry, it is refreshed with the refresh
token; a refused refresh ends the session.

For blueprints: :func:`current_user`, :func:`login_required`,
:func:`admin_required`, :func:`session_access_token`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any, Literal, ParamSpec, TypeVar

from flask import Flask, g

from app.auth import AuthError, Principal
from app.errors import DependencyUnavailableError, ForbiddenError, UnauthorizedError
from app.user_pool import ADMIN_GROUP
from app.web import csrf
from app.web.cognito_client import TokenRefreshRejectedError, Tokens
from app.web.context import web
from app.web.session_store import SIGNED_IN, ServerSession, current_session

log = logging.getLogger("vidgate.web.signin")

REFRESH_MARGIN_SECONDS = 120
"""Refresh the access token when it has less than this left."""

AuthMethod = Literal["password", "hosted"]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class SignedIn:
    """Who the session belongs to, and their Cognito tokens (server-side only)."""

    user_id: str
    username: str
    email: str
    groups: tuple[str, ...]
    access_token: str
    id_token: str
    refresh_token: str | None
    token_expires_at: int
    method: AuthMethod = "password"

    def __repr__(self) -> str:  # tokens never reach a log line
        return (
            f"SignedIn(user_id={self.user_id!r}, username={self.username!r}, "
            f"method={self.method!r})"
        )

    def to_session(self) -> dict[str, Any]:
        """The value kept in the session under ``SIGNED_IN``."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "email": self.email,
            "groups": list(self.groups),
            "access_token": self.access_token,
            "id_token": self.id_token,
            "refresh_token": self.refresh_token,
            "token_expires_at": self.token_expires_at,
            "method": self.method,
        }

    @classmethod
    def from_session(cls, value: object) -> SignedIn | None:
        """The sign-in a session value describes; None if it is not one."""
        if not isinstance(value, Mapping):
            return None
        try:
            user_id, id_token = str(value["user_id"]), str(value["id_token"])
            groups = value.get("groups") or []
            return cls(
                user_id=user_id,
                username=str(value.get("username") or ""),
                email=str(value.get("email") or ""),
                groups=tuple(str(group) for group in groups),
                access_token=str(value.get("access_token") or ""),
                id_token=id_token,
                refresh_token=str(value["refresh_token"]) if value.get("refresh_token") else None,
                token_expires_at=int(value.get("token_expires_at") or 0),
                method="hosted" if value.get("method") == "hosted" else "password",
            )
        except (KeyError, TypeError, ValueError):
            return None


# --------------------------------------------------------------------------- per request


def signed_in() -> SignedIn | None:
    """The sign-in this request's session holds (tokens included), or None."""
    session = current_session()
    return SignedIn.from_session(session.get(SIGNED_IN)) if session is not None else None


def current_user() -> Principal | None:
    """The verified principal of this request's session (None when signed out).

    It comes from the session's id token, verified on this request; ``email``
    falls back to the user directory's when the token carries none.
    """
    principal: Principal | None = g.get("principal")
    return principal


def authenticate() -> None:
    """``before_request``: ``g.principal`` from the session's tokens, refreshed first if due."""
    g.principal = None
    session = current_session()
    if session is None or SIGNED_IN not in session:
        return
    auth = signed_in()
    if auth is None:  # a value that describes no sign-in
        end_session()
        return
    fresh = _ensure_fresh(auth)
    if fresh is None:
        return
    try:
        principal = web().services.id_verifier.verify(fresh.id_token)
    except AuthError as exc:
        log.info(json.dumps({"event": "session_token_refused", "reason": type(exc).__name__}))
        end_session()
        return
    if principal.user_id != fresh.user_id:
        end_session()
        return
    if not principal.email and fresh.email:
        principal = replace(principal, email=fresh.email)
    g.principal = principal


def _ensure_fresh(auth: SignedIn) -> SignedIn | None:
    """Refresh the tokens when the access token is within the margin of expiry.

    A refused refresh ends the session (None). If Cognito cannot be reached, a
    token that has not expired yet keeps working; an expired one means 503.
    """
    ctx = web()
    now = ctx.clock()
    if auth.token_expires_at - now > REFRESH_MARGIN_SECONDS:
        return auth
    if not auth.refresh_token:
        end_session()
        return None
    try:
        if auth.method == "hosted" and ctx.hosted is not None:
            tokens = ctx.hosted.refresh(auth.refresh_token)
        else:
            tokens = ctx.cognito.refresh(auth.refresh_token)
        fresh = signed_in_from(tokens, auth.method, refresh_token=auth.refresh_token)
    except (TokenRefreshRejectedError, AuthError) as exc:
        log.info(json.dumps({"event": "refresh_refused", "reason": type(exc).__name__}))
        end_session()
        return None
    except DependencyUnavailableError:
        if auth.token_expires_at > now:
            log.warning("token refresh failed (dependency down); current token still valid")
            return auth
        raise
    if fresh.user_id != auth.user_id:
        end_session()
        return None
    fresh = replace(fresh, email=fresh.email or auth.email)
    _require_session()[SIGNED_IN] = fresh.to_session()
    log.info(json.dumps({"event": "tokens_refreshed", "user_id": fresh.user_id}))
    return fresh


def signed_in_from(
    tokens: Tokens, method: AuthMethod, *, refresh_token: str | None = None, email: str = ""
) -> SignedIn:
    """Verify both tokens with the app's verifiers and describe the signed-in user.

    Nothing from an unverified token is used.

    :raises AuthError: a token does not verify, or the two tokens disagree on the user.
    """
    services = web().services
    identity = services.id_verifier.verify(tokens.id_token)
    access = services.access_verifier.verify(tokens.access_token)
    if access.user_id != identity.user_id:
        raise AuthError("the id and access tokens are for different users")
    return SignedIn(
        user_id=identity.user_id,
        username=identity.username,
        email=identity.email or email,
        groups=identity.groups,
        access_token=tokens.access_token,
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token or refresh_token,
        token_expires_at=min(identity.expires_at, access.expires_at),
        method=method,
    )


def start_signed_in_session(auth: SignedIn) -> Principal:
    """Begin a signed-in session: a NEW id and CSRF secret, nothing kept from before.

    The old item is deleted when the new one is written (at the end of the request).
    """
    session = _require_session()
    session.clear()
    session.regenerate()
    session[SIGNED_IN] = auth.to_session()
    csrf.renew_secret()
    principal = web().services.id_verifier.verify(auth.id_token)
    if not principal.email and auth.email:
        principal = replace(principal, email=auth.email)
    g.principal = principal
    return principal


def end_session() -> None:
    """Delete this request's session server-side; the cookie is cleared with the response."""
    session = current_session()
    if session is not None:
        session.end()
    g.principal = None


def session_access_token() -> str:
    """The signed-in user's current Cognito access token, refreshed if it was near expiry.

    For same-origin JSON routes that call the API handlers on the user's
    behalf. Never put it in a page or a cookie.

    :raises UnauthorizedError: nobody is signed in (or the session just ended).
    """
    auth = signed_in()
    if auth is None or current_user() is None:
        raise UnauthorizedError("sign in first")
    fresh = _ensure_fresh(auth)
    if fresh is None:
        raise UnauthorizedError("the session has ended")
    try:
        web().services.access_verifier.verify(fresh.access_token)
    except AuthError:
        end_session()
        raise
    return fresh.access_token


def _require_session() -> ServerSession:
    session = current_session()
    if session is None:
        raise RuntimeError("no server-side session is opened on this path")
    return session


# --------------------------------------------------------------------------- view guards


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Signed-in users only: pages redirect to sign-in (and back), JSON gets 401."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_user() is None:
            raise UnauthorizedError("sign in first")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """Members of the Cognito group ``admin`` only; others get a 403 page (or JSON).

    The session's token must list the group, and so must Cognito now
    (``AdminListGroupsForUser``, cached at most 30 s): a removal ends admin
    access within 30 s. Cognito unreachable is a 503, never admin by default.
    """

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = current_user()
        if user is None:
            raise UnauthorizedError("sign in first")
        if not user.is_admin or not web().services.user_pool.is_member(user.username, ADMIN_GROUP):
            raise ForbiddenError("admins only")
        return view(*args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    app.before_request(authenticate)

"""Server-side web sessions in DynamoDB, and the request-side helpers built on them.

The browser holds one opaque random id (cookie ``vidgate_session``: HttpOnly,
SameSite=Lax, Secure over HTTPS, Path=/); everything else — the user, the
Cognito tokens, the CSRF secret, small flow state — lives in one item of the
sessions table, keyed by the SHA-256 of the id, so a leaked table dump holds
no usable cookie. The item's ``expires_at`` is the table's TTL attribute;
since DynamoDB deletes expired items lazily (within days), every read checks
the idle timeout and the absolute lifetime itself. The id changes at
sign-in (the old item is deleted), and sign-out deletes the item.

On each request of a signed-in session the id token is verified again (the
verifier caches verified tokens until ``exp``) and, when the access token is
within :data:`REFRESH_MARGIN_SECONDS` of expiry, it is refreshed with the
refresh token; a refused refresh ends the session.

For other blueprints: :func:`current_user`, :func:`login_required`,
:func:`admin_required`, :func:`session_access_token`, :func:`flash_message`,
:func:`current_services`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import wraps
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from botocore.exceptions import ClientError
from flask import Flask, current_app, g, request
from werkzeug.wrappers import Response

from app.auth import AuthError, Principal
from app.dynamo import error_code, unavailable_on_errors
from app.errors import DependencyUnavailableError, ForbiddenError, UnauthorizedError
from app.web.cognito_client import TokenRefreshRejectedError, Tokens

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from app.config import Settings
    from app.services import Services
    from app.web.cognito_client import CognitoClient, HostedUi

log = logging.getLogger("vidgate.web.sessions")

COOKIE_NAME = "vidgate_session"
REFRESH_MARGIN_SECONDS = 120
"""Refresh the access token when it has less than this left."""
IDLE_TIMEOUT_SECONDS = 12 * 3600
"""A session unused this long is over, whatever the TTL attribute says."""
ABSOLUTE_LIFETIME_SECONDS = 7 * 24 * 3600
"""A signed-in session ends this long after sign-in, however active."""
ANONYMOUS_LIFETIME_SECONDS = 24 * 3600
"""An anonymous session (CSRF secret, flow state) lives at most this long."""
TOUCH_INTERVAL_SECONDS = 60
"""``last_seen_at`` is written at most this often (one write per minute, not per request)."""
MAX_DATA_BYTES = 16 * 1024
EXTENSION = "vidgate.web"

_SID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
AuthMethod = Literal["password", "hosted"]
P = ParamSpec("P")
R = TypeVar("R")


# --------------------------------------------------------------------------- the store


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


@dataclass(frozen=True)
class WebSession:
    """One browser session. ``sid`` is the cookie value; the table stores only its hash."""

    sid: str
    csrf_secret: str
    created_at: int
    last_seen_at: int
    expires_at: int
    auth: SignedIn | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"WebSession(signed_in={self.auth is not None}, expires_at={self.expires_at})"


class SessionGoneError(Exception):
    """The item was deleted meanwhile (signed out in another tab); it is not recreated."""


class SessionStore:
    """Sessions in the DynamoDB sessions table (PK ``session_id``, TTL ``expires_at``).

    :param clock: seconds since the epoch.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
        idle_timeout: int = IDLE_TIMEOUT_SECONDS,
        absolute_lifetime: int = ABSOLUTE_LIFETIME_SECONDS,
        anonymous_lifetime: int = ANONYMOUS_LIFETIME_SECONDS,
        touch_interval: int = TOUCH_INTERVAL_SECONDS,
    ) -> None:
        self._client = client
        self.table = table
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime
        self.anonymous_lifetime = anonymous_lifetime
        self.touch_interval = touch_interval

    @staticmethod
    def key_for(sid: str) -> str:
        """The table key of a cookie value: its SHA-256, hex."""
        return hashlib.sha256(sid.encode("ascii")).hexdigest()

    @staticmethod
    def well_formed(sid: object) -> bool:
        return isinstance(sid, str) and _SID.fullmatch(sid) is not None

    def _now(self) -> int:
        return int(self._clock())

    def _expiry(self, created_at: int, last_seen_at: int, signed_in: bool) -> int:
        lifetime = self.absolute_lifetime if signed_in else self.anonymous_lifetime
        return min(last_seen_at + self.idle_timeout, created_at + lifetime)

    def create(
        self, *, auth: SignedIn | None = None, data: dict[str, Any] | None = None
    ) -> WebSession:
        """A new session with a new random id and CSRF secret, written at once."""
        now = self._now()
        session = WebSession(
            sid=secrets.token_urlsafe(32),
            csrf_secret=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=self._expiry(now, now, auth is not None),
            auth=auth,
            data=dict(data or {}),
        )
        self._put(session, "attribute_not_exists(session_id)")
        return session

    def load(self, sid: str) -> WebSession | None:
        """The live session for a cookie value; None if unknown, malformed or over."""
        if not self.well_formed(sid):
            return None
        with unavailable_on_errors("the session store"):
            response = self._client.get_item(
                TableName=self.table,
                Key={"session_id": {"S": self.key_for(sid)}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if not item:
            return None
        session = _from_item(sid, item)
        now = self._now()
        expiry = self._expiry(session.created_at, session.last_seen_at, session.auth is not None)
        if now >= min(expiry, session.expires_at):
            # TTL deletion is lazy: an expired item may still be there. It is over.
            self.delete(sid)
            return None
        return session

    def save(self, session: WebSession) -> WebSession:
        """Write the whole session back (only if it still exists).

        :raises SessionGoneError: it was deleted meanwhile.
        """
        now = self._now()
        session = replace(
            session,
            last_seen_at=now,
            expires_at=self._expiry(session.created_at, now, session.auth is not None),
        )
        self._put(session, "attribute_exists(session_id)")
        return session

    def touch(self, session: WebSession) -> WebSession:
        """Record activity (sliding the idle timeout), at most once per ``touch_interval``."""
        now = self._now()
        if now - session.last_seen_at < self.touch_interval:
            return session
        expires_at = self._expiry(session.created_at, now, session.auth is not None)
        try:
            with unavailable_on_errors("the session store"):
                self._client.update_item(
                    TableName=self.table,
                    Key={"session_id": {"S": self.key_for(session.sid)}},
                    UpdateExpression="SET last_seen_at = :now, expires_at = :exp",
                    ConditionExpression="attribute_exists(session_id)",
                    ExpressionAttributeValues={
                        ":now": {"N": str(now)},
                        ":exp": {"N": str(expires_at)},
                    },
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SessionGoneError from exc
            raise
        return replace(session, last_seen_at=now, expires_at=expires_at)

    def delete(self, sid: str) -> None:
        if not self.well_formed(sid):
            return
        with unavailable_on_errors("the session store"):
            self._client.delete_item(
                TableName=self.table, Key={"session_id": {"S": self.key_for(sid)}}
            )

    def _put(self, session: WebSession, condition: str) -> None:
        item = _to_item(session)
        try:
            with unavailable_on_errors("the session store"):
                self._client.put_item(
                    TableName=self.table, Item=item, ConditionExpression=condition
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SessionGoneError from exc
            raise


def _to_item(session: WebSession) -> dict[str, Any]:
    data = json.dumps(session.data, separators=(",", ":"), sort_keys=True)
    if len(data) > MAX_DATA_BYTES:
        raise ValueError("session data is too large")
    item: dict[str, Any] = {
        "session_id": {"S": SessionStore.key_for(session.sid)},
        "csrf_secret": {"S": session.csrf_secret},
        "created_at": {"N": str(session.created_at)},
        "last_seen_at": {"N": str(session.last_seen_at)},
        "expires_at": {"N": str(session.expires_at)},
        "data": {"S": data},
    }
    auth = session.auth
    if auth is not None:
        item.update(
            {
                "user_id": {"S": auth.user_id},
                "username": {"S": auth.username},
                "email": {"S": auth.email},
                "groups": {"L": [{"S": group} for group in auth.groups]},
                "access_token": {"S": auth.access_token},
                "id_token": {"S": auth.id_token},
                "token_expires_at": {"N": str(auth.token_expires_at)},
                "auth_method": {"S": auth.method},
            }
        )
        if auth.refresh_token:
            item["refresh_token"] = {"S": auth.refresh_token}
    return item


def _s(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _n(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _from_item(sid: str, item: dict[str, Any]) -> WebSession:
    auth = None
    if "user_id" in item and "id_token" in item:
        method: AuthMethod = "hosted" if _s(item, "auth_method") == "hosted" else "password"
        auth = SignedIn(
            user_id=_s(item, "user_id"),
            username=_s(item, "username"),
            email=_s(item, "email"),
            groups=tuple(str(v.get("S", "")) for v in item.get("groups", {}).get("L", [])),
            access_token=_s(item, "access_token"),
            id_token=_s(item, "id_token"),
            refresh_token=_s(item, "refresh_token") or None,
            token_expires_at=_n(item, "token_expires_at"),
            method=method,
        )
    try:
        data = json.loads(_s(item, "data") or "{}")
    except ValueError:
        data = {}
    return WebSession(
        sid=sid,
        csrf_secret=_s(item, "csrf_secret"),
        created_at=_n(item, "created_at"),
        last_seen_at=_n(item, "last_seen_at"),
        expires_at=_n(item, "expires_at"),
        auth=auth,
        data=data if isinstance(data, dict) else {},
    )


# --------------------------------------------------------------------------- the app's context


@dataclass
class WebContext:
    """What the web layer built once per app: on ``app.extensions["vidgate.web"]``."""

    settings: Settings
    services: Services
    store: SessionStore
    cognito: CognitoClient
    hosted: HostedUi | None
    local_triggers: bool
    secret_key: bytes
    base_url: str
    clock: Callable[[], float] = time.time


def web() -> WebContext:
    context: WebContext = current_app.extensions[EXTENSION]
    return context


def current_services() -> Services:
    """The app's :class:`~app.services.Services` (built once per process)."""
    return web().services


def wants_json() -> bool:
    """Answer this request with JSON rather than a page (API paths, fetch() calls)."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


# --------------------------------------------------------------------------- per request


def _set_session(session: WebSession | None, *, cookie: str | None = None) -> None:
    g.vidgate_session = session
    if cookie:
        g.vidgate_cookie = cookie


def current_session() -> WebSession | None:
    """This request's session (signed in or anonymous), or None."""
    session: WebSession | None = g.get("vidgate_session")
    return session


def current_user() -> Principal | None:
    """The verified principal of this request's session (None when signed out).

    It comes from the session's id token, verified on this request; ``email``
    falls back to the user directory's when the token carries none.
    """
    principal: Principal | None = g.get("principal")
    return principal


def is_admin() -> bool:
    user = current_user()
    return bool(user and user.is_admin)


def load_session() -> None:
    """``before_request``: read the cookie, load and check the session, refresh tokens."""
    g.vidgate_session = None
    g.principal = None
    if request.endpoint == "static" or request.path.startswith("/api/"):
        return
    sid = request.cookies.get(COOKIE_NAME)
    if sid is None:
        return
    ctx = web()
    session = ctx.store.load(sid)
    if session is None:
        g.vidgate_cookie = "clear"
        return
    try:
        session = ctx.store.touch(session)
    except SessionGoneError:
        g.vidgate_cookie = "clear"
        return
    g.vidgate_session = session
    if session.auth is not None:
        _authenticate(session)


def _authenticate(session: WebSession) -> None:
    """Set ``g.principal`` from the session's tokens (refreshing them first if due)."""
    ctx = web()
    fresh = _ensure_fresh(session)
    if fresh is None or fresh.auth is None:
        return
    session = fresh
    assert session.auth is not None
    try:
        principal = ctx.services.id_verifier.verify(session.auth.id_token)
    except AuthError as exc:
        log.info(json.dumps({"event": "session_token_refused", "reason": type(exc).__name__}))
        end_session()
        return
    if principal.user_id != session.auth.user_id:
        end_session()
        return
    if not principal.email and session.auth.email:
        principal = replace(principal, email=session.auth.email)
    g.principal = principal


def _ensure_fresh(session: WebSession) -> WebSession | None:
    """Refresh the tokens when the access token is within the margin of expiry.

    A refused refresh ends the session. If Cognito cannot be reached, a token
    that has not expired yet keeps working; an expired one means 503.
    """
    ctx = web()
    auth = session.auth
    if auth is None:
        return session
    now = ctx.clock()
    if auth.token_expires_at - now > REFRESH_MARGIN_SECONDS:
        return session
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
            return session
        raise
    if fresh.user_id != auth.user_id:
        end_session()
        return None
    fresh = replace(fresh, email=fresh.email or auth.email)
    try:
        session = ctx.store.save(replace(session, auth=fresh))
    except SessionGoneError:
        end_session()
        return None
    g.vidgate_session = session
    log.info(json.dumps({"event": "tokens_refreshed", "user_id": fresh.user_id}))
    return session


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
    """Begin a signed-in session under a NEW id (the old session is deleted)."""
    ctx = web()
    old = current_session()
    session = ctx.store.create(auth=auth)
    if old is not None:
        ctx.store.delete(old.sid)
    _set_session(session, cookie="set")
    principal = ctx.services.id_verifier.verify(auth.id_token)
    if not principal.email and auth.email:
        principal = replace(principal, email=auth.email)
    g.principal = principal
    return principal


def end_session() -> None:
    """Delete this request's session server-side and clear the cookie."""
    session = current_session()
    if session is not None:
        web().store.delete(session.sid)
    g.vidgate_session = None
    g.principal = None
    g.vidgate_cookie = "clear"


def ensure_session() -> WebSession:
    """This request's session, creating an anonymous one if there is none."""
    session = current_session()
    if session is None:
        session = web().store.create()
        _set_session(session, cookie="set")
    return session


def save_session(session: WebSession) -> WebSession:
    """Persist changes to this request's session (e.g. ``data``)."""
    try:
        saved = web().store.save(session)
    except SessionGoneError:
        saved = web().store.create(data=session.data)
        _set_session(saved, cookie="set")
        g.principal = None
        return saved
    g.vidgate_session = saved
    return saved


def set_session_data(key: str, value: Any) -> None:
    session = ensure_session()
    save_session(replace(session, data={**session.data, key: value}))


def pop_session_data(key: str) -> Any:
    session = current_session()
    if session is None or key not in session.data:
        return None
    data = dict(session.data)
    value = data.pop(key)
    save_session(replace(session, data=data))
    return value


def flash_message(text: str, category: str = "info") -> None:
    """Show ``text`` on the next page this browser renders (stored server-side).

    ``category``: ``info``, ``success`` or ``error`` (a CSS class suffix).
    Flask's own ``flask.flash`` does not work here: there is no cookie session.
    """
    session = ensure_session()
    flashes = [*session.data.get("flashes", []), [category, text]][-5:]
    save_session(replace(session, data={**session.data, "flashes": flashes}))


def flashed_messages() -> list[dict[str, str]]:
    """Messages waiting for this browser, removed as they are read (a Jinja global)."""
    session = current_session()
    if session is None or not session.data.get("flashes"):
        return []
    messages = [{"category": str(c), "text": str(t)} for c, t in session.data["flashes"]]
    try:
        pop_session_data("flashes")
    except DependencyUnavailableError:
        log.warning("could not clear flashed messages")
    return messages


def session_access_token() -> str:
    """The signed-in user's current Cognito access token, refreshed if it was near expiry.

    For same-origin JSON routes that call the API handlers on the user's
    behalf. Never put it in a page or a cookie.

    :raises UnauthorizedError: nobody is signed in (or the session just ended).
    """
    session = current_session()
    if session is None or session.auth is None or current_user() is None:
        raise UnauthorizedError("sign in first")
    fresh = _ensure_fresh(session)
    if fresh is None or fresh.auth is None:
        raise UnauthorizedError("the session has ended")
    try:
        web().services.access_verifier.verify(fresh.auth.access_token)
    except AuthError:
        end_session()
        raise
    return fresh.auth.access_token


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Signed-in users only: pages redirect to sign-in (and back), JSON gets 401."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_user() is None:
            raise UnauthorizedError("sign in first")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """Members of the Cognito group ``admin`` only; others get a 403 page (or JSON)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = current_user()
        if user is None:
            raise UnauthorizedError("sign in first")
        if not user.is_admin:
            raise ForbiddenError("admins only")
        return view(*args, **kwargs)

    return wrapper


def secure_cookies() -> bool:
    return request.is_secure or web().base_url.startswith("https://")


def write_cookie(response: Response) -> Response:
    """``after_request``: set or clear the session cookie; sessions are never cached."""
    action = g.get("vidgate_cookie")
    session = current_session()
    secure = secure_cookies()
    if action == "set" and session is not None:
        lifetime = web().store.absolute_lifetime if session.auth else web().store.anonymous_lifetime
        response.set_cookie(
            COOKIE_NAME,
            session.sid,
            max_age=lifetime,
            path="/",
            secure=secure,
            httponly=True,
            samesite="Lax",
        )
    elif action in ("set", "clear"):
        response.delete_cookie(COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="Lax")
    if session is not None or action:
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def init_app(app: Flask, context: WebContext) -> None:
    app.extensions[EXTENSION] = context
    app.before_request(load_session)
    app.after_request(write_cookie)

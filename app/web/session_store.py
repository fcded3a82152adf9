"""Web sessions, plugged into Flask as its session interface: signed in in DynamoDB, anonymous
in a cookie.

A signed-in browser holds one opaque random id (cookie ``vidgate_session``,
attributes from Flask's ``SESSION_COOKIE_*`` settings); what a view puts in
``flask.session`` lives in one item of the sessions table, keyed by the
SHA-256 of the id, so a leaked table dump holds no usable cookie. The item's
Cognito tokens are sealed with envelope encryption (:mod:`app.web.envelope`:
a KMS data key, AES-256-GCM, the item's key as associated data), so a table
dump, a backup or a restore holds no usable token either (docs/sessions.md).
The item's ``expires_at`` is the table's TTL attribute; since DynamoDB
deletes expired items lazily (within days), every read checks the idle
timeout and the absolute lifetime itself. A session moves to a fresh id on
:meth:`ServerSession.regenerate` (sign-in; the old item is deleted) and
:meth:`ServerSession.end` deletes it (sign-out).

Before sign-in nothing is written to the table: an anonymous visitor's
session (flashed messages, a pending sign-in) travels in the encrypted
cookie of :mod:`app.web.presession`. The item is created when the session
holds a sign-in (:data:`SIGNED_IN`); the sign-in and the CSRF secret never
go into the cookie.

A signed-in request that changes nothing in its session writes nothing but,
at most once per :data:`TOUCH_INTERVAL_SECONDS`, the time it was last used.
A session deleted meanwhile (signed out in another tab) is never written back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from flask import Flask, request, session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from app.dynamo import error_code, unavailable_on_errors
from app.errors import DependencyUnavailableError
from app.web.envelope import EnvelopeCipher, Sealed, UnreadableSealError
from app.web.presession import COOKIE_NAME as PRE_SESSION_COOKIE
from app.web.presession import PreSessionCookie, PreSessionTooLargeError

if TYPE_CHECKING:
    from flask import Request
    from mypy_boto3_dynamodb import DynamoDBClient
    from werkzeug.wrappers import Response

log = logging.getLogger("vidgate.web.sessions")

COOKIE_NAME = "vidgate_session"
CSRF_SECRET = "_csrf_secret"  # noqa: S105 - a session key
"""Session key of the CSRF secret (:mod:`app.web.csrf`); item attribute ``csrf_secret``."""
SIGNED_IN = "_signed_in"
"""Session key of the sign-in (:mod:`app.web.signin`); its fields are item attributes."""
SERVER_ONLY = (SIGNED_IN, CSRF_SECRET)
"""Session keys that live only in the table, never in the anonymous cookie."""
TOKENS_PURPOSE = "vidgate-web-session-tokens"
"""The KMS encryption context's ``purpose``; the key policy allows the web role only this."""
IDLE_TIMEOUT_SECONDS = 12 * 3600
"""A session unused this long is over, whatever the TTL attribute says."""
ABSOLUTE_LIFETIME_SECONDS = 7 * 24 * 3600
"""A signed-in session ends this long after sign-in, however active."""
TOUCH_INTERVAL_SECONDS = 60
"""``last_seen_at`` is written at most this often (one write per minute, not per request)."""
MAX_DATA_BYTES = 16 * 1024
MAX_FLASHES = 5
"""Flashed messages kept for a browser that does not render them (Flask's ``_flashes``)."""

_SID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
# The sign-in's fields kept in attributes of their own: (field, attribute, DynamoDB type).
_SIGNED_IN_ATTRIBUTES: tuple[tuple[str, str, Literal["S", "N", "L"]], ...] = (
    ("user_id", "user_id", "S"),
    ("username", "username", "S"),
    ("email", "email", "S"),
    ("groups", "groups", "L"),
    ("token_expires_at", "token_expires_at", "N"),
    ("method", "auth_method", "S"),
)
_TOKEN_FIELDS = ("access_token", "id_token", "refresh_token")
"""The sign-in's Cognito tokens: sealed together in the binary attribute ``tokens``."""


def token_context(table: str) -> dict[str, str]:
    """The KMS encryption context of the sessions table's data keys."""
    return {"purpose": TOKENS_PURPOSE, "table": table}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class StoredSession:
    """One item of the sessions table. ``sid`` is the cookie value; the table keeps its hash."""

    sid: str
    created_at: int
    last_seen_at: int
    expires_at: int
    data: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # tokens never reach a log line
        return f"StoredSession(expires_at={self.expires_at})"


class SessionGoneError(Exception):
    """The item was deleted meanwhile (signed out in another tab); it is not recreated."""


class _UnusableItemError(Exception):
    """An item that holds no sign-in this version can read (e.g. plaintext tokens from before)."""


class SessionStore:
    """Signed-in sessions in the DynamoDB sessions table (PK ``session_id``, TTL ``expires_at``).

    :param cipher: seals the Cognito tokens of each item (KMS envelope encryption).
    :param clock: seconds since the epoch.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        cipher: EnvelopeCipher,
        clock: Callable[[], float] = time.time,
        idle_timeout: int = IDLE_TIMEOUT_SECONDS,
        absolute_lifetime: int = ABSOLUTE_LIFETIME_SECONDS,
        touch_interval: int = TOUCH_INTERVAL_SECONDS,
    ) -> None:
        self._client = client
        self.table = table
        self._cipher = cipher
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime
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

    def _expiry(self, created_at: int, last_seen_at: int) -> int:
        return min(last_seen_at + self.idle_timeout, created_at + self.absolute_lifetime)

    def create(self, data: Mapping[str, Any]) -> StoredSession:
        """A new signed-in session under a new random id, written at once.

        :raises ValueError: ``data`` holds no sign-in (anonymous sessions are never stored).
        :raises DependencyUnavailableError: DynamoDB or KMS cannot be used; nothing is written.
        """
        if not isinstance(data.get(SIGNED_IN), Mapping):
            raise ValueError("only a signed-in session is stored")
        now = self._now()
        stored = StoredSession(
            sid=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=self._expiry(now, now),
            data=dict(data),
        )
        self._put(stored, "attribute_not_exists(session_id)")
        return stored

    def load(self, sid: str) -> StoredSession | None:
        """The live session for a cookie value; None if unknown, malformed, unreadable or over.

        An item this version cannot read (plaintext tokens from before, a seal
        that does not open) is deleted: its browser is signed out.
        """
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
        try:
            stored = _from_item(sid, item, self._cipher)
        except _UnusableItemError as exc:
            log.info(json.dumps({"event": "session_unreadable", "reason": str(exc)}))
            self.delete(sid)
            return None
        expiry = self._expiry(stored.created_at, stored.last_seen_at)
        if self._now() >= min(expiry, stored.expires_at):
            # TTL deletion is lazy: an expired item may still be there. It is over.
            self.delete(sid)
            return None
        return stored

    def save(self, stored: StoredSession) -> StoredSession:
        """Write the whole session back (only if it still exists), as used now.

        :raises SessionGoneError: it was deleted meanwhile.
        """
        now = self._now()
        stored = replace(stored, last_seen_at=now, expires_at=self._expiry(stored.created_at, now))
        self._put(stored, "attribute_exists(session_id)")
        return stored

    def touch(self, stored: StoredSession) -> StoredSession:
        """Record activity (sliding the idle timeout), at most once per ``touch_interval``.

        :raises SessionGoneError: it was deleted meanwhile.
        """
        now = self._now()
        if now - stored.last_seen_at < self.touch_interval:
            return stored
        expires_at = self._expiry(stored.created_at, now)
        try:
            with unavailable_on_errors("the session store"):
                self._client.update_item(
                    TableName=self.table,
                    Key={"session_id": {"S": self.key_for(stored.sid)}},
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
        return replace(stored, last_seen_at=now, expires_at=expires_at)

    def delete(self, sid: str) -> None:
        if not self.well_formed(sid):
            return
        with unavailable_on_errors("the session store"):
            self._client.delete_item(
                TableName=self.table, Key={"session_id": {"S": self.key_for(sid)}}
            )

    def _put(self, stored: StoredSession, condition: str) -> None:
        # Sealed first: KMS down raises here, before anything is written.
        item = _to_item(stored, self._cipher)
        try:
            with unavailable_on_errors("the session store"):
                self._client.put_item(
                    TableName=self.table, Item=item, ConditionExpression=condition
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SessionGoneError from exc
            raise


def _to_item(stored: StoredSession, cipher: EnvelopeCipher) -> dict[str, Any]:
    data = dict(stored.data)
    csrf_secret = data.pop(CSRF_SECRET, None)
    signed_in = data.pop(SIGNED_IN, None)
    if not isinstance(signed_in, Mapping):
        raise ValueError(f"session[{SIGNED_IN!r}] must be a mapping")
    blob = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(blob) > MAX_DATA_BYTES:
        raise ValueError("session data is too large")
    key = SessionStore.key_for(stored.sid)
    tokens = {name: signed_in.get(name) or None for name in _TOKEN_FIELDS}
    sealed = cipher.seal(json.dumps(tokens).encode(), aad=key.encode("ascii"))
    item: dict[str, Any] = {
        "session_id": {"S": key},
        "created_at": {"N": str(stored.created_at)},
        "last_seen_at": {"N": str(stored.last_seen_at)},
        "expires_at": {"N": str(stored.expires_at)},
        "data": {"S": blob},
        "tokens": {"B": sealed.ciphertext},
        "tokens_key": {"B": sealed.encrypted_key},
    }
    if csrf_secret:
        item["csrf_secret"] = {"S": str(csrf_secret)}
    for name, attribute, kind in _SIGNED_IN_ATTRIBUTES:
        value = signed_in.get(name)
        if value is None:
            continue
        if kind == "L":
            item[attribute] = {"L": [{"S": str(v)} for v in value]}
        elif kind == "N":
            item[attribute] = {"N": str(int(value))}
        else:
            item[attribute] = {"S": str(value)}
    return item


def _from_item(sid: str, item: Mapping[str, Any], cipher: EnvelopeCipher) -> StoredSession:
    """The session an item holds.

    :raises _UnusableItemError: no sign-in this version can read.
    :raises DependencyUnavailableError: KMS cannot decrypt the data key now.
    """
    if any(name in item for name in _TOKEN_FIELDS):
        raise _UnusableItemError("plaintext tokens (written before tokens were sealed)")
    sealed = item.get("tokens", {}).get("B")
    encrypted_key = item.get("tokens_key", {}).get("B")
    if not _s(item, "user_id") or not sealed or not encrypted_key:
        raise _UnusableItemError("no sealed sign-in")
    key = SessionStore.key_for(sid)
    try:
        opened = cipher.open(
            Sealed(ciphertext=bytes(sealed), encrypted_key=bytes(encrypted_key)),
            aad=key.encode("ascii"),
        )
        tokens = json.loads(opened)
    except (UnreadableSealError, ValueError) as exc:
        raise _UnusableItemError(f"sealed tokens do not open: {type(exc).__name__}") from None
    if not isinstance(tokens, dict) or not all(
        isinstance(tokens.get(name), str) and tokens[name] for name in ("access_token", "id_token")
    ):
        raise _UnusableItemError("sealed tokens are incomplete")
    try:
        data = json.loads(_s(item, "data") or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    # These two keys live in attributes of their own; a copy in the blob does not count.
    for name in SERVER_ONLY:
        data.pop(name, None)
    if _s(item, "csrf_secret"):
        data[CSRF_SECRET] = _s(item, "csrf_secret")
    signed_in: dict[str, Any] = {}
    for name, attribute, kind in _SIGNED_IN_ATTRIBUTES:
        if kind == "L":
            signed_in[name] = [str(v.get("S", "")) for v in item.get(attribute, {}).get("L", [])]
        elif kind == "N":
            signed_in[name] = int(item.get(attribute, {}).get("N", "0"))
        else:
            signed_in[name] = _s(item, attribute)
    refresh = tokens.get("refresh_token")
    signed_in.update(
        access_token=tokens["access_token"],
        id_token=tokens["id_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )
    data[SIGNED_IN] = signed_in
    return StoredSession(
        sid=sid,
        created_at=_n(item, "created_at"),
        last_seen_at=_n(item, "last_seen_at"),
        expires_at=_n(item, "expires_at"),
        data=data,
    )


def _s(item: Mapping[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _n(item: Mapping[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


# --------------------------------------------------------------------------- Flask's side


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """``flask.session`` of one request: a dict that notes whether it was changed.

    Values must be JSON-serialisable (tuples come back as lists). Nested
    values are not watched: assign a changed value again, as ``flask.flash`` does.

    :param anonymous: what the visitor's pre-session cookie held (no ``stored`` item).
    """

    def __init__(
        self,
        store: SessionStore,
        stored: StoredSession | None = None,
        *,
        anonymous: Mapping[str, Any] | None = None,
        had_cookie: bool = False,
        had_pre_cookie: bool = False,
        load_error: DependencyUnavailableError | None = None,
    ) -> None:
        def on_update(self: ServerSession) -> None:
            self.modified = True

        if stored is not None:
            initial: dict[str, Any] | None = dict(stored.data)
        else:
            initial = {k: v for k, v in (anonymous or {}).items() if k not in SERVER_ONLY}
        super().__init__(initial, on_update)
        self.modified = False
        self.stored = stored
        self.had_cookie = had_cookie
        self.had_pre_cookie = had_pre_cookie
        self.pre_stale = had_pre_cookie and anonymous is None
        self.load_error = load_error
        self.rotate = False
        self.save_failed = False
        self._store = store

    @property
    def new(self) -> bool:  # type: ignore[override]
        """No item holds this session (yet): a sign-in creates one."""
        return self.stored is None

    @property
    def server_side(self) -> bool:
        """This session is (or, saved, becomes) an item of the table: it holds a sign-in."""
        return SIGNED_IN in self

    def regenerate(self) -> None:
        """Move this session to a fresh id when it is saved, deleting the old item (sign-in)."""
        self.rotate = True
        self.modified = True

    def end(self) -> None:
        """Delete this session's item now (sign-out) and empty it.

        Anything set afterwards in this request goes into the anonymous cookie.
        """
        if self.stored is not None:
            self._store.delete(self.stored.sid)
        self.stored = None
        self.rotate = False
        self.clear()

    def __repr__(self) -> str:  # values hold tokens; keys only
        return f"<ServerSession new={self.new} keys={sorted(self)}>"


class DynamoSessionInterface(SessionInterface):
    """Flask's session machinery over a :class:`SessionStore` and the pre-session cookie.

    :param sessionless: path prefixes that never open a session (static
        files, the bearer-token API): they get Flask's read-only null session
        and cost no DynamoDB read.
    :param pre_session: the anonymous cookie's codec; by default derived from
        the app's ``SECRET_KEY`` on first use.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        sessionless: Iterable[str] = (),
        pre_session: PreSessionCookie | None = None,
    ) -> None:
        self.store = store
        self.sessionless = tuple(sessionless)
        self._pre_session = pre_session

    def pre_session(self, app: Flask) -> PreSessionCookie:
        if self._pre_session is None:
            secret = app.secret_key
            if not secret:
                raise RuntimeError("the pre-session cookie needs the app's SECRET_KEY")
            self._pre_session = PreSessionCookie(
                secret.encode() if isinstance(secret, str) else bytes(secret)
            )
        return self._pre_session

    def get_cookie_secure(self, app: Flask) -> bool:
        # SESSION_COOKIE_SECURE follows the site's base URL; a request over HTTPS always gets it.
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if self.sessionless and request.path.startswith(self.sessionless):
            return None
        pre_value = request.cookies.get(PRE_SESSION_COOKIE)
        anonymous = self.pre_session(app).open(pre_value) if pre_value is not None else None
        sid = request.cookies.get(self.get_cookie_name(app))
        stored = None
        if sid is not None:
            try:
                stored = self.store.load(sid)
            except DependencyUnavailableError as exc:
                # Raised again by fail_if_unreadable, where the app's error handler sees it.
                return ServerSession(self.store, had_cookie=True, load_error=exc)
        return ServerSession(
            self.store,
            stored,
            anonymous=anonymous,
            had_cookie=sid is not None,
            had_pre_cookie=pre_value is not None,
        )

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession) or session.load_error or session.save_failed:
            return
        try:
            cookie = self._persist(session)
            pre_cookie = self._persist_anonymous(app, session)
        except Exception:
            # This response becomes an error page; that one must not try to write again.
            session.save_failed = True
            raise
        if cookie == "set":
            assert session.stored is not None
            self._set_cookie(app, response, self.get_cookie_name(app), session.stored.sid)
        elif cookie == "clear":
            self._clear_cookie(app, response, self.get_cookie_name(app))
        if pre_cookie == "clear":
            self._clear_cookie(app, response, PRE_SESSION_COOKIE)
        elif pre_cookie is not None:
            self._set_cookie(app, response, PRE_SESSION_COOKIE, pre_cookie)
        changed = cookie is not None or pre_cookie is not None
        if session.had_cookie or session.had_pre_cookie or session.stored is not None or changed:
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Cookie")
        elif session.accessed:
            response.vary.add("Cookie")

    def _persist(self, session: ServerSession) -> Literal["set", "clear"] | None:
        """Write what changed in the table; returns what to do with its cookie (None: leave it)."""
        stored = session.stored
        gone: Literal["clear"] | None = "clear" if session.had_cookie else None
        if not session.server_side:
            if stored is not None:
                # The sign-in was taken out of a stored session: the item goes with it.
                self.store.delete(stored.sid)
                session.stored = None
            return gone
        if not session.modified and stored is not None:
            try:
                session.stored = self.store.touch(stored)
            except SessionGoneError:
                session.stored = None
                return gone
            return None
        data = _data_to_save(session)
        if stored is None or session.rotate:
            session.stored = self.store.create(data)
            if stored is not None:
                self.store.delete(stored.sid)
            session.rotate = False
            return "set"
        try:
            session.stored = self.store.save(replace(stored, data=data))
        except SessionGoneError:
            session.stored = None
            return gone
        return None

    def _persist_anonymous(self, app: Flask, session: ServerSession) -> str | None:
        """The pre-session cookie's new value, ``"clear"``, or None to leave it as it is."""
        clear = "clear" if session.had_pre_cookie else None
        if session.server_side:
            return clear
        if not session.modified:
            return "clear" if session.pre_stale else None
        data = {k: v for k, v in _data_to_save(session).items() if k not in SERVER_ONLY}
        if not data:
            return clear
        codec = self.pre_session(app)
        try:
            return codec.seal(data)
        except PreSessionTooLargeError:
            # Messages are the one thing worth dropping to keep a pending sign-in.
            data.pop("_flashes", None)
            return codec.seal(data) if data else clear

    def _set_cookie(self, app: Flask, response: Response, name: str, value: str) -> None:
        max_age = (
            self.store.absolute_lifetime
            if name == self.get_cookie_name(app)
            else self.pre_session(app).lifetime
        )
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            partitioned=self.get_cookie_partitioned(app),
            samesite=self.get_cookie_samesite(app),
            httponly=self.get_cookie_httponly(app),
        )

    def _clear_cookie(self, app: Flask, response: Response, name: str) -> None:
        response.delete_cookie(
            name,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            partitioned=self.get_cookie_partitioned(app),
            samesite=self.get_cookie_samesite(app),
            httponly=self.get_cookie_httponly(app),
        )


def _data_to_save(session: ServerSession) -> dict[str, Any]:
    data = dict(session)
    flashes = data.get("_flashes")
    if isinstance(flashes, list) and len(flashes) > MAX_FLASHES:
        data["_flashes"] = flashes[-MAX_FLASHES:]
    return data


def current_session() -> ServerSession | None:
    """This request's session; None where none is opened (``sessionless`` paths)."""
    opened = session._get_current_object()  # type: ignore[attr-defined]
    return opened if isinstance(opened, ServerSession) else None


def fail_if_unreadable() -> None:
    """``before_request``: a session that could not be read fails the request (503).

    The request must not go on as anonymous: its CSRF check and its sign-in
    depend on what the session holds.
    """
    opened = current_session()
    if opened is not None and opened.load_error is not None:
        raise opened.load_error


def init_app(
    app: Flask,
    store: SessionStore,
    *,
    sessionless: Iterable[str] = (),
    pre_session: PreSessionCookie | None = None,
) -> None:
    app.session_interface = DynamoSessionInterface(
        store, sessionless=sessionless, pre_session=pre_session
    )
    app.before_request(fail_if_unreadable)
